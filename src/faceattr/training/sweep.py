"""Hyper-parameter sweeps of a recipe with Optuna: every combination of a grid (seeds 000 and 004)
or ``trials`` draws of the TPE sampler over declared ranges (seed 003's Bayesian sweep).

Each trial is a training run of the recipe with ``key=value`` overrides, in ``OUT/trial-<n>/``;
its objective is a validation metric of the run's best model (``val/mean_accuracy``, maximised).
The study lives in an Optuna storage (``sqlite:///OUT/sweep.db`` by default), so a rerun of the
same sweep keeps the finished trials, retries the interrupted or failed ones with the same
parameters (continuing their run folders) and runs the rest; ``jobs`` processes share the storage
(one command at a time per study: a rerun fails the trials it finds running).
``OUT/trials.csv`` holds the results table, ``OUT/best.yaml`` the best trial's config as a recipe
for ``faceattr train``::

    spec = SweepSpec("demo_facenet", ("data.root=DEMO",), Path("sweeps/lr"),
                     (SearchParam.parse("optimizer.lr=float:1e-4:1e-2:log"),))
    result = sweep(spec, trials=20)
    result.best.params, result.best_config
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
import pandas as pd
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.study import StudyDirection
from optuna.trial import TrialState

from faceattr.training.config import ConfigError, TrainConfig, config_to_yaml, load_config
from faceattr.training.cv import best_metrics, check_run_config, run_parallel
from faceattr.training.trainer import train

ParamKind = Literal["float", "int", "choice"]
DIRECTIONS = ("maximize", "minimize")
SPEC_ATTR = "faceattr_sweep"
"""The study's user attribute describing the sweep (a rerun must describe the same one)."""
RUN_DIR_ATTR = "run_dir"
"""A trial's user attribute naming its run folder (a retried trial inherits it)."""


