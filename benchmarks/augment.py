"""Images/s of the batched AFFACT augmentation against a per-image PIL pipeline, in one run.

Both pipelines get decoded 178x218 faces (real CelebA images when the sample is present, else
random pixels) and produce 224x224 float crops in [0, 1] with the SAME drawn perturbations:
alignment + scale/rotation/shift/mirror as one warp, Gaussian blur, gamma. The per-image
pipeline is a fast one: one PIL ``Image.transform`` (rotate/scale/crop/flip in one go), PIL's
``GaussianBlur``, torchvision's gamma lookup table, then a float tensor, in ``--workers``
processes (as DataLoader workers, one thread each). The batched path gets the faces as the packed
cache hands them over (uint8, ``(N, 3, H, W)`` views of ``(N, H, W, 3)`` memory) and runs on CPU
with both of its kernels: OpenCV per image in ``--threads`` threads (the default) and the batched
torch one (``cpu_kernel="torch"``, the GPU path). Reported: images/s of wall-clock time and CPU
milliseconds per image (all threads and processes; steadier on a shared machine), each the best of
``--trials`` alternating timings.

    python benchmarks/augment.py [--images 256] [--batch 64] [--trials 3] [--workers 2]
"""

from __future__ import annotations

import os

# On a shared machine, OpenMP threads that spin while waiting lose their time slices and slow
# torch's multi-threaded ops several-fold; waiting passively avoids that (set before torch loads).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import multiprocessing  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision.transforms.v2.functional as TF  # noqa: E402
import typer  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

from faceattr.geometry import (  # noqa: E402
    AffactAugment,
    AffactJitter,
    affact_alignment_matrix,
    invert,
)

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


def _start_worker(faces: list[Image.Image]) -> None:
    """Worker initializer: the faces travel once; one torch thread, as in a DataLoader worker."""
    torch.set_num_threads(1)
    _FACES[:] = faces


def run_per_image(job: Job) -> torch.Tensor:
    """A slice of the kept faces through ``per_image``, stacked."""
    start, stop, matrices, sigmas, gammas, size = job
    args = zip(_FACES[start:stop], matrices, sigmas, gammas, strict=True)
    return torch.stack([per_image(*arg, size) for arg in args])


def timed_per_image(job: Job) -> float:
    """``run_per_image`` in a worker; returns its CPU seconds (no tensor shipping cost)."""
    start = time.process_time()
    run_per_image(job)
    return time.process_time() - start


@dataclass
class Timing:
    """The best of several trials of one pipeline."""

    rate: float = 0.0
    """Images per second of wall-clock time."""
    cpu_ms: float = float("inf")
    """CPU milliseconds per image, all threads and processes together."""

    def add(self, images: int, wall_s: float, cpu_s: float) -> None:
        """Keep the better of this trial and the earlier ones."""
        self.rate = max(self.rate, images / wall_s)
        self.cpu_ms = min(self.cpu_ms, 1000 * cpu_s / images)


def time_run(run: Callable[[], float], images: int, timing: Timing) -> None:
    """Time ``run`` (which returns CPU seconds spent outside this process) into ``timing``."""
    wall, cpu = time.perf_counter(), time.process_time()
    outside = run()
    timing.add(images, time.perf_counter() - wall, time.process_time() - cpu + outside)


