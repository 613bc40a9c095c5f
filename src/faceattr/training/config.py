"""Training configuration: typed dataclasses read from a YAML recipe plus dotted overrides.

OmegaConf merges ``configs/<recipe>.yaml`` and ``key=value`` overrides onto the schema below, so an
unknown key, a value of the wrong type or a missing mandatory value (``data.root``) is an error
that names the key. The resolved configuration is written into every run folder::

    config = load_config("configs/facenet_mtl.yaml", ["data.root=../shared/celeba"])
    save_config(config, run_dir / "config.yaml")
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from faceattr.data.loaders import DatasetSource, list_formats
from faceattr.data.record import SPLITS
from faceattr.data.schema import NAME_PATTERN
from faceattr.defaults import DEFAULT_MARGIN, DEFAULT_SIZE
from faceattr.geometry.jitter import AffactJitter

CropKind = Literal["affact", "box", "image", "seed000-a", "seed000-b"]
OptimizerName = Literal["sgd", "adam", "rmsprop"]
Precision = Literal["auto", "32-true", "bf16-mixed", "16-mixed"]


class ConfigError(ValueError):
    """A recipe or an override that does not fit the schema; the message names the key."""


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


def _default(cls: type, name: str) -> Any:
    """The default value of dataclass ``cls``'s field ``name``."""
    found = next(f for f in dataclasses.fields(cls) if f.name == name)
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    return found.default


@dataclass
class SourceConfig:
    """One dataset of a run that learns from several (``data.sources``); the keys it shares with
    :class:`DataConfig` mean what they mean there."""

    root: str = MISSING
    """The dataset folder (any registered format)."""
    name: str | None = None
    """Names the source's validation metrics (``val/<name>/...``); None: ``format`` when given,
    else the root folder's name. Letters, digits and underscores."""
    format: str | None = None
    image_set: Literal["align", "wild"] = "align"
    annotations: list[str] = field(default_factory=list)
    split_seed: int = 0
    cache: str | None = None
    """This source's packed cache folder (written first when incomplete); None: decode its JPEGs.
    Sources may differ: one cached, one decoded."""
    weight: float = 1.0
    """Its share of every training epoch: ``weight / sum of the weights`` of the epoch's images
    (an epoch has as many images as the sources' training splits together), repeating or
    subsampling its images as that share asks."""
    attributes: list[str] | None = None
    """The attributes this source teaches; None: all it labels (the others are missing, NaN)."""

    def dataset(self) -> DatasetSource:
        """Where the dataset is and how to read it."""
        return DatasetSource(
            Path(self.root).expanduser(),
            self.format,
            self.image_set,
            tuple(Path(p) for p in self.annotations),
            self.split_seed,
        )

    def label(self) -> str:
        """The source's name in metric keys and messages."""
        return self.name or self.format or Path(self.root).expanduser().name

    def check(self, key: str, named: bool) -> None:
        """Raise :class:`ConfigError` naming ``key`` (``data.sources[i]``) and the bad field;
        ``named``: the source's name keys metrics (a run of several sources)."""
        _require(
            self.format is None or self.format in list_formats(),
            f"{key}.format",
            f"unknown format {self.format!r}; known: {', '.join(list_formats())}",
        )
        _require(self.weight > 0, f"{key}.weight", f"must be positive, got {self.weight}")
        _require(
            self.attributes is None or len(self.attributes) > 0,
            f"{key}.attributes",
            "must name some attributes (null: all the source labels)",
        )
        _require(
            not named
            or (
                bool(NAME_PATTERN.match(self.label())) and self.label() not in RESERVED_SOURCE_NAMES
            ),
            f"{key}.name",
            f"{self.label()!r} cannot name metrics (letters, digits and underscores, not one of "
            f"{', '.join(RESERVED_SOURCE_NAMES)}): set {key}.name",
        )


