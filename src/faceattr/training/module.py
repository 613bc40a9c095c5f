"""The LightningModule: an :class:`AttributeModel`, its loss, the device-side batch transform and
the optimiser; validation reports the loss, every binary and categorical attribute's accuracy and
every numeric attribute's mean absolute error, source by source when there are several."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy, MultilabelAccuracy

from faceattr.models import AttributeModel, Attributes, OutputLayout, as_schema, binary_logits
from faceattr.training.batch import FaceBatch
from faceattr.training.config import OptimizerConfig
from faceattr.training.datamodule import FaceDataModule
from faceattr.training.losses import AttributeLoss
from faceattr.training.transform import FaceTransform


def build_optimizer(model: AttributeModel, settings: OptimizerConfig) -> torch.optim.Optimizer:
    """SGD, Adam or RMSprop over the head (``lr``) and the backbone (``backbone_lr``); a frozen
    backbone's parameters are in the optimiser too and simply get no gradients while frozen."""
    backbone_lr = settings.backbone_lr or settings.lr
    groups: list[dict[str, Any]] = [
        {"name": "backbone", "params": list(model.backbone.parameters()), "lr": backbone_lr},
        {"name": "head", "params": list(model.head.parameters()), "lr": settings.lr},
    ]
    groups = [g for g in groups if g["params"]]
    if settings.name == "sgd":
        return torch.optim.SGD(
            groups, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
        )
    if settings.name == "rmsprop":
        return torch.optim.RMSprop(
            groups, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
        )
    return torch.optim.Adam(groups, lr=settings.lr, weight_decay=settings.weight_decay)


MISSING_LABEL = -1
"""The value a missing (NaN) label takes for torchmetrics' ``ignore_index``."""


