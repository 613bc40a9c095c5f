"""``train(config) -> RunResult``: one recipe, one run folder, on a CPU, a GPU or many.

A run writes ``<output_dir>/<timestamp>-<name>/``::

    config.yaml        the resolved configuration (``faceattr train --resume`` reads it back)
    environment.json   versions, device, git commit
    metrics.csv        one row per epoch: losses, accuracies, learning rates
    tensorboard/       TensorBoard event files
    checkpoints/last.ckpt   Lightning's full state (optimiser, schedules, epoch), every epoch
    best/, last/       model.safetensors + model.json (``faceattr.training.load_checkpoint``)

Several GPUs or nodes: Lightning's DDP. On one machine ``trainer.devices=4 trainer.strategy=ddp``
starts the other processes itself (each re-runs the command); on several, start one process per
GPU with ``torchrun --nnodes N --nproc-per-node G --rdzv-endpoint HOST:PORT $(which faceattr)
train RECIPE trainer.devices=G trainer.num_nodes=N trainer.strategy=ddp
trainer.run_dir=SHARED/run``: every process must agree on the run folder. Each process takes
every world-size-th batch; metrics are summed over processes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import EarlyStopping, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only

from faceattr.data.schema import Schema, union_schema
from faceattr.geometry.jitter import AffactJitter
from faceattr.models import AttributeModel, create_model
from faceattr.models.registry import default_attributes
from faceattr.training.atomic import atomic_write
from faceattr.training.callbacks import (
    ExportModel,
    FreezeBackbone,
    MetricsHistory,
    ReduceLROnPlateauReloadBest,
    SaveLastCheckpoint,
)
from faceattr.training.checkpoint import Start, init_from, read_start, safe_torch_load
from faceattr.training.config import (
    CONFIG_FILE,
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimizerConfig,
    ScheduleConfig,
    TrainConfig,
    TrainerConfig,
    config_to_dict,
    save_config,
)
from faceattr.training.datamodule import FaceDataModule, source_schema
from faceattr.training.environment import write_environment
from faceattr.training.losses import AttributeLoss, task_weight_preset
from faceattr.training.module import AttributeModule, ValidationSource
from faceattr.training.transform import FaceTransform

RUN_DIR_ENV = "FACEATTR_RUN_DIR"
"""Set by the first process for the DDP processes Lightning starts, so all write one folder."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing each file atomically (temporary file, fsync, rename):
    a process killed mid-save leaves the previous ``last.ckpt`` whole."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike[str], storage_options: Any = None
    ) -> None:
        """Save ``checkpoint`` to ``path`` atomically."""
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        atomic_write(Path(path), lambda file: torch.save(checkpoint, file))

    def load_checkpoint(
        self, path: str | os.PathLike[str], map_location: Any = None, weights_only: Any = None
    ) -> dict[str, Any]:
        """Load ``path`` with :func:`safe_torch_load` (tensors only, on the CPU), whatever the
        caller asks: a pickled object or a truncated file is a one-line ``ModelFileError``."""
        checkpoint: dict[str, Any] = safe_torch_load(Path(path))
        return checkpoint


LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


@dataclass(frozen=True)
class RunResult:
    """What a run produced."""

    run_dir: Path
    epochs: int
    """Epochs completed (fewer than configured when early stopping ended the run)."""
    best: Path
    """The ``best/`` export folder (``load_checkpoint(result.best)``)."""
    last: Path
    best_score: float | None
    """The monitored metric at the best epoch."""
    metrics: dict[str, float]
    """The last validation's metrics."""
    seconds: float

    @property
    def checkpoint(self) -> Path:
        """Lightning's full checkpoint of the last epoch (what ``--resume`` continues from)."""
        return self.run_dir / LAST_CHECKPOINT