RESERVED_SOURCE_NAMES = ("acc", "mae", "loss", "mean_accuracy")
"""Names a source cannot take: ``val/<name>/...`` would read as a single-source metric."""
SINGLE_SOURCE_KEYS = ("root", "format", "image_set", "annotations", "split_seed", "cache")
"""The ``data`` keys that describe the one dataset of a run without ``data.sources``."""


@dataclass
class DataConfig:
    """Where the images come from and how a face is cut out of them: one dataset (``root`` and
    its keys) or several (``sources``)."""

    root: str | None = None
    """The dataset folder (any registered format: ``faceattr.data.loaders``); required unless
    ``sources`` lists the datasets."""
    sources: list[SourceConfig] = field(default_factory=list)
    """Several datasets in one run, each with its own root, format, cache, sampling weight and
    attributes (``SourceConfig``); the model learns the union of their attributes, aligned by
    name, and each image teaches only what its source labels. Override one key of a recipe's
    source as ``data.sources.0.root=PATH``."""
    format: str | None = None
    """The dataset's format (celeba, celebahq, lfwa, utkface, folder); None: detected."""
    image_set: Literal["align", "wild"] = "align"
    """CelebA's image set: the aligned crops or the in-the-wild photos (other formats: theirs)."""
    annotations: list[str] = field(default_factory=list)
    """More folders to look for annotation files in (e.g. CelebA's, for CelebA-HQ's partition)."""
    split_seed: int = 0
    """Seed of the partition drawn for a dataset that ships none (saved and printed)."""
    cache: str | None = None
    """Packed cache folder (``faceattr data prepare``); written there first when incomplete.
    None: decode the JPEGs every epoch."""
    cache_size: int = DEFAULT_SIZE
    """Side of the cache's square loose crops (and of the decoded path's), pixels."""
    cache_margin: float = DEFAULT_MARGIN
    """How much larger than the AFFACT box the loose crop is (room for the jitter)."""
    attributes: list[str] | None = None
    """Attributes to learn, in output order; None: the model's own default list."""
    crop: CropKind = "affact"
    """affact: box of the 5 landmarks (seed 003); box: the dataset/detector box x ``box_scale``;
    image: the whole image stretched (seeds 001, 002, 004 resize the aligned image);
    seed000-a / seed000-b: seed 000's nose and detector-box crops."""
    box_scale: float = 2.0
    """Enlargement of a box crop (seed 003: a detector box x2 is about the AFFACT box)."""
    canonical_landmarks: bool = False
    """Give images without landmarks CelebA's mean aligned landmarks (aligned images only)."""
    batch_size: int = 64
    eval_batch_size: int | None = None
    """Validation batch size; None: ``batch_size``."""
    workers: int = 0
    """DataLoader worker processes (0: load in the training process)."""
    limit_train: int | None = None
    """Train on a seeded random subset of this many training images (of each source)."""
    limit_val: int | None = None
    val_split: Literal["train", "val", "test"] = "val"
    folds: int | None = None
    """Cross-validation: pool the images of ``fold_splits`` and cut them into this many
    identity-disjoint folds (``faceattr.training.folds``); None: the official partition."""
    fold: int | None = None
    """The held-out fold (0-based): it is the ``val`` split, the other folds are ``train``."""
    fold_splits: list[str] = field(default_factory=lambda: ["train", "val"])
    """The partitions pooled into the folds (``test`` stays apart unless listed)."""
    fold_seed: int = 0
    """Seed of the fold assignment (the same for every fold of one cross-validation)."""

    def source_list(self) -> list[SourceConfig]:
        """The datasets of the run: ``sources``, or the one ``root`` and its keys describe."""
        if self.sources:
            return list(self.sources)
        if self.root is None:
            raise ConfigError("data.root: missing value (set data.root=... or list data.sources)")
        return [
            SourceConfig(
                root=self.root,
                format=self.format,
                image_set=self.image_set,
                annotations=list(self.annotations),
                split_seed=self.split_seed,
                cache=self.cache,
            )
        ]

    def __post_init__(self) -> None:
        if self.root is not None or self.sources:  # TrainConfig requires one of them
            for i, source in enumerate(self.source_list()):
                named = len(self.sources) > 1
                source.check(f"data.sources[{i}]" if self.sources else "data", named)
        self._check_sources()
        _require(self.cache_size > 0, "data.cache_size", f"must be positive, got {self.cache_size}")
        _require(self.cache_margin > 0, "data.cache_margin", "must be positive")
        _require(self.box_scale > 0, "data.box_scale", "must be positive")
        _require(self.batch_size > 0, "data.batch_size", f"must be positive, got {self.batch_size}")
        _require(self.workers >= 0, "data.workers", "must be >= 0")
        for key in ("eval_batch_size", "limit_train", "limit_val"):
            value = getattr(self, key)
            _require(value is None or value > 0, f"data.{key}", f"must be positive, got {value}")
        _require(
            not self.canonical_landmarks or self.image_set == "align",
            "data.canonical_landmarks",
            "mean landmarks only fit the aligned image set (data.image_set=align)",
        )
        self._check_folds()

    def _check_sources(self) -> None:
        if not self.sources:
            return
        for key in SINGLE_SOURCE_KEYS:
            _require(
                getattr(self, key) == _default(DataConfig, key),
                f"data.{key}",
                f"set it per source (data.sources[i].{key}) when data.sources lists the datasets",
            )
        labels = [s.label() for s in self.sources]
        for i, label in enumerate(labels):
            _require(
                label not in labels[:i],
                f"data.sources[{i}].name",
                f"{label!r} names an earlier source too: give each source its own name",
            )
        _require(
            self.folds is None, "data.folds", "cross-validation reads one dataset, not sources"
        )

    def _check_folds(self) -> None:
        if self.folds is None:
            _require(self.fold is None, "data.fold", "needs data.folds")
            return
        _require(self.folds >= 2, "data.folds", f"must be at least 2, got {self.folds}")
        _require(
            self.fold is not None and 0 <= self.fold < self.folds,
            "data.fold",
            f"must name the held-out fold in [0, {self.folds}), got {self.fold}",
        )
        _require(self.val_split == "val", "data.val_split", "must be val (the held-out fold)")
        _require(
            bool(self.fold_splits) and set(self.fold_splits) <= set(SPLITS),
            "data.fold_splits",
            f"must list some of {', '.join(SPLITS)}, got {self.fold_splits}",
        )
        _require(
            len(set(self.fold_splits)) == len(self.fold_splits),
            "data.fold_splits",
            "lists a split twice",
        )


