"""``environment.json`` of a run: library versions, the device, the code's git commit."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

PACKAGES = (
    "faceattr",
    "torch",
    "torchvision",
    "lightning",
    "timm",
    "numpy",
    "omegaconf",
    "safetensors",
    "torchmetrics",
    "opencv-python-headless",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None when absent)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(directory: Path) -> dict[str, Any]:
    """Commit and dirtiness of the git checkout holding ``directory`` (None outside one)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=directory, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def device_description(device: torch.device) -> dict[str, Any]:
    """The device's kind and name (GPU model, or the CPU's core count)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return {
            "type": "cuda",
            "name": torch.cuda.get_device_name(index),
            "count": torch.cuda.device_count(),
            "cuda": torch.version.cuda,
        }
    return {
        "type": device.type,
        "name": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def write_environment(path: Path, device: torch.device, world_size: int) -> Path:
    """Write ``environment.json`` describing this process's environment."""
    payload = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "argv": sys.argv,
        "packages": package_versions(),
        "device": device_description(device),
        "world_size": world_size,
        "git": git_state(Path(__file__).resolve().parent),
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
