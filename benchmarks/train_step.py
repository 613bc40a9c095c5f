"""Images/s of a full training step through our data path vs the model alone, in the same run.

    python benchmarks/train_step.py                     # CPU: facenet-mtl at 36x36, ~30 s
    python benchmarks/train_step.py --model resnet50-affact --size 224 --batch-size 256 \\
        --cache-size 288 --images 2048 --workers 8      # GPU: ResNet-50 at 224, bf16

Full step: batches read from the packed cache by the training DataLoader, moved to the device,
cropped with AFFACT jitter in one warp per image (``FaceTransform.train_batch``), normalised,
then forward, loss, backward and optimiser step (bf16 autocast and channels-last on a GPU).
Model alone: the same forward/backward/step on one batch of normalised tensors already on the
device. The ratio (full / alone) is how close the data path comes to keeping the model busy.
Without ``--cache`` a synthetic dataset and its cache are written to a temporary folder first.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch

from faceattr.data.cache_prepare import prepare_cache
from faceattr.data.synth.generate import generate_dataset
from faceattr.geometry import AffactJitter
from faceattr.models import AttributeModel, create_model
from faceattr.training.batch import FaceBatch
from faceattr.training.config import DataConfig, OptimizerConfig
from faceattr.training.datamodule import FaceDataModule
from faceattr.training.losses import AttributeLoss
from faceattr.training.module import build_optimizer
from faceattr.training.transform import FaceTransform

Step = Callable[[torch.Tensor, torch.Tensor], None]


def make_step(
    model: AttributeModel,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager[object]],
) -> Step:
    """One optimiser step on a normalised batch: forward, loss, backward, update."""
    loss_fn = AttributeLoss(model.attributes, model.head_type).to(device)
    optimizer = build_optimizer(model, OptimizerConfig(name="sgd", lr=0.01, momentum=0.9))

    def step(images: torch.Tensor, targets: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(model(images), targets)
        loss.backward()
        optimizer.step()

    return step


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (timings must include it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    step: Step,
    steps: int,
    warmup: int,
    device: torch.device,
) -> float:
    """Throughput of ``step`` over ``steps`` batches after ``warmup`` untimed ones."""
    for images, targets in itertools.islice(batches, warmup):
        step(images, targets)
    sync(device)
    count, started = 0, time.perf_counter()
    for images, targets in itertools.islice(batches, steps):
        step(images, targets)
        count += images.shape[0]
    sync(device)
    return count / (time.perf_counter() - started)


def data_path(
    loader: Iterator[FaceBatch], transform: FaceTransform, device: torch.device, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Cache batches moved to ``device`` and augmented there, as training does."""
    generator = torch.Generator(device=device).manual_seed(seed)
    for batch in loader:
        yield transform.train_batch(batch.to(device, non_blocking=True), generator)


def synthetic_cache(folder: Path, images: int, size: int, workers: int) -> Path:
    """Write ``images`` synthetic faces and their packed cache under ``folder``."""
    generate_dataset(folder / "celeba", images, seed=0, workers=workers or None, progress=False)
    prepare_cache(folder / "celeba", folder / "cache", size=size, workers=workers, progress=False)
    return folder / "cache"


def main() -> None:
    """Parse the arguments, time both loops in one run, print images/s and their ratio."""
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet50-affact" if cuda else "facenet-mtl")
    parser.add_argument("--size", type=int, default=224 if cuda else 36, help="input side")
    parser.add_argument("--batch-size", type=int, default=256 if cuda else 64)
    parser.add_argument("--cache", type=Path, help="an existing packed cache (default: synthetic)")
    parser.add_argument("--cache-size", type=int, default=288 if cuda else 48)
    parser.add_argument("--images", type=int, default=2048 if cuda else 320)
    parser.add_argument("--workers", type=int, default=8 if cuda else 0)
    parser.add_argument("--steps", type=int, default=30 if cuda else 10)
    parser.add_argument("--warmup", type=int, default=5 if cuda else 2)
    args = parser.parse_args()

    device = torch.device("cuda" if cuda else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or synthetic_cache(Path(tmp), args.images, args.cache_size, args.workers)
        model = create_model(args.model, input_size=[args.size, args.size]).to(device)
        if cuda:
            model = model.to(memory_format=torch.channels_last)
        transform = FaceTransform(model.input_config, AffactJitter(), channels_last=cuda)
        data = DataConfig(
            root="",
            cache=str(cache),
            cache_size=args.cache_size,
            batch_size=args.batch_size,
            workers=args.workers,
        )
        faces = FaceDataModule(data, model.attributes, model.input_config.size)
        loader = faces.loader(faces.split("train"), train=True)

        def autocast() -> AbstractContextManager[object]:
            return torch.autocast("cuda", torch.bfloat16) if cuda else nullcontext()

        step = make_step(model, device, autocast)
        endless = itertools.chain.from_iterable(itertools.repeat(loader))
        full = images_per_second(
            data_path(endless, transform, device, 0), step, args.steps, args.warmup, device
        )
        images, targets = next(data_path(iter(loader), transform, device, 1))
        alone = images_per_second(
            itertools.repeat((images, targets)), step, args.steps, args.warmup, device
        )
    precision = "bf16 autocast" if cuda else "fp32"
    print(
        f"{args.model} at {args.size}x{args.size}, batch {args.batch_size}, {device} "
        f"({torch.cuda.get_device_name() if cuda else 'CPU'}), {precision}"
    )
    print(f"full training step (cache + on-device augmentation): {full:9.1f} images/s")
    print(f"model alone (tensors already on the device):        {alone:9.1f} images/s")
    print(f"ratio: {full / alone:.3f}")


if __name__ == "__main__":
    main()