@dataclass
class AugmentConfig:
    """Training-time augmentation on the device: AFFACT jitter (seed 003, Algorithm 2 and 7.6)
    with one switch per transform, and seed 000's offline x4 (flip, 2x2 blur, both)."""

    scale_enabled: bool = False
    scale_sigma: float = 0.1
    rotation_enabled: bool = False
    rotation_sigma: float = 20.0
    shift_enabled: bool = False
    shift_sigma: float = 0.05
    mirror_enabled: bool = False
    mirror_p: float = 0.5
    blur_enabled: bool = False
    blur_sigma: float = 3.0
    gamma_enabled: bool = False
    gamma_sigma: float = 1.0
    temperature_enabled: bool = False
    temperature_min: float = 1000.0
    temperature_max: float = 10000.0
    seed000_offline: bool = False
    """Every training image also as its mirror, its 2x2 mean blur and both (4x the batch)."""

    def __post_init__(self) -> None:
        try:
            self.jitter()
        except ValueError as error:
            message = str(error).replace("AffactJitter.", "augment.")
            raise ConfigError(message) from None

    def jitter(self) -> AffactJitter:
        """The :class:`AffactJitter` these settings describe."""
        fields = {k: v for k, v in vars(self).items() if k != "seed000_offline"}
        return AffactJitter(**fields)


