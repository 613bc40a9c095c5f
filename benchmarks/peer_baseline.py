"""The peer baseline of the shipped model: the plain per-image pipeline a practitioner writes first.

torchvision's MobileNetV2 from the same offline ImageNet file as ``shipped_mobilenetv2``,
``Resize((128, 128))`` of the whole aligned image, random horizontal flip, ImageNet
normalisation, Adam 1e-3, batch 64, BCE over the 40 attributes, decision threshold 0.5; trained
on the same training images for a fixed wall-clock budget, then scored on the test images::

    python benchmarks/peer_baseline.py --minutes 20    # ../shared/celeba or $FACEATTR_CELEBA
    faceattr train shipped_mobilenetv2 data.root=... data.cache=... trainer.max_minutes=20

The second line trains faceattr's recipe for the same budget; ``faceattr evaluate`` scores it.
Prints the peer's mean accuracy over the 40 attributes, Male and Smiling, next to the majority
baseline of the same test images, and writes them as JSON with ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import models, transforms
from tqdm import tqdm

from faceattr.attributes import ATTRIBUTES
from faceattr.data.baselines import baseline_scores
from faceattr.data.loaders import load_dataset
from faceattr.data.record import FaceDataset
from faceattr.models.pretrained import installed_weights_path, read_state_dict

SIZE = 128
IMAGENET = transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


class AlignedImages(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """The whole aligned JPEGs of ``rows``, decoded with PIL one at a time."""

    def __init__(
        self, celeba: FaceDataset, rows: np.ndarray, transform: transforms.Compose
    ) -> None:
        self.celeba, self.rows, self.transform = celeba, rows, transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        row = int(self.rows[index])
        with Image.open(self.celeba.image_path(row)) as image:
            pixels = self.transform(image.convert("RGB"))
        return pixels, torch.from_numpy(self.celeba.labels[row].astype(np.float32))


def peer_model() -> nn.Module:
    """MobileNetV2 from the offline ImageNet file with a fresh 40-way classifier."""
    model = models.mobilenet_v2()
    model.load_state_dict(read_state_dict(installed_weights_path("mobilenet_v2-imagenet")))
    model.classifier[1] = nn.Linear(model.last_channel, len(ATTRIBUTES))
    return model


def train_until(
    model: nn.Module, loader: DataLoader, budgets: list[float]
) -> Iterator[tuple[int, int, float]]:
    """Train, pausing at each budget (seconds of training, the scoring in between not counted)
    to yield (steps, images, seconds trained) so far."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    steps = images = 0
    trained = 0.0
    with tqdm(desc="peer training", unit="img") as bar:
        for budget in budgets:
            model.train()
            resumed = time.perf_counter()
            while trained + time.perf_counter() - resumed < budget:
                for pixels, labels in loader:
                    optimizer.zero_grad(set_to_none=True)
                    loss = loss_fn(model(pixels), labels)
                    loss.backward()
                    optimizer.step()
                    steps, images = steps + 1, images + len(labels)
                    bar.update(len(labels))
                    bar.set_postfix(loss=f"{loss.item():.3f}")
                    if trained + time.perf_counter() - resumed >= budget:
                        break
            trained += time.perf_counter() - resumed
            yield steps, images, trained


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader) -> tuple[np.ndarray, np.ndarray]:
    """Decisions at 0.5 and labels of every image of ``loader``."""
    model.eval()
    decisions, targets = [], []
    for pixels, labels in tqdm(loader, desc="peer scoring", unit="batch", leave=False):
        decisions.append((torch.sigmoid(model(pixels)) >= 0.5).numpy())
        targets.append(labels.numpy().astype(np.uint8))
    return np.concatenate(decisions), np.concatenate(targets)


def scores(model: nn.Module, loader: DataLoader) -> dict[str, float]:
    """Mean accuracy over the 40 attributes, Male and Smiling on ``loader``'s images."""
    decisions, labels = predict(model, loader)
    accuracy = (decisions == labels).mean(axis=0)
    return {
        "mean_accuracy": float(accuracy.mean()),
        "male": float(accuracy[ATTRIBUTES.index("Male")]),
        "smiling": float(accuracy[ATTRIBUTES.index("Smiling")]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_root = os.environ.get("FACEATTR_CELEBA", "../shared/celeba")
    parser.add_argument("--root", default=default_root, help="CelebA folder")
    parser.add_argument(
        "--minutes", default="20", help="training budget; several (20,40,60) score at each"
    )
    parser.add_argument("--workers", type=int, default=2, help="DataLoader processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    celeba = load_dataset(args.root)
    train_rows = celeba.split_indices("train")
    augment = transforms.Compose(
        [
            transforms.Resize((SIZE, SIZE)),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            IMAGENET,
        ]
    )
    plain = transforms.Compose([transforms.Resize((SIZE, SIZE)), transforms.ToTensor(), IMAGENET])
    train_loader = DataLoader(
        AlignedImages(celeba, train_rows, augment),
        batch_size=64,
        shuffle=True,
        num_workers=args.workers,
        drop_last=True,
    )
    scoring = {
        split: DataLoader(
            AlignedImages(celeba, celeba.split_indices(split), plain),
            batch_size=128,
            num_workers=args.workers,
        )
        for split in ("val", "test")
    }
    test_labels = celeba.labels[celeba.split_indices("test")]
    majority = baseline_scores(celeba.labels[train_rows], test_labels, ATTRIBUTES)
    print(f"majority baseline on test: {majority.mean_majority_accuracy:.2%}")
    budgets = [float(m) * 60 for m in args.minutes.split(",")]
    model = peer_model()
    results = []
    for steps, images, seconds in train_until(model, train_loader, budgets):
        test, val = scores(model, scoring["test"]), scores(model, scoring["val"])
        figures: dict[str, object] = {
            "minutes": seconds / 60,
            "steps": steps,
            "epochs": images / len(train_rows),
            **test,
            "val": val,
            "majority_mean_accuracy": majority.mean_majority_accuracy,
        }
        results.append(figures)
        print(
            f"peer MobileNetV2, per-image PIL pipeline: {seconds / 60:.1f} min, {steps} steps "
            f"({images / len(train_rows):.2f} epochs): test mean accuracy "
            f"{test['mean_accuracy']:.2%}, Male {test['male']:.2%}, Smiling "
            f"{test['smiling']:.2%}; val mean accuracy {val['mean_accuracy']:.2%}"
        )
        if args.out:
            document = results[-1] if len(budgets) == 1 else {**results[-1], "budgets": results}
            args.out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
