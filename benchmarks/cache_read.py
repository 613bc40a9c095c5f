"""Images/s of random training batches read from the packed cache vs decoding their JPEGs with PIL.

    python benchmarks/cache_read.py CACHE [--batch-size 256] [--batches 20] [--seed 0]

Both paths produce the same batches of images as in-memory uint8 tensors, in the same run: the
cache copies rows out of its memory map (``PackedCache.get_batch``), the other decodes each source
JPEG with PIL. The cache is read twice: the first pass may come from disk, the second comes from
the page cache when the file fits in memory. The ratio uses the first pass.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from faceattr.data.cache import CacheBatchSampler, PackedCache
from faceattr.data.loaders import load_dataset


def read_cache(cache: PackedCache, batches: list[list[int]]) -> float:
    """Seconds to read every batch from the cache (a fancy-indexed copy reads every pixel)."""
    started = time.perf_counter()
    for rows in batches:
        cache.get_batch(rows)
    return time.perf_counter() - started


def decode_jpegs(paths: list[list[str]]) -> float:
    """Seconds to decode every batch's JPEGs with PIL, one image at a time, into uint8 tensors."""
    started = time.perf_counter()
    for batch in paths:
        arrays = []
        for path in batch:
            with Image.open(path) as image:
                arrays.append(np.asarray(image.convert("RGB")))
        torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return time.perf_counter() - started


def main() -> None:
    """Parse the arguments, time both paths on the same batches, print images/s and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cache", type=Path)
    parser.add_argument("--split", default="train")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    cache = PackedCache(args.cache)
    sampler = CacheBatchSampler(cache.split_indices(args.split), args.batch_size, seed=args.seed)
    batches = [rows for rows, _ in zip(sampler, range(args.batches), strict=False)]
    data = load_dataset(cache.info.source_root, image_set=cache.info.image_set)
    index = {image_id: i for i, image_id in enumerate(data.image_ids)}
    paths = [[str(data.image_path(index[cache.image_ids[r]])) for r in rows] for rows in batches]
    count = sum(len(rows) for rows in batches)

    cache_rate = count / read_cache(cache, batches)
    jpeg_rate = count / decode_jpegs(paths)
    cached_rate = count / read_cache(cache, batches)
    print(f"{count} images in {len(batches)} random batches of {args.batch_size} from {args.cache}")
    print(f"cache, {cache.size}x{cache.size} uint8 memmap:  {cache_rate:8.0f} images/s")
    print(f"  again (page cache):          {cached_rate:8.0f} images/s")
    print(f"PIL JPEG decode, one by one:   {jpeg_rate:8.0f} images/s")
    print(f"ratio: {cache_rate / jpeg_rate:.1f}x (page cache: {cached_rate / jpeg_rate:.1f}x)")


if __name__ == "__main__":
    main()