@dataclass(frozen=True)
class SplitMetrics:
    """Loss and scores of a model on one split: accuracies of its binary and categorical
    attributes (``mean_accuracy``: their mean, NaN when there are none), mean absolute errors of
    its numeric ones."""

    split: str
    count: int
    loss: float
    mean_accuracy: float
    accuracy: dict[str, float]
    mean_absolute_error: dict[str, float] = field(default_factory=dict)


def process_rank() -> int:
    """This process's global rank as the launcher's environment says (0 when alone)."""
    return int(getattr(rank_zero_only, "rank", 0))


def uses_gpu(accelerator: str) -> bool:
    """Whether Lightning will pick a CUDA device for ``accelerator``."""
    return torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")


def new_run_dir(settings: TrainerConfig) -> Path:
    """The run folder: ``trainer.run_dir``, the one the first DDP process chose, or a new
    ``<output_dir>/<YYYYmmdd-HHMMSS>-<name>``."""
    if settings.run_dir:
        return Path(settings.run_dir)
    if os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    if process_rank() != 0 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise RuntimeError(
            "a distributed launch (torchrun, SLURM) starts every process at once, so they cannot "
            "agree on a new timestamped folder: set trainer.run_dir to one they can all reach"
        )
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(settings.output_dir) / f"{stamp}-{settings.name}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = Path(settings.output_dir) / f"{stamp}-{settings.name}-{suffix}"
    return run_dir


def build_model(
    settings: ModelConfig,
    attributes: Sequence[str] | None,
    labelled: Schema | None = None,
    start: Start | None = None,
) -> AttributeModel:
    """The registered model for the attributes :func:`training_schema` picks. Its weights start
    from ``settings.init``'s trained model when given (the backbone only, with a new head, when
    that model learnt other attributes; ``start``: that model already read)."""
    schema = training_schema(settings.name, attributes, labelled)
    model = create_model(settings.name, schema, pretrained=settings.pretrained, **settings.args)
    if settings.init is not None:
        kept = init_from(model, start or settings.init)
        rank_zero_info(f"{settings.name}: {kept} start from {settings.init}")
    return model


def training_schema(
    model_name: str, attributes: Sequence[str] | None, labelled: Schema | None
) -> Schema | None:
    """What a model learns from data labelling ``labelled`` (None: unknown): ``attributes``,
    with the kinds the data gives them; with none named, the model's own list when the data
    labels all of it, followed by the data's categorical and numeric attributes, else all the
    data labels; None: the model's own list."""
    if labelled is None:
        return None if attributes is None else Schema.binary(attributes)
    if attributes is not None:
        known = [n for n in attributes if n in labelled]
        return (
            labelled.select(attributes)
            if len(known) == len(attributes)
            else Schema.binary(attributes)
        )
    own = default_attributes(model_name)
    if not set(own) <= set(labelled.names):
        return labelled
    others = [a.name for a in labelled.attributes if a.kind != "binary" and a.name not in own]
    return labelled.select([*own, *others])


def source_schemas(data: DataConfig) -> list[Schema]:
    """What each source of ``data`` teaches, with the kinds."""
    return [source_schema(source, data) for source in data.source_list()]


def labelled_attributes(data: DataConfig, schemas: Sequence[Schema]) -> Schema:
    """The attributes the training data labels (``schemas``: its sources'), with their kinds:
    the union aligned by name (:func:`~faceattr.data.schema.union_schema`)."""
    return union_schema(
        {s.label(): schema for s, schema in zip(data.source_list(), schemas, strict=True)}
    )


def validation_sources(
    data: DataConfig, schemas: Sequence[Schema], attributes: Sequence[str]
) -> list[ValidationSource]:
    """Each source of a multi-source run as validation reports it (none for a single source):
    its name, its share of the training images and which of ``attributes`` it teaches
    (``schemas``: the sources')."""
    sources = data.source_list()
    if len(sources) == 1:
        return []
    total = sum(source.weight for source in sources)
    return [
        ValidationSource(
            source.label(), source.weight / total, tuple(a for a in attributes if a in schema)
        )
        for source, schema in zip(sources, schemas, strict=True)
    ]