@dataclass
class ModelConfig:
    """A registered model (``faceattr.models.list_models()``) and its arguments."""

    name: str = MISSING
    pretrained: str | None = None
    """A LOCAL backbone weights file, or an installed weights name; never downloaded."""
    args: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the model's factory (e.g. ``input_size``, ``dropout``)."""
    init: str | None = None
    """A trained faceattr model to start from, head included (fine-tuning): an export folder,
    a run folder (its best/), a ``.ckpt`` of the same network and attributes, or ``shipped``
    (the package's model); loaded after ``pretrained``."""


@dataclass
class LossConfig:
    """Weighted multi-attribute cross-entropy (``faceattr.training.losses.AttributeLoss``)."""

    task_weight_preset: str | None = None
    """A preset of ``TASK_WEIGHT_PRESETS`` (seed 000: ``facenet``, ``facenet-bis``)."""
    task_weights: dict[str, float] = field(default_factory=dict)
    """Per-attribute weights; they override the preset's, others weigh 1."""
    reduction: Literal["mean", "sum"] = "mean"
    pos_weight: bool = False
    """Class weights from the training labels: negatives/positives for each binary attribute
    (seed 004), scikit-learn's "balanced" ``n / (C n_c)`` for each categorical one."""
    kind_weights: dict[str, float] = field(default_factory=dict)
    """A factor on the weights of every attribute of a kind (``binary``, ``categorical``,
    ``numeric``), e.g. ``{numeric: 0.1}``: a numeric loss (KL + L1 in the attribute's unit) is
    larger than a cross-entropy. Unnamed kinds weigh 1."""
    numeric_sigma: float = 2.0
    """Width, in the attribute's unit, of a numeric label's Gaussian distribution (DLDL)."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kind_weights) - {"binary", "categorical", "numeric"})
        _require(not unknown, "loss.kind_weights", f"unknown kinds {unknown}")
        _require(
            all(w >= 0 for w in self.kind_weights.values()), "loss.kind_weights", "must be >= 0"
        )
        _require(self.numeric_sigma > 0, "loss.numeric_sigma", "must be positive")


@dataclass
class OptimizerConfig:
    """The optimiser, its learning rates, and freezing the backbone for the first epochs."""

    name: OptimizerName = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    """SGD and RMSprop momentum (Adam ignores it)."""
    weight_decay: float = 0.0
    backbone_lr: float | None = None
    """Learning rate of the backbone once it trains; None: ``lr``."""
    freeze_epochs: int = 0
    """Train only the head for this many epochs, then unfreeze the backbone at ``backbone_lr``
    (seeds 001, 002); at least ``trainer.epochs`` keeps it frozen throughout."""

    def __post_init__(self) -> None:
        _require(self.lr > 0, "optimizer.lr", f"must be positive, got {self.lr}")
        _require(self.momentum >= 0, "optimizer.momentum", "must be >= 0")
        _require(self.weight_decay >= 0, "optimizer.weight_decay", "must be >= 0")
        _require(
            self.backbone_lr is None or self.backbone_lr > 0, "optimizer.backbone_lr", "must be > 0"
        )
        _require(self.freeze_epochs >= 0, "optimizer.freeze_epochs", "must be >= 0")


@dataclass
class ScheduleConfig:
    """Learning-rate plateaus with best-weight reloads (seed 003 section 7.3) and early stopping
    (seed 001), both watching ``monitor``."""

    monitor: str = "val/loss"
    """The metric that picks the best epoch (``best/``) and drives plateaus and early stopping.
    With several sources (``data.sources``) ``val/loss`` and ``val/mean_accuracy`` are the
    sources' averaged with their weights, and ``val/<source>/...`` names one source's (e.g.
    ``val/celeba/mean_accuracy``, ``val/utkface/mae/age``)."""
    monitor_mode: Literal["min", "max"] = "min"
    plateau: bool = False
    plateau_patience: int = 2
    plateau_factor: float = 0.1
    plateau_min_lr: float = 0.0
    reload_best: bool = True
    """When the plateau lowers the rate, go back to the best weights so far."""
    lr_drop_epochs: list[int] = field(default_factory=list)
    """Also lower the rate by ``plateau_factor`` (and reload the best weights) at the start of
    these epochs, plateau or not; needs ``plateau``."""
    early_stopping: bool = False
    early_stopping_patience: int = 5
    early_stopping_min_delta: float = 0.01

    def __post_init__(self) -> None:
        _require(self.plateau_patience >= 0, "schedule.plateau_patience", "must be >= 0")
        _require(0 < self.plateau_factor < 1, "schedule.plateau_factor", "must be in (0, 1)")
        _require(
            self.plateau or not self.lr_drop_epochs, "schedule.lr_drop_epochs", "needs plateau"
        )
        _require(all(e > 0 for e in self.lr_drop_epochs), "schedule.lr_drop_epochs", "must be > 0")
        _require(self.early_stopping_patience >= 0, "schedule.early_stopping_patience", ">= 0")
        _require(self.early_stopping_min_delta >= 0, "schedule.early_stopping_min_delta", ">= 0")


@dataclass
class TrainerConfig:
    """How long, where and on what hardware (Lightning's accelerator/devices/strategy)."""

    epochs: int = 10
    max_minutes: float | None = None
    """Stop after this much training time (checked after every step) even if epochs remain;
    the run still exports its best and last models (a fixed-budget comparison)."""
    seed: int = 0
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    """E.g. ``ddp`` for several GPUs or nodes (see ``faceattr.training.trainer``)."""
    precision: Precision = "auto"
    """auto: bf16 autocast on a GPU, 32-bit on a CPU."""
    channels_last: bool | None = None
    """None: on a GPU only."""
    compile: bool = False
    """``torch.compile`` the model's forward."""
    deterministic: bool | None = None
    """None: on a CPU only (two seeded CPU runs then give identical metrics)."""
    output_dir: str = "runs"
    name: str = "run"
    run_dir: str | None = None
    """A fixed run folder instead of ``<output_dir>/<timestamp>-<name>`` (multi-node runs)."""
    log_every_n_steps: int = 10
    progress: bool = True

    def __post_init__(self) -> None:
        _require(self.epochs > 0, "trainer.epochs", f"must be positive, got {self.epochs}")
        _require(
            self.max_minutes is None or self.max_minutes > 0, "trainer.max_minutes", "must be > 0"
        )
        _require(self.num_nodes > 0, "trainer.num_nodes", "must be positive")
        _require(self.log_every_n_steps > 0, "trainer.log_every_n_steps", "must be positive")
        _require(bool(self.name.strip()), "trainer.name", "must not be empty")


@dataclass
class TrainConfig:
    """Everything a training run needs; each part goes to the code that uses it."""

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def __post_init__(self) -> None:
        self.data.source_list()  # data.root or data.sources
        _require(
            self.optimizer.freeze_epochs == 0
            or self.model.pretrained is not None
            or self.model.init is not None,
            "optimizer.freeze_epochs",
            f"{self.optimizer.freeze_epochs} epochs would train only the head on a randomly "
            "initialised backbone (model.pretrained and model.init are unset): give "
            "model.pretrained=PATH|NAME (ImageNet weights) or set optimizer.freeze_epochs=0",
        )


def key_line(path: Path, key: str) -> int | None:
    """The line of ``path`` setting the dotted ``key`` (its sections nested by indentation)."""
    parts, depth = key.split("."), 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        indent = len(line) - len(line.lstrip())
        if line.lstrip().startswith(f"{parts[depth]}:") and indent >= 2 * depth:
            depth += 1
            if depth == len(parts):
                return number
    return None


def _omegaconf_error(error: OmegaConfBaseException, source: str, path: Path | None) -> ConfigError:
    key = getattr(error, "full_key", None) or "?"
    message = str(getattr(error, "msg", error)).splitlines()[0]
    line = key_line(path, key) if path is not None and key != "?" else None
    where = f"{source}:{line}" if line else source
    return ConfigError(f"{where}: {key}: {message}")


def _read_yaml(path: Path) -> Any:
    try:
        return OmegaConf.load(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such recipe") from None
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else "?"
        raise ConfigError(f"{path}:{line}: {error.problem}") from None


CONFIG_FILE = "config.yaml"
"""The resolved config every run writes into its folder."""
RECIPES = Path(__file__).resolve().parents[1] / "configs"
"""The recipes that ship inside the package (``configs/`` of the repository links here)."""


def list_recipes() -> list[str]:
    """Names of the packaged recipes (``faceattr train NAME`` finds them from any folder)."""
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def resolve_recipe(recipe: str | Path) -> Path:
    """A recipe file: ``recipe`` itself when it exists, else the packaged recipe of that name."""
    path = Path(recipe)
    if path.is_file():
        return path
    packaged = RECIPES / f"{path.stem}.yaml"
    if path.parent == Path(".") and packaged.is_file():
        return packaged
    raise ConfigError(
        f"{recipe}: no such recipe file or packaged recipe ({', '.join(list_recipes())})"
    )


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """The recipe at ``path`` (a file or a packaged recipe name; None: the defaults) with
    ``key=value`` overrides applied on top; a key reaches into a list by index
    (``data.sources.1.root=PATH``)."""
    layers = [OmegaConf.structured(TrainConfig)]
    if path is not None:
        path = resolve_recipe(path)
        layers.append(_read_yaml(Path(path)))
    bad = [item for item in overrides if "=" not in item]
    if bad:
        raise ConfigError(f"overrides must look like key=value, got {bad[0]!r}")
    source = str(path) if path is not None else "config"
    try:
        merged = OmegaConf.merge(*layers)
    except OmegaConfBaseException as error:
        raise _omegaconf_error(error, source, Path(path) if path is not None else None) from None
    # A recipe's ??? over an optional field is lost in the merge (it keeps None): look at both.
    recipe = layers[-1] if path is not None else OmegaConf.create()
    try:
        merged.merge_with_dotlist(list(overrides))
        recipe.merge_with_dotlist(list(overrides))
    except OmegaConfBaseException as error:
        raise _omegaconf_error(error, "overrides", None) from None
    unset = OmegaConf.missing_keys(merged) | OmegaConf.missing_keys(recipe)
    if merged.data.sources:
        unset.discard("data.root")  # the sources name the datasets
    missing = sorted(unset)
    if missing:
        line = key_line(Path(path), missing[0]) if path is not None else None
        where = f"{source}:{line}" if line else source
        dotted = re.sub(r"\[(\d+)\]", r".\1", missing[0])
        raise ConfigError(f"{where}: {missing[0]}: missing value (set {dotted}=...)")
    try:
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        raise _omegaconf_error(error, source, Path(path) if path is not None else None) from None
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    assert isinstance(config, TrainConfig)
    return config


def config_to_yaml(config: TrainConfig) -> str:
    """The resolved configuration as YAML (what ``config.yaml`` of a run holds)."""
    return OmegaConf.to_yaml(OmegaConf.structured(config))


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The resolved configuration as plain JSON-ready containers."""
    container = OmegaConf.to_container(OmegaConf.structured(config), resolve=True)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items()}


def save_config(config: TrainConfig, path: str | Path) -> Path:
    """Write ``config`` as YAML to ``path``; :func:`load_config` reads it back unchanged."""
    path = Path(path)
    path.write_text(config_to_yaml(config))
    return path
