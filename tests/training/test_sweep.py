"""Optuna sweeps on the synthetic faces: a 2x2 grid, TPE resumed from SQLite, a retried trial."""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd
import pytest

from faceattr.training.config import ConfigError, load_config
from faceattr.training.cv import best_metrics
from faceattr.training.sweep import SearchParam, SweepSpec, sweep

METRIC = "val/mean_accuracy"


def test_search_params_parse() -> None:
    lr = SearchParam.parse("optimizer.lr=float:1e-4:1e-2:log")
    assert (lr.kind, lr.low, lr.high, lr.log) == ("float", 1e-4, 1e-2, True)
    assert lr.extremes() == ("0.0001", "0.01")
    epochs = SearchParam.parse("trainer.epochs=int:1:3")
    assert (epochs.kind, epochs.extremes(), epochs.log) == ("int", ("1", "3"), False)
    name = SearchParam.parse("optimizer.name=choice:adam,sgd")
    assert name == SearchParam.grid("optimizer.name=adam,sgd")
    assert name.choices == ("adam", "sgd")
    for param in (lr, epochs, name):
        assert SearchParam.parse(param.describe()) == param


@pytest.mark.parametrize(
    "text",
    [
        "optimizer.lr=float:1e-2",
        "optimizer.lr=float:0.1:0.01",
        "optimizer.lr=float:0:1:log",
        "optimizer.lr=float:a:b",
        "optimizer.lr=float:1:2:linear",
        "optimizer.lr=uniform:0:1",
        "trainer.epochs=int:1.5:3",
        "optimizer.name=choice:adam,,sgd",
        "optimizer.name=choice:adam,adam",
    ],
)
def test_bad_search_params_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="optimizer|trainer"):
        SearchParam.parse(text)


def test_a_swept_value_outside_the_schema_fails_before_training(tiny, tmp_path: Path) -> None:
    spec = SweepSpec(
        None, tuple(tiny()), tmp_path, (SearchParam.grid("optimizer.lr=0.01,fast"),), grid=True
    )
    with pytest.raises(ConfigError, match="optimizer.lr"):
        sweep(spec)
    assert not (tmp_path / "sweep.db").exists()


def test_a_2x2_grid_runs_every_combination_once_and_picks_the_best(tiny, tmp_path: Path) -> None:
    params = (
        SearchParam.grid("optimizer.lr=0.02,0.0005"),
        SearchParam.grid("data.batch_size=32,64"),
    )
    spec = SweepSpec(
        None,
        tuple(tiny("trainer.epochs=1", "data.limit_train=64")),
        tmp_path / "grid",
        params,
        grid=True,
    )
    result = sweep(spec)

    table = pd.read_csv(spec.out / "trials.csv", dtype={"optimizer.lr": str})
    assert len(table) == 4 and set(table["state"]) == {"COMPLETE"}
    combinations = set(zip(table["optimizer.lr"], table["data.batch_size"], strict=True))
    assert combinations == {(lr, bs) for lr in ("0.02", "0.0005") for bs in (32, 64)}
    for trial in result.trials:
        assert trial.run_dir is not None
        assert trial.value == best_metrics(trial.run_dir)[1][METRIC]
    assert result.best is not None
    assert result.best.value == table[METRIC].max()
    assert result.best.number == table.loc[table[METRIC].idxmax(), "trial"]

    assert result.best_config is not None
    best = load_config(result.best_config)
    assert best.optimizer.lr == float(result.best.params["optimizer.lr"])
    assert best.data.batch_size == int(result.best.params["data.batch_size"])
    assert best.trainer.run_dir is None

    assert len(sweep(spec).trials) == 4  # a rerun finds the grid done


def test_tpe_resumes_from_sqlite_and_retries_an_interrupted_trial(tiny, tmp_path: Path) -> None:
    params = (
        SearchParam.parse("optimizer.lr=float:1e-4:1e-1:log"),
        SearchParam.parse("optimizer.name=choice:adam,sgd"),
    )
    spec = SweepSpec(
        None,
        tuple(tiny("trainer.epochs=1", "data.limit_train=64")),
        tmp_path / "tpe",
        params,
        seed=3,
    )
    first = sweep(spec, trials=2)
    assert [t.state for t in first.trials] == ["COMPLETE", "COMPLETE"]
    assert first.trials[0].params != first.trials[1].params

    second = sweep(spec, trials=3)
    assert second.trials[:2] == first.trials
    assert len(second.trials) == 3 and second.trials[2].state == "COMPLETE"
    assert sorted(p.name for p in spec.out.glob("trial-*")) == [f"trial-000{i}" for i in range(3)]

    study = optuna.load_study(study_name=spec.study_name, storage=spec.storage_url)
    killed = study.ask()  # a trial whose process died before it trained
    chosen = {"optimizer.lr": killed.suggest_float("optimizer.lr", 1e-4, 1e-1, log=True)}
    chosen["optimizer.name"] = killed.suggest_categorical("optimizer.name", ["adam", "sgd"])
    killed.set_user_attr("run_dir", "trial-0003")
    third = sweep(spec, trials=4)
    states = [t.state for t in third.trials]
    assert states == ["COMPLETE"] * 3 + ["FAIL", "COMPLETE"]
    assert third.trials[4].params == chosen
    assert third.trials[4].run_dir == spec.out / "trial-0003"
