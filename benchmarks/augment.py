"""Images/s of the batched AFFACT augmentation against a per-image PIL pipeline, in one run.

Both pipelines get decoded 178x218 faces (real CelebA images when the sample is present, else
random pixels) and produce 224x224 float crops in [0, 1] with the SAME drawn perturbations:
alignment + scale/rotation/shift/mirror as one warp, Gaussian blur, gamma. The per-image
pipeline is a fast one: one PIL ``Image.transform`` (rotate/scale/crop/flip in one go), PIL's
``GaussianBlur``, torchvision's gamma lookup table, then a float tensor. Each rate is the best of
``--trials`` alternating timings (the machine may be shared).

    python benchmarks/augment.py [--images 256] [--batch 64] [--trials 3] [--workers 2]
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
import typer
from PIL import Image, ImageFilter

from faceattr.geometry import AffactAugment, AffactJitter, affact_alignment_matrix, invert

CELEBA_IMAGES = Path(__file__).resolve().parents[1].parent / "shared/celeba/img_align_celeba"
MEAN_ALIGNED_LANDMARKS = np.array(
    [[69.4, 111.2], [107.6, 111.1], [88.1, 135.2], [71.3, 152.1], [106.0, 152.2]]
)
"""About the mean of CelebA's aligned landmarks (the sample ships no landmark file)."""
CUDA_REPEATS = 32
"""The faces are repeated this often on CUDA, so a timing lasts long enough to measure."""

app = typer.Typer(add_completion=False)


def load_faces(count: int, seed: int) -> tuple[list[Image.Image], str]:
    """``count`` decoded 178x218 RGB faces: real CelebA images if present, else random pixels."""
    files = sorted(CELEBA_IMAGES.glob("*.jpg"))[:count] if CELEBA_IMAGES.is_dir() else []
    if len(files) == count:
        return [Image.open(f).convert("RGB") for f in files], f"{count} real CelebA images"
    rng = np.random.default_rng(seed)
    arrays = rng.integers(0, 256, size=(count, 218, 178, 3), dtype=np.uint8)
    return [Image.fromarray(a) for a in arrays], f"{count} random 178x218 images"


def pil_coefficients(matrix: np.ndarray) -> tuple[float, ...]:
    """PIL's AFFINE data (output -> input, pixel centres at +0.5) for a source -> output matrix."""
    inverse = invert(matrix[None])[0]
    a, b, c = inverse[0]
    d, e, f = inverse[1]
    return (a, b, c + 0.5 - 0.5 * (a + b), d, e, f + 0.5 - 0.5 * (d + e))


def per_image(
    image: Image.Image, matrix: np.ndarray, sigma: float, gamma: float, size: int
) -> torch.Tensor:
    """One face through the per-image pipeline (PIL fills outside the image with black)."""
    out = image.transform((size, size), Image.Transform.AFFINE, pil_coefficients(matrix),
                          resample=Image.Resampling.BILINEAR)  # fmt: skip
    if sigma > 0:
        out = out.filter(ImageFilter.GaussianBlur(sigma))
    out = TF.adjust_gamma(out, gamma)
    return TF.pil_to_tensor(out).float().div_(255.0)


Job = tuple[int, int, np.ndarray, list[float], list[float], int]
"""A slice of faces ``[start, stop)`` with their matrices, sigmas, gammas and the crop side."""
_FACES: list[Image.Image] = []


def _keep_faces(faces: list[Image.Image]) -> None:
    """Worker initializer: the faces travel once, not with every job."""
    _FACES[:] = faces


def run_per_image(job: Job) -> torch.Tensor:
    """A slice of the kept faces through ``per_image``, stacked."""
    start, stop, matrices, sigmas, gammas, size = job
    args = zip(_FACES[start:stop], matrices, sigmas, gammas, strict=True)
    return torch.stack([per_image(*arg, size) for arg in args])


def checksum_per_image(job: Job) -> float:
    """``run_per_image`` in a worker, returning only a checksum (no tensor shipping cost)."""
    return float(run_per_image(job).sum())


def best_rate(run: Callable[[], object], count: int, trials: list[float]) -> None:
    """Time ``run`` once and append its images/s to ``trials``."""
    start = time.perf_counter()
    run()
    trials.append(count / (time.perf_counter() - start))


