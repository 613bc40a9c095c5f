"""Decode source images once and write rendered rows into ``.npy`` memory maps, in parallel.

The engine behind ``faceattr data prepare`` and ``faceattr data protocols``: each source image is
decoded with Pillow, handed to a renderer that returns one value per output array, and the values
are written straight into the row of each output ``.npy`` file (opened as a memory map by whichever
process did the work, so pixels never travel between processes). Images that cannot be decoded are
reported as :class:`RowFailure` and never stop the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from faceattr.image_files import open_image

DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
"""What Pillow raises for missing, truncated, corrupt or oversized image files."""


@dataclass(frozen=True)
class SourceImage:
    """One image to render: its output row, its file and what is known of its face."""

    row: int
    image_id: str
    path: str
    landmarks: np.ndarray
    """``(5, 2)`` source pixels, NaN where unknown."""
    box: np.ndarray
    """``(4,)`` x, y, width, height in source pixels, NaN where unknown."""


@dataclass(frozen=True)
class RowFailure:
    """An image that could not be decoded, and why."""

    row: int
    image_id: str
    reason: str


class RowRenderer(Protocol):
    """Turns one decoded ``(H, W, 3)`` uint8 image into one value per output array name."""

    def __call__(self, image: np.ndarray, source: SourceImage) -> dict[str, np.ndarray]: ...


ChunkDone = Callable[[Sequence[int], Sequence[RowFailure]], None]
"""Called in the main process with the rows a chunk wrote and the rows it could not decode."""


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file to an ``(H, W, 3)`` uint8 RGB array (raises ``DECODE_ERRORS``, and
    ``PixelBudgetError``, a ``ValueError``, over the pixel budget)."""
    with open_image(path) as image:
        return np.asarray(image.convert("RGB"))


def warp_to_uint8(image: np.ndarray, matrices: np.ndarray, size: int) -> np.ndarray:
    """Warp one ``(H, W, 3)`` uint8 image through ``(V, 2, 3)`` matrices to ``(V, S, S, 3)`` uint8.

    One bilinear resampling per view with OpenCV, in ``faceattr.geometry.warp_affine``'s
    convention (source -> output pixel matrices, pixel centres at integers, nearest-pixel borders);
    OpenCV's fixed-point sampling puts it within one grey level of ``warp_affine``, at about a fifth
    of its CPU time per image.
    """
    views = [
        cv2.warpAffine(
            image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        for m in np.asarray(matrices, dtype=np.float64)
    ]
    return np.stack(views)


def create_array(path: Path, rows: int, row_shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Create a zero-filled ``.npy`` of ``(rows, *row_shape)`` (sparse on disk until written)."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(rows, *row_shape))
    array.flush()
    del array


def render_rows(
    sources: Sequence[SourceImage],
    renderer: RowRenderer,
    outputs: dict[str, Path],
    *,
    workers: int,
    on_chunk: ChunkDone,
    chunk_size: int = 64,
    desc: str = "render",
    progress: bool = True,
) -> None:
    """Decode, render and write every source row into ``outputs`` (name -> existing ``.npy`` file).

    ``workers=0`` renders in this process; otherwise a pool of ``workers`` processes does, each
    writing its rows into the shared memory maps itself before ``on_chunk`` hears of the chunk (the
    pages are then in the kernel's page cache, which outlives an interrupted process). The result
    does not depend on ``workers`` or ``chunk_size``.
    """
    chunks = [list(sources[i : i + chunk_size]) for i in range(0, len(sources), chunk_size)]
    skipped = 0
    with tqdm(total=len(sources), desc=desc, unit="img", disable=not progress) as bar:
        for written, failures in _run_chunks(chunks, renderer, outputs, workers):
            on_chunk(written, failures)
            skipped += len(failures)
            bar.update(len(written) + len(failures))
            if failures:
                bar.set_postfix(skipped=skipped, refresh=False)


def _run_chunks(
    chunks: list[list[SourceImage]],
    renderer: RowRenderer,
    outputs: dict[str, Path],
    workers: int,
) -> Iterator[tuple[list[int], list[RowFailure]]]:
    if workers <= 0:
        for chunk in chunks:
            yield render_chunk(chunk, renderer, outputs)
        return
    context = get_context("forkserver")  # forking this (threaded) process could deadlock
    context.set_forkserver_preload([__name__])  # workers fork from a server that imported torch
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)
    try:
        pending: set[Future[tuple[list[int], list[RowFailure]]]] = set()
        queue = iter(chunks)
        for chunk in queue:  # keep a bounded number of chunks in flight
            pending.add(pool.submit(render_chunk, chunk, renderer, outputs))
            if len(pending) >= 2 * workers:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
                following = next(queue, None)
                if following is not None:
                    pending.add(pool.submit(render_chunk, following, renderer, outputs))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _init_worker() -> None:
    torch.set_num_threads(1)  # one process per core: no thread pools fighting over the cores
    cv2.setNumThreads(1)


def render_chunk(
    chunk: Sequence[SourceImage], renderer: RowRenderer, outputs: dict[str, Path]
) -> tuple[list[int], list[RowFailure]]:
    """Render one chunk into the memory-mapped outputs; returns written rows and failures."""
    arrays = {name: np.load(path, mmap_mode="r+") for name, path in outputs.items()}
    written: list[int] = []
    failures: list[RowFailure] = []
    for source in chunk:
        try:
            image = read_rgb(source.path)
        except DECODE_ERRORS as error:
            failures.append(
                RowFailure(source.row, source.image_id, f"{type(error).__name__}: {error}")
            )
            continue
        for name, value in renderer(image, source).items():
            arrays[name][source.row] = value
        written.append(source.row)
    return written, failures
