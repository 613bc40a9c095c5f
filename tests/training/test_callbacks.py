"""Callbacks on a toy Lightning run: plateau reloads of the best weights, backbone freezing."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from faceattr.models import create_model
from faceattr.training.callbacks import FreezeBackbone, ReduceLROnPlateauReloadBest
from faceattr.training.config import OptimizerConfig
from faceattr.training.module import build_optimizer


class ScriptedLoss(pl.LightningModule):
    """A real (tiny) AttributeModel trained on noise; validation reports ``losses[epoch]``."""

    def __init__(self, losses: list[float], optimizer: OptimizerConfig) -> None:
        super().__init__()
        self.model = create_model("facenet-mtl", ["Male", "Smiling"], d=4, input_size=[8, 8])
        self.losses = losses
        self.optimizer_settings = optimizer

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.model(batch[0]).square().mean()

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.model(batch[0])

    def on_validation_epoch_end(self) -> None:
        self.log("val/loss", self.losses[self.current_epoch])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return build_optimizer(self.model, self.optimizer_settings)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.rand(16, 1, 8, 8)), batch_size=8)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.rand(4, 1, 8, 8)), batch_size=4)


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


class Probe(pl.Callback):
    """Weights validated at each epoch's end, and weights, rates, optimiser state at its start."""

    def __init__(self) -> None:
        self.validated: list[dict[str, torch.Tensor]] = []
        self.started: list[dict[str, torch.Tensor]] = []
        self.rates: list[float] = []
        self.moments: list[int] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started.append(weights(pl_module.model))
        self.rates.append(trainer.optimizers[0].param_groups[-1]["lr"])
        self.moments.append(len(trainer.optimizers[0].state))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.validated.append(weights(pl_module.model))


def fit(module: pl.LightningModule, epochs: int, callbacks: list[pl.Callback]) -> None:
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module)


def test_plateau_lowers_the_rate_and_reloads_the_best_weights() -> None:
    # best at epoch 1; epochs 2 and 3 are worse -> lowered after 3; 4 and 5 worse -> after 5
    losses = [1.0, 0.5, 0.8, 0.9, 0.95, 0.97, 0.99]
    module = ScriptedLoss(losses, OptimizerConfig(name="sgd", lr=0.1, momentum=0.9))
    probe = Probe()
    plateau = ReduceLROnPlateauReloadBest("val/loss", "min", patience=1, factor=0.1)
    fit(module, len(losses), [probe, plateau])

    assert probe.rates == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001])
    assert plateau.reloads == 2
    assert same(probe.started[4], probe.validated[1])  # back to the best epoch's weights
    assert same(probe.started[6], probe.validated[1])
    assert same(probe.started[3], probe.validated[2])  # no drop: training just went on
    assert not same(probe.validated[3], probe.validated[1])
    assert probe.moments[3] > 0 and probe.moments[4] == 0  # momentum cleared with the reload


def test_plateau_without_reload_only_lowers_the_rate() -> None:
    losses = [1.0, 0.5, 0.8, 0.9]
    module = ScriptedLoss(losses, OptimizerConfig(name="sgd", lr=0.1))
    probe = Probe()
    plateau = ReduceLROnPlateauReloadBest(patience=1, factor=0.5, reload_best=False)
    fit(module, len(losses), [probe, plateau])
    assert plateau.reloads == 0
    assert plateau.scheduler is not None
    assert plateau.scheduler.state_dict()["num_bad_epochs"] == 0
    assert module.trainer.optimizers[0].param_groups[-1]["lr"] == pytest.approx(0.05)
    assert same(probe.started[3], probe.validated[2])


def test_backbone_trains_only_after_the_frozen_epochs() -> None:
    module = ScriptedLoss([1.0, 0.9, 0.8], OptimizerConfig(name="sgd", lr=0.1, backbone_lr=0.01))
    probe = Probe()
    fit(module, 3, [probe, FreezeBackbone(epochs=1)])
    backbone = [k for k in probe.started[0] if k.startswith("backbone.")]
    head = [k for k in probe.started[0] if k.startswith("head.")]
    assert all(torch.equal(probe.validated[0][k], probe.started[0][k]) for k in backbone)
    assert not all(torch.equal(probe.validated[0][k], probe.started[0][k]) for k in head)
    assert not all(torch.equal(probe.validated[1][k], probe.started[1][k]) for k in backbone)
    assert not module.model.backbone_frozen
    rates = {g["name"]: g["lr"] for g in module.trainer.optimizers[0].param_groups}
    assert rates == {"backbone": 0.01, "head": 0.1}


def test_scheduled_drops_lower_the_rate_and_reload_the_best_weights_without_a_plateau() -> None:
    losses = [1.0, 0.5, 0.6, 0.4, 0.3]  # never two bad epochs: the plateau alone would not act
    module = ScriptedLoss(losses, OptimizerConfig(name="sgd", lr=0.1, momentum=0.9))
    probe = Probe()
    plateau = ReduceLROnPlateauReloadBest(patience=1, factor=0.1, drop_epochs=[2, 4])
    fit(module, len(losses), [plateau, probe])  # the probe sees each epoch after the drop
    assert probe.rates == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])
    assert plateau.reloads == 2
    assert same(probe.started[2], probe.validated[1])  # epoch 2 restarts from the best, epoch 1
    assert same(probe.started[4], probe.validated[3])
    assert probe.moments[2] == 0 and probe.moments[3] > 0