def build_loss(settings: LossConfig, model: AttributeModel) -> AttributeLoss:
    """The loss for ``model``'s outputs: task weights from the preset, then the explicit ones
    (positive-class weights come from the training labels when fitting starts)."""
    weights = task_weight_preset(settings.task_weight_preset) if settings.task_weight_preset else {}
    weights.update(settings.task_weights)
    return AttributeLoss(
        model.schema,
        model.head_type,
        weights,
        reduction=settings.reduction,
        kind_weights=settings.kind_weights,
        sigma=settings.numeric_sigma,
    )


def build_callbacks(
    run_dir: Path, schedule: ScheduleConfig, freeze_epochs: int, config: TrainConfig, progress: bool
) -> list[pl.Callback]:
    """Exports, the metrics history, last.ckpt, and the configured schedule callbacks."""
    monitor, mode = schedule.monitor, schedule.monitor_mode
    callbacks: list[pl.Callback] = [
        ExportModel(run_dir, monitor, mode, config_to_dict(config)),
        MetricsHistory(run_dir / "metrics.csv"),
        SaveLastCheckpoint(run_dir / LAST_CHECKPOINT),
    ]
    if schedule.plateau:
        callbacks.append(
            ReduceLROnPlateauReloadBest(
                monitor,
                mode,
                schedule.plateau_patience,
                schedule.plateau_factor,
                schedule.plateau_min_lr,
                schedule.reload_best,
                schedule.lr_drop_epochs,
            )
        )
    if schedule.early_stopping:
        callbacks.append(
            EarlyStopping(
                monitor,
                min_delta=schedule.early_stopping_min_delta,
                patience=schedule.early_stopping_patience,
                mode=mode,
            )
        )
    if freeze_epochs > 0:
        callbacks.append(FreezeBackbone(freeze_epochs))
    if progress:
        callbacks.append(TQDMProgressBar())
    return callbacks


def build_trainer(
    settings: TrainerConfig, run_dir: Path, callbacks: list[pl.Callback], freezes: bool
) -> pl.Trainer:
    """Lightning's Trainer: precision, determinism and strategy resolved for the hardware. DDP
    with a frozen backbone needs ``find_unused_parameters``, which is then switched on."""
    gpu = uses_gpu(settings.accelerator)
    precision = (
        settings.precision if settings.precision != "auto" else ("bf16-mixed" if gpu else "32-true")
    )
    deterministic = settings.deterministic if settings.deterministic is not None else not gpu
    strategy = settings.strategy
    if strategy == "ddp" and freezes:
        strategy = "ddp_find_unused_parameters_true"
    return pl.Trainer(
        max_epochs=settings.epochs,
        max_time=timedelta(minutes=settings.max_minutes) if settings.max_minutes else None,
        accelerator=settings.accelerator,
        devices=settings.devices,
        num_nodes=settings.num_nodes,
        strategy=strategy,
        precision=precision,
        deterministic=deterministic,
        callbacks=callbacks,
        logger=TensorBoardLogger(run_dir, name="tensorboard", version=""),
        plugins=[AtomicCheckpointIO()],
        default_root_dir=run_dir,
        use_distributed_sampler=False,
        log_every_n_steps=settings.log_every_n_steps,
        enable_progress_bar=settings.progress,
        enable_model_summary=settings.progress,
    )


