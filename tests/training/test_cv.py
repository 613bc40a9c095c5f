"""Cross-validation on the synthetic faces: one run per fold, mean +- std, resumed reruns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from faceattr.training.config import ConfigError, load_config
from faceattr.training.cv import FOLD_FILE, cross_validate


def test_two_folds_report_mean_and_std_and_a_rerun_keeps_them(tiny, tmp_path: Path) -> None:
    config = load_config(
        None, tiny("trainer.epochs=1", "data.limit_train=64", "data.attributes=[Male,Smiling]")
    )
    out = tmp_path / "cv"
    result = cross_validate(config, folds=2, out=out)

    assert [f.fold for f in result.folds] == [0, 1]
    assert list(result.summary)[:2] == ["val/mean_accuracy", "val/loss"]
    assert {"val/acc/Male", "val/acc/Smiling"} <= set(result.summary)
    for name, summary in result.summary.items():
        values = [f.metrics[name] for f in result.folds]
        assert summary.mean == pytest.approx(np.mean(values))
        assert summary.std == pytest.approx(np.std(values, ddof=1))
    saved = load_config(out / "fold-1" / "config.yaml")
    assert (saved.data.folds, saved.data.fold) == (2, 1)

    table = pd.read_csv(out / "cv.csv", index_col="metric")
    assert list(table.columns) == ["fold 0", "fold 1", "mean", "std"]
    assert table.loc["val/loss", "mean"] == pytest.approx(result.summary["val/loss"].mean)
    report = json.loads((out / "cv.json").read_text())
    assert [r["run_dir"] for r in report["runs"]] == ["fold-0", "fold-1"]

    finished = [(out / f"fold-{k}" / "best" / "model.safetensors").stat().st_mtime for k in (0, 1)]
    (out / "fold-1" / FOLD_FILE).unlink()  # as if killed after training fold 1's last epoch
    again = cross_validate(config, folds=2, out=out)
    assert again.summary == result.summary
    assert (out / "fold-0" / "best" / "model.safetensors").stat().st_mtime == finished[0]

    with pytest.raises(ConfigError, match="another config"):
        cross_validate(load_config(None, tiny("trainer.epochs=1")), folds=2, out=out)
