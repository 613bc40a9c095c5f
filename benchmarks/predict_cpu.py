"""Milliseconds per photo of the shipped model on the CPU, face detection included, against the
plain per-image torchvision pipeline (no detection at all) timed in the same run.

    python benchmarks/predict_cpu.py                  # ../shared/celeba or $FACEATTR_CELEBA
    python benchmarks/predict_cpu.py --photos 200 --threads 2 --model runs/<stamp>-x

Ours: ``Predictor.predict(path)`` one photo at a time, as ``faceattr predict`` and the server's
/predict do: decode, YuNet detection and landmarks, the AFFACT crop of every face, the model (the
shipped one unless ``--model``), thresholds. Photos: real CelebA test JPEGs (178x218) and
scikit-image's astronaut at 512x512 and upscaled to 1024x1024. Peer: PIL decode,
``Resize((128, 128))`` of the whole image, ImageNet normalisation and torchvision's MobileNetV2
forward; it finds no face, so it is the floor of what a per-photo classifier costs. Prints the
median and 90th percentile per photo kind, the share spent detecting, and the ratio ours / peer.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data as photos
from torchvision import models, transforms

from faceattr.data.loaders import load_dataset
from faceattr.faces.images import decode_image
from faceattr.inference.predictor import Predictor

IMAGENET = transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def timed(run: Callable[[Path], object], paths: list[Path], repeats: int) -> list[float]:
    """Milliseconds of ``run`` on each path, the best of ``repeats`` per path (after a warm-up)."""
    run(paths[0])
    times = []
    for path in paths:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            run(path)
            best = min(best, time.perf_counter() - start)
        times.append(best * 1000)
    return times


def peer(size: int = 128) -> Callable[[Path], object]:
    """The per-image torchvision pipeline: whole image resized, MobileNetV2 forward."""
    model = models.mobilenet_v2().eval()
    resize = transforms.Resize((size, size))
    pipeline = transforms.Compose([resize, transforms.ToTensor(), IMAGENET])

    def run(path: Path) -> object:
        with Image.open(path) as image, torch.inference_mode():
            return model(pipeline(image.convert("RGB"))[None]).sigmoid()

    return run


def summary(times: list[float]) -> str:
    """Median and 90th percentile."""
    return f"median {statistics.median(times):6.1f} ms, p90 {np.percentile(times, 90):6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("FACEATTR_CELEBA", "../shared/celeba"))
    parser.add_argument("--photos", type=int, default=100, help="CelebA test photos")
    parser.add_argument("--repeats", type=int, default=3, help="timings per photo (best kept)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--model", type=Path, help="a run or export folder (default: shipped)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    celeba = load_dataset(args.root)
    rows = celeba.split_indices("test")[: args.photos]
    with tempfile.TemporaryDirectory() as tmp:
        astronaut = Image.fromarray(photos.astronaut())
        big = Path(tmp) / "astronaut-1024.jpg"
        astronaut.resize((1024, 1024), Image.Resampling.BICUBIC).save(big, quality=92)
        small = Path(tmp) / "astronaut-512.jpg"
        astronaut.save(small, quality=92)
        kinds = {
            "CelebA 178x218": [celeba.image_path(int(row)) for row in rows],
            "astronaut 512x512": [small],
            "astronaut 1024x1024": [big],
        }
        ours = Predictor.from_checkpoint(args.model, device="cpu")
        detect = ours.detector
        baseline = peer(ours.input_config.size[0])
        print(f"CPU, {args.threads} torch threads; model {ours.description.model_name}")
        for kind, paths in kinds.items():
            repeats = args.repeats if len(paths) > 1 else 20
            ours_ms = timed(ours.predict, paths, repeats)
            detect_ms = timed(lambda p: detect.detect(decode_image(p)), paths, repeats)
            peer_ms = timed(baseline, paths, repeats)
            ratio = statistics.median(ours_ms) / statistics.median(peer_ms)
            print(
                f"{kind:20s} ({len(paths)}): ours {summary(ours_ms)} "
                f"(detection {statistics.median(detect_ms):5.1f} ms) | "
                f"peer, no detection {summary(peer_ms)} | ours / peer {ratio:4.2f}"
            )


if __name__ == "__main__":
    main()