class AttributeMetrics(torch.nn.Module):
    """Loss and per-attribute scores over an epoch (summed over DDP processes): the accuracy of
    each binary attribute (P >= 0.5) and of each categorical one (the most probable class), the
    mean absolute error of each numeric one (the expectation, in its unit)."""

    def __init__(self, attributes: Attributes, reported: Collection[str] | None = None) -> None:
        super().__init__()
        self.layout = OutputLayout(as_schema(attributes))
        self.reported = set(self.layout.schema.names if reported is None else reported)
        """The attributes :meth:`compute` reports (a source's labelled ones)."""
        self.binary = self.layout.columns("binary")
        self.categorical = self.layout.columns("categorical")
        self.numeric = self.layout.columns("numeric")
        self.accuracy: MultilabelAccuracy | BinaryAccuracy | None = None
        if len(self.binary) > 1:
            self.accuracy = MultilabelAccuracy(
                num_labels=len(self.binary), average="none", ignore_index=MISSING_LABEL
            )
        elif self.binary:  # torchmetrics' multilabel metrics need two labels or more
            self.accuracy = BinaryAccuracy(ignore_index=MISSING_LABEL)
        attributes_ = self.layout.schema.attributes
        self.class_accuracy = torch.nn.ModuleList(
            MulticlassAccuracy(
                len(attributes_[k].classes), average="micro", ignore_index=MISSING_LABEL
            )
            for k in self.categorical
        )
        self.absolute_error = torch.nn.ModuleList(MeanMetric() for _ in self.numeric)
        self.loss = MeanMetric()

    def update(self, outputs: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        """Add one batch of flat outputs (see :class:`~faceattr.models.OutputLayout`); NaN
        targets, missing labels, are left out."""
        outputs, targets = outputs.float(), targets.float()
        missing = torch.nan_to_num(targets, nan=MISSING_LABEL)
        if self.accuracy is not None:
            probabilities = torch.sigmoid(self.layout.binary_logits(outputs))
            labels = missing[:, self.binary].int()
            if isinstance(self.accuracy, BinaryAccuracy):
                probabilities, labels = probabilities[:, 0], labels[:, 0]
            self.accuracy.update(probabilities, labels)
        if not (self.categorical or self.numeric):
            self.loss.update(loss, weight=targets.shape[0])
            return
        decoded = list(self.layout.decode(outputs).values())
        for metric, k in zip(self._class_accuracy(), self.categorical, strict=True):
            metric.update(decoded[k], missing[:, k].long())
        for mean, k in zip(self._absolute_error(), self.numeric, strict=True):
            known = ~torch.isnan(targets[:, k])
            error = torch.where(known, decoded[k] - missing[:, k], 0.0).abs()
            mean.update(error, weight=known.float())
        self.loss.update(loss, weight=targets.shape[0])

    def _class_accuracy(self) -> list[MulticlassAccuracy]:
        return [m for m in self.class_accuracy if isinstance(m, MulticlassAccuracy)]

    def _absolute_error(self) -> list[MeanMetric]:
        return [m for m in self.absolute_error if isinstance(m, MeanMetric)]

    def compute(self, prefix: str, attributes: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """``{prefix}/loss``, ``{prefix}/acc/<attribute>`` for binary and categorical attributes,
        ``{prefix}/mean_accuracy`` (their mean, when there are any), ``{prefix}/mae/<attribute>``
        for numeric ones, of the reported attributes; resets."""
        accuracies: dict[str, torch.Tensor] = {}
        if self.accuracy is not None:
            binary = self.accuracy.compute().reshape(-1)
            accuracies.update({attributes[k]: binary[i] for i, k in enumerate(self.binary)})
            self.accuracy.reset()
        for metric, k in zip(self._class_accuracy(), self.categorical, strict=True):
            if attributes[k] in self.reported:
                accuracies[attributes[k]] = metric.compute()
            metric.reset()
        accuracies = {n: v for n, v in accuracies.items() if n in self.reported}
        values = {f"{prefix}/loss": self.loss.compute()}
        if accuracies:
            ordered = [accuracies[n] for n in attributes if n in accuracies]
            values[f"{prefix}/mean_accuracy"] = torch.stack(ordered).mean()
            values.update(
                {f"{prefix}/acc/{n}": accuracies[n] for n in attributes if n in accuracies}
            )
        for mean, k in zip(self._absolute_error(), self.numeric, strict=True):
            if attributes[k] in self.reported:
                values[f"{prefix}/mae/{attributes[k]}"] = mean.compute()
            mean.reset()
        self.loss.reset()
        return values


@dataclass(frozen=True)
class ValidationSource:
    """One source of a multi-source run, as validation reports it."""

    name: str
    """The metrics' prefix: ``val/<name>/loss``, ``val/<name>/acc/Male``, ..."""
    share: float
    """Its share of the training images (its weight over the sum of the weights)."""
    attributes: tuple[str, ...]
    """The model's attributes it labels (the only ones reported for it)."""


class AttributeModule(pl.LightningModule):
    """Trains ``model`` with ``loss``; ``transform`` makes its inputs on the device.
    ``pos_weight_from_train`` sets the loss's positive-class weights from the datamodule's
    training labels (seed 004) when fitting starts. With ``sources`` (a multi-source run),
    validation loader ``i`` holds source ``i``'s images: each is reported under its name, and
    ``val/loss`` and ``val/mean_accuracy`` weigh the sources' by their shares."""

    def __init__(
        self,
        model: AttributeModel,
        loss: AttributeLoss,
        transform: FaceTransform,
        optimizer: OptimizerConfig,
        *,
        pos_weight_from_train: bool = False,
        compile_model: bool = False,
        seed: int = 0,
        sources: Sequence[ValidationSource] = (),
    ) -> None:
        super().__init__()
        self.model = model
        self.loss = loss
        self.transform = transform
        self.optimizer_settings = optimizer
        self.pos_weight_from_train = pos_weight_from_train
        self.compile_model = compile_model
        self.seed = seed
        self.sources = tuple(sources)
        self.val_metrics = torch.nn.ModuleList(
            [AttributeMetrics(model.schema, s.attributes) for s in sources]
            or [AttributeMetrics(model.schema)]
        )
        self.test_metrics = AttributeMetrics(model.schema)
        self.generator: torch.Generator | None = None

    def setup(self, stage: str) -> None:
        """Positive-class weights from the training labels, channels-last and compilation."""
        if stage == "fit" and self.pos_weight_from_train:
            datamodule = getattr(self.trainer, "datamodule", None)
            if not isinstance(datamodule, FaceDataModule):
                raise TypeError("pos_weight_from_train needs a FaceDataModule")
            self.loss.weights_from_labels(datamodule.train_labels())
        if self.transform.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if self.compile_model:
            self.model.compile()

    def on_train_epoch_start(self) -> None:
        """Seed this epoch's random draws (augmentation, dropout) from (seed, rank, epoch): the
        same in a resumed run as in an unbroken one, and different in every DDP process."""
        seed = int(
            np.random.SeedSequence(
                [self.seed, self.global_rank, self.current_epoch]
            ).generate_state(1)[0]
        )
        torch.manual_seed(seed)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Crop, augment (training only) and normalise the batch where it now lives."""
        if not isinstance(batch, FaceBatch):
            return batch
        if self.trainer.training:
            return self.transform.train_batch(batch, self.generator)
        return self.transform.eval_batch(batch)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> Any:
        """Loss of one batch."""
        images, targets = batch
        loss = self.loss(self.model(images), targets)
        self.log(
            "train/loss",
            loss,
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=targets.shape[0],
        )
        return loss

    def _evaluate(
        self, batch: tuple[torch.Tensor, torch.Tensor], metrics: AttributeMetrics
    ) -> None:
        images, targets = batch
        outputs = self.model(images)
        flat = binary_logits(outputs.float(), self.model.head_type)
        metrics.update(flat, targets, self.loss(outputs, targets))

    def validation_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Accumulate validation loss and accuracies (of source ``dataloader_idx``)."""
        metrics = self.val_metrics[dataloader_idx]
        assert isinstance(metrics, AttributeMetrics)
        self._evaluate(batch, metrics)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Accumulate test loss and accuracies."""
        self._evaluate(batch, self.test_metrics)

    def on_validation_epoch_end(self) -> None:
        """Log ``val/loss``, ``val/mean_accuracy`` (over binary and categorical attributes),
        ``val/acc/<attribute>`` and ``val/mae/<numeric attribute>``; with several sources, each
        source's as ``val/<source>/...`` and, overall, ``val/loss`` and ``val/mean_accuracy``
        as the sources' averaged with their training shares (sources without accuracies left
        out of the latter, the others' shares renormalised)."""
        metrics = [m for m in self.val_metrics if isinstance(m, AttributeMetrics)]
        if not self.sources:
            values = metrics[0].compute("val", self.model.attributes)
        else:
            values = {}
            for source, source_metrics in zip(self.sources, metrics, strict=True):
                values.update(source_metrics.compute(f"val/{source.name}", self.model.attributes))
            values["val/loss"] = self._weighted(values, "loss")
            if any(f"val/{s.name}/mean_accuracy" in values for s in self.sources):
                values["val/mean_accuracy"] = self._weighted(values, "mean_accuracy")
        self.log("val/loss", values.pop("val/loss"), prog_bar=True)
        if "val/mean_accuracy" in values:
            self.log("val/mean_accuracy", values.pop("val/mean_accuracy"), prog_bar=True)
        self.log_dict(values)

    def _weighted(self, values: dict[str, torch.Tensor], metric: str) -> torch.Tensor:
        """The sources' ``val/<source>/<metric>`` averaged with their shares."""
        pairs = [
            (source.share, values[f"val/{source.name}/{metric}"])
            for source in self.sources
            if f"val/{source.name}/{metric}" in values
        ]
        total = sum(share for share, _ in pairs)
        return torch.stack([share / total * value for share, value in pairs]).sum()

    def on_test_epoch_end(self) -> None:
        """Log the test split's values as :meth:`on_validation_epoch_end` names them."""
        self.log_dict(self.test_metrics.compute("test", self.model.attributes))

    def on_train_epoch_end(self) -> None:
        """Log each parameter group's learning rate."""
        for group in self.trainer.optimizers[0].param_groups:
            self.log(f"lr/{group['name']}", float(group["lr"]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The configured optimiser (plateaus are handled by ``ReduceLROnPlateauReloadBest``)."""
        return build_optimizer(self.model, self.optimizer_settings)
