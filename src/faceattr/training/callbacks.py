"""Training callbacks: best/last model exports, plateaus that reload the best weights (seed 003
section 7.3), freezing the backbone for the first epochs (seeds 001, 002), the metrics history.

Each keeps its state in Lightning's checkpoint (``state_dict``), so a resumed run continues them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.utilities import rank_zero_info

from faceattr.models import AttributeModel, set_backbone_trainable
from faceattr.training.atomic import atomic_write
from faceattr.training.checkpoint import DESCRIPTION_KEY, ModelDescription, export_model


def _model(pl_module: pl.LightningModule) -> AttributeModel:
    model = getattr(pl_module, "model", None)
    if not isinstance(model, AttributeModel):
        raise TypeError(f"{type(pl_module).__name__} has no AttributeModel at .model")
    return model


def _monitored(trainer: pl.Trainer, monitor: str) -> float:
    if monitor not in trainer.callback_metrics:
        known = ", ".join(sorted(trainer.callback_metrics))
        raise KeyError(f"monitored metric {monitor!r} was not logged; logged: {known}")
    return float(trainer.callback_metrics[monitor])


def _scalars(trainer: pl.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


def _better(value: float, best: float | None, mode: str) -> bool:
    return best is None or (value < best if mode == "min" else value > best)


class ExportModel(pl.Callback):
    """After every validation: ``last/`` export of the model, and ``best/`` when ``monitor``
    improved (``model.safetensors`` + ``model.json`` with ``config`` and the epoch's metrics).
    Lightning checkpoints get the model's description too, so they load on their own."""

    def __init__(self, run_dir: Path, monitor: str, mode: str, config: dict[str, Any]) -> None:
        self.run_dir = Path(run_dir)
        self.monitor = monitor
        self.mode = mode
        self.config = config
        self.best: float | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Export ``last/`` and, on improvement, ``best/`` (first process only)."""
        if trainer.sanity_checking:
            return
        value = _monitored(trainer, self.monitor)
        improved = _better(value, self.best, self.mode)
        if improved:
            self.best = value
        if not trainer.is_global_zero:
            return
        model, metrics, epoch = _model(pl_module), _scalars(trainer), trainer.current_epoch
        export_model(model, self.run_dir / "last", self.config, metrics, epoch)
        if improved:
            export_model(model, self.run_dir / "best", self.config, metrics, epoch)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Describe the model inside Lightning's checkpoint."""
        description = ModelDescription.of(_model(pl_module), self.config, _scalars(trainer))
        checkpoint[DESCRIPTION_KEY] = description.to_dict()

    def state_dict(self) -> dict[str, Any]:
        """The best monitored value so far."""
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from a checkpoint's best value."""
        self.best = state_dict["best"]


class ReduceLROnPlateauReloadBest(pl.Callback):
    """``ReduceLROnPlateau`` on ``monitor`` that, whenever it lowers the learning rate, puts back
    the best weights seen so far and clears the optimiser's moments: seed 003's automation of
    AFFACT's "retrain from the best model with a smaller learning rate" (patience 2, factor 0.1).
    ``drop_epochs`` also lowers the rate the same way at the start of those epochs, plateau or not
    (a fixed schedule that still reloads the best weights).
    """

    def __init__(
        self,
        monitor: str = "val/loss",
        mode: str = "min",
        patience: int = 2,
        factor: float = 0.1,
        min_lr: float = 0.0,
        reload_best: bool = True,
        drop_epochs: Sequence[int] = (),
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be min or max, got {mode!r}")
        self.monitor = monitor
        self.mode: Literal["min", "max"] = "min" if mode == "min" else "max"
        self.patience = patience
        self.factor = factor
        self.min_lr = min_lr
        self.reload_best = reload_best
        self.drop_epochs = frozenset(drop_epochs)
        self.scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.reloads = 0
        self._restored: dict[str, Any] | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Attach the scheduler to the optimiser (restoring its state when resuming)."""
        if len(trainer.optimizers) != 1:
            raise ValueError("ReduceLROnPlateauReloadBest needs exactly one optimizer")
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            trainer.optimizers[0],
            mode=self.mode,
            factor=self.factor,
            patience=self.patience,
            min_lr=self.min_lr,
        )
        if self._restored is not None:
            self.scheduler.load_state_dict(self._restored)
            self._restored = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """At a scheduled drop: lower the rate by ``factor`` and go back to the best weights."""
        if trainer.current_epoch not in self.drop_epochs or self.scheduler is None:
            return
        optimizer = trainer.optimizers[0]
        for group, min_lr in zip(optimizer.param_groups, self.scheduler.min_lrs, strict=True):
            group["lr"] = max(float(group["lr"]) * self.factor, min_lr)
        self.scheduler.num_bad_epochs = 0
        self._reload(trainer, pl_module)

    def _reload(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizer = trainer.optimizers[0]
        if self.reload_best and self.best_state is not None:
            _model(pl_module).load_state_dict(self.best_state)
            optimizer.state.clear()
            self.reloads += 1
            rank_zero_info(
                f"epoch {trainer.current_epoch}: learning rate lowered to "
                f"{optimizer.param_groups[-1]['lr']:.3g}; best weights reloaded"
            )

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Step the schedule; keep the weights when they are the best, reload them on a drop."""
        if trainer.sanity_checking or self.scheduler is None:
            return
        optimizer = trainer.optimizers[0]
        before = [float(g["lr"]) for g in optimizer.param_groups]
        best_before = float(self.scheduler.best)
        self.scheduler.step(_monitored(trainer, self.monitor))
        lowered = any(
            float(g["lr"]) < lr for g, lr in zip(optimizer.param_groups, before, strict=True)
        )
        if lowered:
            self._reload(trainer, pl_module)
        elif float(self.scheduler.best) != best_before:
            model = _model(pl_module)
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state, the best weights and how many reloads happened."""
        scheduler = self.scheduler.state_dict() if self.scheduler is not None else self._restored
        return {"scheduler": scheduler, "best_state": self.best_state, "reloads": self.reloads}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from a checkpoint (the schedule is restored once the optimiser exists)."""
        self._restored = state_dict["scheduler"]
        self.best_state = state_dict["best_state"]
        self.reloads = int(state_dict["reloads"])


class FreezeBackbone(pl.Callback):
    """Train only the head for the first ``epochs`` epochs, then the whole network (the
    optimiser's backbone group has its own, usually lower, learning rate)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Freeze or unfreeze for this epoch (a function of the epoch, so resuming agrees)."""
        model = _model(pl_module)
        trainable = trainer.current_epoch >= self.epochs
        if model.backbone_frozen == trainable:
            set_backbone_trainable(model, trainable)
            rank_zero_info(
                f"epoch {trainer.current_epoch}: backbone {'trains' if trainable else 'frozen'}"
            )


class MetricsHistory(pl.Callback):
    """``metrics.csv``: one row per epoch with every scalar metric and each group's learning
    rate; a resumed run keeps the rows of the epochs it does not redo."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, float]] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Read back the history of the epochs already done (when resuming)."""
        self.rows = []
        if trainer.current_epoch > 0 and self.path.is_file():
            with self.path.open(newline="") as file:
                done = [row for row in csv.DictReader(file)]
            self.rows = [
                {k: float(v) for k, v in row.items() if v != ""}
                for row in done
                if int(float(row["epoch"])) < trainer.current_epoch
            ]

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Append this epoch's row and rewrite the file (first process only)."""
        if not trainer.is_global_zero:
            return
        row = {"epoch": float(trainer.current_epoch), "step": float(trainer.global_step)}
        metrics = _scalars(trainer)
        row.update({k: v for k, v in metrics.items() if not k.endswith(("_step", "_epoch"))})
        for group in trainer.optimizers[0].param_groups:
            row[f"lr/{group.get('name', 'group')}"] = float(group["lr"])
        self.rows.append(row)
        columns = list(dict.fromkeys(k for r in self.rows for k in r))
        lines = io.StringIO()
        writer = csv.DictWriter(lines, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.rows)
        text = lines.getvalue()
        atomic_write(self.path, lambda file: file.write(text.encode()))


class SaveLastCheckpoint(Checkpoint):
    """Lightning's full checkpoint (model, optimiser, callbacks' states, loops, random states)
    written to ``path`` at the end of every epoch, after every other callback has run; the
    trainer's checkpoint writer makes each write atomic."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Save (every process calls this; the first one writes)."""
        trainer.save_checkpoint(self.path, weights_only=False)