@dataclass(frozen=True)
class SearchParam:
    """One swept config key: a float or int range (optionally log-scaled) or a set of choices
    (kept as written: each becomes the override ``key=choice``)."""

    key: str
    kind: ParamKind
    choices: tuple[str, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False

    @classmethod
    def parse(cls, text: str) -> SearchParam:
        """``key=float:LOW:HIGH[:log]``, ``key=int:LOW:HIGH[:log]`` or ``key=choice:A,B,...``."""
        key, _, spec = text.partition("=")
        kind, _, rest = spec.partition(":")
        if kind == "choice":
            return cls.grid(f"{key}={rest}")
        parts = rest.split(":")
        if not key or kind not in ("float", "int") or len(parts) not in (2, 3):
            raise ValueError(
                f"{text!r}: expected key=float:LOW:HIGH[:log], key=int:LOW:HIGH[:log] "
                "or key=choice:A,B"
            )
        if len(parts) == 3 and parts[2] != "log":
            raise ValueError(f"{text!r}: the fourth field can only be 'log', got {parts[2]!r}")
        number = float if kind == "float" else int
        try:
            low, high = number(parts[0]), number(parts[1])
        except ValueError:
            raise ValueError(f"{text!r}: {parts[0]!r} and {parts[1]!r} must be {kind}s") from None
        log = len(parts) == 3
        if not low < high or (log and low <= 0):
            raise ValueError(f"{text!r}: needs LOW < HIGH (and LOW > 0 on a log scale)")
        return cls(key, "float" if kind == "float" else "int", low=low, high=high, log=log)

    @classmethod
    def grid(cls, text: str) -> SearchParam:
        """``key=A,B,...``: a grid axis, or the choices of ``key=choice:A,B,...``."""
        key, _, values = text.partition("=")
        choices = tuple(v.strip() for v in values.split(","))
        if not key or not all(choices):
            raise ValueError(f"{text!r}: expected key=A,B,... (no empty value)")
        if len(set(choices)) != len(choices):
            raise ValueError(f"{text!r}: a value is repeated")
        return cls(key, "choice", choices=choices)

    def format(self, value: Any) -> str:
        """The override text of a value of this parameter (a float exactly, as ``repr``)."""
        if self.kind == "choice":
            return str(value)
        return repr(float(value)) if self.kind == "float" else str(int(value))

    def suggest(self, trial: optuna.Trial) -> str:
        """Ask ``trial`` for this parameter's value; the override text."""
        if self.kind == "choice":
            return self.format(trial.suggest_categorical(self.key, list(self.choices)))
        if self.kind == "int":
            value = trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
            return self.format(value)
        return self.format(trial.suggest_float(self.key, self.low, self.high, log=self.log))

    def extremes(self) -> tuple[str, ...]:
        """The override texts spanning this parameter (every choice, or both bounds)."""
        return (
            self.choices
            if self.kind == "choice"
            else (self.format(self.low), self.format(self.high))
        )

    def describe(self) -> str:
        """The parameter in the form :meth:`parse` reads."""
        if self.kind == "choice":
            return f"{self.key}=choice:{','.join(self.choices)}"
        bounds = f"{self.format(self.low)}:{self.format(self.high)}"
        return f"{self.key}={self.kind}:{bounds}{':log' if self.log else ''}"


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: the recipe and overrides every trial shares, the swept parameters (a grid when
    ``grid``: all choices, every combination), the objective, and where it is all kept."""

    recipe: str | None
    overrides: tuple[str, ...]
    out: Path
    params: tuple[SearchParam, ...]
    grid: bool = False
    metric: str = "val/mean_accuracy"
    direction: str = "maximize"
    """``maximize`` or ``minimize`` the metric."""
    storage: str | None = None
    """An Optuna storage URL; None: ``sqlite:///<out>/sweep.db``."""
    study: str | None = None
    """The study's name in the storage; None: the name of ``out``."""
    seed: int = 0

    def __post_init__(self) -> None:
        keys = [p.key for p in self.params]
        if not keys:
            raise ValueError("a sweep needs at least one parameter")
        if len(set(keys)) != len(keys):
            raise ValueError(f"a parameter is swept twice: {keys}")
        if self.grid and any(p.kind != "choice" for p in self.params):
            raise ValueError("a grid sweeps lists of values only (key=A,B,...)")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")

    @property
    def storage_url(self) -> str:
        """The storage URL, the default one resolved."""
        return self.storage or f"sqlite:///{(self.out / 'sweep.db').resolve()}"

    @property
    def study_name(self) -> str:
        """The study's name, the default one resolved."""
        return self.study or self.out.resolve().name

    @property
    def grid_size(self) -> int:
        """How many combinations the grid holds."""
        return math.prod(len(p.choices) for p in self.params)

    def config(self, values: dict[str, str], run_dir: Path | None = None) -> TrainConfig:
        """The recipe with the shared overrides, then ``values``, training into ``run_dir``."""
        overrides = [*self.overrides, *(f"{k}={v}" for k, v in values.items())]
        config = load_config(self.recipe, overrides)
        run = str(run_dir) if run_dir is not None else None
        return replace(config, trainer=replace(config.trainer, run_dir=run))

    def check(self) -> None:
        """Raise :class:`ConfigError` now when a swept value does not fit the config schema."""
        for param in self.params:
            for value in param.extremes():
                self.config({param.key: value})

    def describe(self) -> dict[str, Any]:
        """What makes two sweeps the same one (stored with the study)."""
        return {
            "recipe": self.recipe,
            "overrides": list(self.overrides),
            "params": [p.describe() for p in self.params],
            "grid": self.grid,
            "metric": self.metric,
        }

    def open_storage(self) -> RDBStorage:
        """The storage; SQLite waits up to a minute for a lock held by another trial process."""
        arguments = (
            {"connect_args": {"timeout": 60}} if self.storage_url.startswith("sqlite") else {}
        )
        return RDBStorage(self.storage_url, engine_kwargs=arguments)

    def sampler(self, stream: int) -> optuna.samplers.BaseSampler:
        """The sampler of one trial: the grid's, or TPE seeded from (``seed``, ``stream``)."""
        if self.grid:
            space = {p.key: list(p.choices) for p in self.params}
            return optuna.samplers.GridSampler(space, seed=self.seed)
        seed = int(np.random.SeedSequence([self.seed, stream]).generate_state(1)[0])
        return optuna.samplers.TPESampler(seed=seed)


@dataclass(frozen=True)
class TrialResult:
    """One trial of a sweep."""

    number: int
    state: str
    """``COMPLETE``, ``FAIL``, ``RUNNING`` or ``WAITING`` (Optuna's trial states)."""
    value: float | None
    """The objective, for a complete trial."""
    params: dict[str, Any]
    run_dir: Path | None
    seconds: float | None


@dataclass(frozen=True)
class SweepResult:
    """A sweep's trials so far and its best one."""

    out: Path
    metric: str
    direction: str
    trials: tuple[TrialResult, ...]
    best: TrialResult | None
    best_config: Path | None
    """``best.yaml``: the best trial's config, a recipe for ``faceattr train``."""

    def table(self) -> pd.DataFrame:
        """One row per trial: number, state, objective, parameters, duration, run folder."""
        rows = [
            {
                "trial": t.number,
                "state": t.state,
                self.metric: t.value,
                **t.params,
                "seconds": t.seconds,
                "run_dir": t.run_dir.name if t.run_dir is not None else None,
            }
            for t in self.trials
        ]
        return pd.DataFrame(rows)


def objective(spec: SweepSpec, trial: optuna.Trial) -> float:
    """Train the trial's config into its run folder (continuing it when a retried trial left
    one) and return ``spec.metric`` of the run's best model."""
    values = {p.key: p.suggest(trial) for p in spec.params}
    name = trial.user_attrs.get(RUN_DIR_ATTR) or f"trial-{trial.number:04d}"
    trial.set_user_attr(RUN_DIR_ATTR, name)
    run_dir = spec.out / name
    config = spec.config(values, run_dir)
    started = check_run_config(run_dir, config)
    train(config, resume=run_dir if started else None)
    _, metrics = best_metrics(run_dir)
    if spec.metric not in metrics:
        raise KeyError(f"{run_dir}: no {spec.metric!r} among {', '.join(metrics)}")
    return metrics[spec.metric]


def run_trial(spec: SweepSpec, stream: int) -> None:
    """Run one trial of the sweep's study (in this process or a worker); ``stream`` seeds TPE.
    A ``RuntimeError`` (out of memory, a diverged loss) fails the trial, not the sweep."""
    study = optuna.load_study(
        study_name=spec.study_name, storage=spec.open_storage(), sampler=spec.sampler(stream)
    )
    study.optimize(partial(objective, spec), n_trials=1, catch=(RuntimeError,))


def open_study(spec: SweepSpec) -> optuna.Study:
    """Create the study, or load it after checking it holds this very sweep."""
    study = optuna.create_study(
        storage=spec.open_storage(),
        study_name=spec.study_name,
        direction=StudyDirection[spec.direction.upper()],
        load_if_exists=True,
    )
    described = study.user_attrs.get(SPEC_ATTR)
    if described is None:
        study.set_user_attr(SPEC_ATTR, spec.describe())
    elif described != spec.describe() or study.direction.name.lower() != spec.direction:
        raise ConfigError(
            f"study {spec.study_name!r} in {spec.storage_url} is another sweep ({described}, "
            f"{study.direction.name.lower()}); rerun it as it was or choose another --out"
        )
    return study


def requeue_unfinished(study: optuna.Study, limit: int) -> None:
    """Fail the trials a killed sweep left running, then queue again (same parameters, same run
    folder) up to ``limit`` failed trials whose parameters no other trial finished or holds."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
    trials = study.get_trials(deepcopy=False)
    held = [t.params for t in trials if t.state != TrialState.FAIL]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retried = {n for t in trials for n in RetryHeartbeatStaleTrialCallback.retry_history(t)}
        retry = RetryHeartbeatStaleTrialCallback()
        for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            if limit > 0 and trial.number not in retried and trial.params not in held:
                retry(study, trial)
                held.append(trial.params)
                limit -= 1


def collect(spec: SweepSpec, study: optuna.Study) -> SweepResult:
    """The results of ``study``; writes ``trials.csv`` and, once a trial is complete,
    ``best.yaml`` (the best trial's config, trained into a new run folder)."""
    trials = tuple(
        TrialResult(
            number=t.number,
            state=t.state.name,
            value=t.value,
            params=dict(t.params),
            run_dir=spec.out / t.user_attrs[RUN_DIR_ATTR] if RUN_DIR_ATTR in t.user_attrs else None,
            seconds=t.duration.total_seconds() if t.duration is not None else None,
        )
        for t in study.get_trials(deepcopy=False)
    )
    best, best_config = None, None
    if any(t.state == "COMPLETE" for t in trials):
        best = next(t for t in trials if t.number == study.best_trial.number)
        values = {p.key: p.format(best.params[p.key]) for p in spec.params}
        best_config = spec.out / "best.yaml"
        header = f"# best trial {best.number} of {spec.out}: {spec.metric} = {best.value}\n"
        best_config.write_text(header + config_to_yaml(spec.config(values)))
    result = SweepResult(spec.out, spec.metric, spec.direction, trials, best, best_config)
    result.table().to_csv(spec.out / "trials.csv", index=False)
    return result


def sweep(spec: SweepSpec, trials: int | None = None, jobs: int = 1) -> SweepResult:
    """Run ``spec`` until ``trials`` trials are complete (a grid: every combination), ``jobs``
    trials at a time, resuming the study a previous run left in the storage."""
    if spec.grid and trials is not None:
        raise ValueError("a grid runs each of its combinations once: give no trial count")
    if not spec.grid and (trials is None or trials < 1):
        raise ValueError(f"a TPE sweep needs a positive number of trials, got {trials}")
    spec.check()
    spec.out.mkdir(parents=True, exist_ok=True)
    study = open_study(spec)
    wanted = spec.grid_size if spec.grid else int(trials or 0)
    remaining = wanted - len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    requeue_unfinished(study, remaining)
    start = len(study.get_trials(deepcopy=False))
    tasks = [(spec, start + i) for i in range(max(0, remaining))]
    run_parallel(run_trial, tasks, jobs, "trials")
    return collect(spec, study)