@app.command()
def main(
    images: int = typer.Option(256, help="faces per timing"),
    batch: int = typer.Option(64, help="batch size of the batched path"),
    size: int = typer.Option(224, help="output crop side"),
    trials: int = typer.Option(3, help="alternating timings; the best of each is reported"),
    workers: int = typer.Option(2, help="processes for the per-image pipeline (0: in process)"),
    threads: int = typer.Option(0, help="torch threads of the batched path (0: torch's default)"),
    seed: int = typer.Option(0),
) -> None:
    """Print images/s of both pipelines on CPU (and the batched one on CUDA) and their ratio."""
    if threads:
        torch.set_num_threads(threads)
    faces, source = load_faces(images, seed)
    tensor = torch.from_numpy(np.stack([np.asarray(f) for f in faces])).permute(0, 3, 1, 2)
    rng = np.random.default_rng(seed)
    landmarks = MEAN_ALIGNED_LANDMARKS + rng.normal(0, 2.0, size=(images, 5, 2))
    alignment = affact_alignment_matrix(landmarks, size)
    augment = AffactAugment(AffactJitter(), size)
    with_torch = AffactAugment(AffactJitter(), size, cpu_kernel="torch")
    drawn = augment(tensor, alignment, landmarks, torch.Generator().manual_seed(seed))
    again = with_torch(tensor, alignment, landmarks, torch.Generator().manual_seed(seed))
    kernels = 255 * (drawn.images - again.images).abs()
    generator = torch.Generator().manual_seed(seed)

    def batched(
        device: torch.device, batch_size: int, faces: torch.Tensor, kernel: AffactAugment
    ) -> Callable[[], float]:
        on_device = faces.to(device)
        matrices = np.concatenate([alignment] * (len(faces) // images))

        def run() -> float:
            for i in range(0, len(faces), batch_size):
                rows = slice(i, i + batch_size)
                kernel(on_device[rows], matrices[rows], None, generator)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return 0.0

        return run

    matrices = drawn.matrices.numpy()
    sigmas, gammas = drawn.params.blur_sigma.tolist(), drawn.params.gamma.tolist()
    step = -(-images // max(workers, 1))
    jobs: list[Job] = [
        (i, i + step, matrices[i : i + step], sigmas[i : i + step], gammas[i : i + step], size)
        for i in range(0, images, step)
    ]
    _FACES[:] = faces
    reference = torch.cat([run_per_image(job) for job in jobs])
    difference = (reference - drawn.images).abs().median().item()

    cpu, cpu_torch, pil = Timing(), Timing(), Timing()
    run_cpu = batched(torch.device("cpu"), batch, tensor, augment)
    run_cpu_torch = batched(torch.device("cpu"), batch, tensor, with_torch)
    spawn = multiprocessing.get_context("spawn")  # forking after torch's threads may hang
    with ProcessPoolExecutor(
        max(workers, 1), mp_context=spawn, initializer=_start_worker, initargs=(faces,)
    ) as pool:
        list(pool.map(timed_per_image, jobs))  # start the workers before timing

        def run_pil() -> float:
            if workers == 0:
                return sum(0.0 for _ in map(run_per_image, jobs))
            return sum(pool.map(timed_per_image, jobs))

        for _ in range(trials):
            time_run(run_cpu, images, cpu)
            time_run(run_pil, images, pil)
            time_run(run_cpu_torch, images, cpu_torch)
    print(f"{source}, {size}x{size} crops; best of {trials} trials; OpenCV {cv2.__version__}")
    print(f"median |batched - per-image| per pixel: {difference:.4f} (same draws)")
    print(f"|OpenCV kernel - torch kernel| in grey levels: max {kernels.max():.4f}, "
          f"mean {kernels.mean():.6f} (same draws)")  # fmt: skip
    print(f"{'pipeline':52s} {'images/s':>9s} {'CPU ms/image':>13s}")
    print(f"{f'per-image PIL, {workers} worker processes':52s} {pil.rate:9.0f} {pil.cpu_ms:13.2f}")
    threads_used = torch.get_num_threads()
    for name, timing in [("OpenCV", cpu), ("torch", cpu_torch)]:
        label = f"batched, CPU, {name} kernel, batch {batch}, {threads_used} threads"
        print(f"{label:52s} {timing.rate:9.0f} {timing.cpu_ms:13.2f}")
    for name, timing in [("OpenCV", cpu), ("torch", cpu_torch)]:
        print(f"ratio batched ({name} kernel) / per-image: {timing.rate / pil.rate:.2f}x in "
              f"images/s, {pil.cpu_ms / timing.cpu_ms:.2f}x in CPU time per image")  # fmt: skip
    if torch.cuda.is_available():
        cuda_batch = max(batch, 512)
        repeated = tensor.repeat(CUDA_REPEATS, 1, 1, 1)
        run_cuda = batched(torch.device("cuda"), cuda_batch, repeated, augment)
        run_cuda()
        cuda = Timing()
        for _ in range(trials):
            time_run(run_cuda, CUDA_REPEATS * images, cuda)
        name = torch.cuda.get_device_name()
        print(f"batched, CUDA ({name}), batch {cuda_batch}: {cuda.rate:9.0f} images/s, "
              f"{cuda.rate / pil.rate:.1f}x the per-image rate")  # fmt: skip


if __name__ == "__main__":
    app()