@app.command()
def main(
    images: int = typer.Option(256, help="faces per timing"),
    batch: int = typer.Option(64, help="batch size of the batched path"),
    size: int = typer.Option(224, help="output crop side"),
    trials: int = typer.Option(3, help="alternating timings; the best of each is reported"),
    workers: int = typer.Option(2, help="processes for the per-image pipeline (0: in process)"),
    seed: int = typer.Option(0),
) -> None:
    """Print images/s of both pipelines on CPU (and the batched one on CUDA) and their ratio."""
    faces, source = load_faces(images, seed)
    tensor = torch.from_numpy(np.stack([np.asarray(f) for f in faces])).permute(0, 3, 1, 2)
    tensor = tensor.contiguous()
    rng = np.random.default_rng(seed)
    landmarks = MEAN_ALIGNED_LANDMARKS + rng.normal(0, 2.0, size=(images, 5, 2))
    alignment = affact_alignment_matrix(landmarks, size)
    augment = AffactAugment(AffactJitter(), size)
    generator = torch.Generator().manual_seed(seed)
    drawn = augment(tensor, alignment, landmarks, generator)

    def batched(device: torch.device, batch_size: int, faces: torch.Tensor) -> Callable[[], object]:
        on_device = faces.to(device)
        repeats = len(faces) // images
        matrices = np.concatenate([alignment] * repeats)

        def run() -> object:
            outs = [
                augment(
                    on_device[i : i + batch_size], matrices[i : i + batch_size], None, generator
                )
                for i in range(0, len(faces), batch_size)
            ]
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return outs

        return run

    matrices = drawn.matrices.numpy()
    sigmas, gammas = drawn.params.blur_sigma.tolist(), drawn.params.gamma.tolist()
    step = -(-images // max(workers, 1))
    jobs: list[Job] = [
        (i, i + step, matrices[i : i + step], sigmas[i : i + step], gammas[i : i + step], size)
        for i in range(0, images, step)
    ]
    _keep_faces(faces)
    reference = torch.cat([run_per_image(job) for job in jobs])
    difference = (reference - drawn.images).abs().median().item()

    cpu_trials: list[float] = []
    pil_trials: list[float] = []
    run_cpu = batched(torch.device("cpu"), batch, tensor)
    spawn = multiprocessing.get_context("spawn")  # forking after torch's threads may hang
    with ProcessPoolExecutor(
        max(workers, 1), mp_context=spawn, initializer=_keep_faces, initargs=(faces,)
    ) as pool:
        list(pool.map(checksum_per_image, jobs))  # start the workers before timing

        def run_pil() -> object:
            if workers == 0:
                return [run_per_image(job) for job in jobs]
            return list(pool.map(checksum_per_image, jobs))

        for _ in range(trials):
            best_rate(run_cpu, images, cpu_trials)
            best_rate(run_pil, images, pil_trials)
    cpu_rate, pil_rate = max(cpu_trials), max(pil_trials)
    print(f"{source}, {size}x{size} crops, torch threads {torch.get_num_threads()}")
    print(f"median |batched - per-image| per pixel: {difference:.4f} (same draws)")
    print(f"per-image PIL pipeline ({workers} worker processes): {pil_rate:8.0f} images/s")
    print(f"batched, CPU, batch {batch}:                 {cpu_rate:8.0f} images/s")
    print(f"ratio batched CPU / per-image:               {cpu_rate / pil_rate:8.2f}x")
    if torch.cuda.is_available():
        cuda_batch, cuda_images = max(batch, 512), CUDA_REPEATS * images
        run_cuda = batched(torch.device("cuda"), cuda_batch, tensor.repeat(CUDA_REPEATS, 1, 1, 1))
        run_cuda()
        cuda_trials: list[float] = []
        for _ in range(trials):
            best_rate(run_cuda, cuda_images, cuda_trials)
        cuda_rate = max(cuda_trials)
        print(f"batched, CUDA, batch {cuda_batch}:              {cuda_rate:8.0f} images/s")
        print(f"ratio batched CUDA / per-image:              {cuda_rate / pil_rate:8.2f}x")


if __name__ == "__main__":
    app()