def train(config: TrainConfig, resume: str | Path | None = None) -> RunResult:
    """Train as ``config`` says; ``resume`` continues the run folder of a stopped run from its
    ``checkpoints/last.ckpt`` (optimiser, schedules, epoch). Random draws are seeded per epoch
    from (seed, rank, epoch), so the resumed epochs draw what the unbroken run would have."""
    started = time.perf_counter()
    settings = config.trainer
    run_dir = Path(resume) if resume is not None else new_run_dir(settings)
    checkpoint = run_dir / LAST_CHECKPOINT
    first = process_rank() == 0
    if resume is not None and not (run_dir / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no {CONFIG_FILE})")
    if resume is not None and checkpoint.is_file():
        safe_torch_load(checkpoint)  # refuse a bad last.ckpt before building anything
    if first:
        if resume is None:
            reuse = bool(settings.run_dir or os.environ.get(RUN_DIR_ENV))
            run_dir.mkdir(parents=True, exist_ok=reuse)
        save_config(config, run_dir / CONFIG_FILE)  # a resumed run may have changed epochs
    pl.seed_everything(settings.seed, workers=True, verbose=False)

    start = read_start(config.model.init) if config.model.init is not None else None
    schemas = source_schemas(config.data)
    labelled = labelled_attributes(config.data, schemas)
    model = build_model(config.model, config.data.attributes, labelled, start)
    gpu = uses_gpu(settings.accelerator)
    channels_last = settings.channels_last if settings.channels_last is not None else gpu
    transform = FaceTransform(
        model.input_config, config.augment.jitter(), config.augment.seed000_offline, channels_last
    )
    module = AttributeModule(
        model,
        build_loss(config.loss, model),
        transform,
        config.optimizer,
        pos_weight_from_train=config.loss.pos_weight,
        compile_model=settings.compile,
        seed=settings.seed,
        sources=validation_sources(config.data, schemas, model.attributes),
    )
    datamodule = FaceDataModule(
        config.data, model.attributes, model.input_config.size, settings.seed
    )
    datamodule.load_decoded()  # a folder's errors stop the run before Lightning starts
    callbacks = build_callbacks(
        run_dir, config.schedule, config.optimizer.freeze_epochs, config, settings.progress
    )
    trainer = build_trainer(settings, run_dir, callbacks, config.optimizer.freeze_epochs > 0)
    if first:
        write_environment(
            run_dir / "environment.json", trainer.strategy.root_device, trainer.world_size
        )
    ckpt_path = checkpoint if resume is not None and checkpoint.is_file() else None
    if resume is not None and ckpt_path is None:
        rank_zero_info(f"{run_dir} has no {LAST_CHECKPOINT}: starting it from the beginning")
    own_env = RUN_DIR_ENV not in os.environ
    os.environ.setdefault(RUN_DIR_ENV, str(run_dir))
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    finally:
        if own_env:
            os.environ.pop(RUN_DIR_ENV, None)
    export = next(c for c in callbacks if isinstance(c, ExportModel))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    return RunResult(
        run_dir=run_dir,
        epochs=trainer.current_epoch,
        best=run_dir / "best",
        last=run_dir / "last",
        best_score=export.best,
        metrics=metrics,
        seconds=time.perf_counter() - started,
    )


def evaluate(
    model: AttributeModel, data: DataConfig, split: str = "test", accelerator: str = "auto"
) -> SplitMetrics:
    """Loss and per-attribute accuracy (mean absolute error for numeric attributes) of ``model``
    on ``split`` of ``data`` (crop as configured, no augmentation), e.g. a model from
    ``load_checkpoint``."""
    datamodule = FaceDataModule(data, model.attributes, model.input_config.size)
    faces = datamodule.split(split)
    transform = FaceTransform(model.input_config, AffactJitter.off())
    loss = AttributeLoss(model.schema, model.head_type)
    module = AttributeModule(model, loss, transform, OptimizerConfig())
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    (results,) = trainer.test(
        module, dataloaders=datamodule.loader(faces, train=False), verbose=False
    )
    return SplitMetrics(
        split,
        len(faces.positions),
        float(results["test/loss"]),
        float(results.get("test/mean_accuracy", float("nan"))),
        {
            n: float(results[f"test/acc/{n}"])
            for n in model.attributes
            if f"test/acc/{n}" in results
        },
        {
            n: float(results[f"test/mae/{n}"])
            for n in model.attributes
            if f"test/mae/{n}" in results
        },
    )
