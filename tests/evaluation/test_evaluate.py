"""``evaluate_model`` on a tiny synthetic run writes the eval contract; the majority baseline of
the real test split is in the error table."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from faceattr.attributes import ATTRIBUTES
from faceattr.data.record import FaceDataset
from faceattr.evaluation.evaluate import (
    ScoringOptions,
    error_table,
    evaluate_model,
    fit_baselines,
    parse_protocols,
    resolve_target,
    write_eval,
)
from faceattr.evaluation.protocols import load_protocol, majority_vote
from faceattr.evaluation.scoring import views_to_input
from faceattr.training.checkpoint import load_checkpoint, load_description

CPU = ScoringOptions(device="cpu", progress=False)
PROTOCOL_KEYS = {
    "description",
    "count",
    "per_attribute",
    "mean",
    "hamming_loss",
    "hamming_score",
    "averages",
}
PER_ATTRIBUTE = {"accuracy", "error", "precision", "recall", "f1", "balanced_accuracy", "support"}


@pytest.fixture
def run(synth_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the synthetic run (evaluations write thresholds into it), with the
    protocol cache in ``tmp_path``."""
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "cache"))
    return Path(shutil.copytree(synth_run, tmp_path / "run"))


def test_evaluation_writes_the_eval_contract(run: Path) -> None:
    result = evaluate_model(run, protocols="A,C,D", options=CPU)
    written = write_eval(result, run / "eval")
    data = json.loads((run / "eval" / "eval.json").read_text())
    names = data["attributes"]
    k = len(names)
    assert (data["format"], data["version"], data["split"]) == ("faceattr-eval", 1, "test")
    assert data["run_dir"] == str(run) and data["model_dir"] == str(run / "best")
    assert data["command"].startswith("faceattr evaluate")
    assert data["thresholds"]["source"] == "val-accuracy" and len(data["thresholds"]["values"]) == k
    assert data["cost"] == {
        "parameters": 21_660,
        "flops": 508_416,
        "input_size": [36, 36],
        "keras_parameters": 21_732,
    }
    for estimator in ("majority", "minority"):
        assert {len(v) for v in data["baselines"][estimator].values()} == {k}
    assert list(data["protocols"]) == ["A", "C", "D"]
    for entry in data["protocols"].values():
        assert set(entry) >= PROTOCOL_KEYS
        assert set(entry["per_attribute"]) == PER_ATTRIBUTE
        assert {len(v) for v in entry["per_attribute"].values()} == {k}
        assert set(entry["averages"]) == {"micro", "macro", "weighted", "samples"}
    # Thresholds went into the model's description.
    assert load_description(run / "best").thresholds == pytest.approx(data["thresholds"]["values"])

    predictions = np.load(written["predictions"])
    thresholds = np.asarray(data["thresholds"]["values"])
    labels = predictions["labels"]
    assert labels.dtype == np.uint8 and labels.shape == (data["protocols"]["A"]["count"], k)
    assert predictions["prob_A"].dtype == np.float32
    decisions_a = (predictions["prob_A"] > thresholds).astype(np.uint8)
    np.testing.assert_array_equal(predictions["decisions_A"], decisions_a)
    accuracy = (decisions_a == labels).mean(axis=0)
    np.testing.assert_allclose(data["protocols"]["A"]["per_attribute"]["accuracy"], accuracy)
    views = predictions["views_C"]
    assert views.shape == (len(labels), 10, k)
    np.testing.assert_allclose(predictions["prob_C"], views.mean(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(
        predictions["decisions_C"], majority_vote(views - thresholds, threshold=0.0)
    )
    # The rows are the protocol set's: rescoring its crops gives the stored raw probabilities,
    # and the calibration stored beside the thresholds gives the decided ones.
    model = load_checkpoint(run / "best")
    crops = load_protocol(data["protocol_dir"], "D").batch(np.arange(5))[:, 0]
    with torch.no_grad():
        again = model.probabilities(views_to_input(torch.from_numpy(crops), model.input_config))
    np.testing.assert_allclose(again.numpy(), predictions["raw_prob_D"][:5], rtol=1e-5, atol=1e-6)
    calibration = load_description(run / "best").calibration
    assert calibration is not None and data["calibration"]["source"] == "fitted on val-A"
    assert data["calibration"]["methods"] == list(calibration.methods)
    np.testing.assert_allclose(
        calibration.apply(again.numpy()), predictions["prob_D"][:5], rtol=1e-5, atol=1e-6
    )
    for entry in data["protocols"].values():
        assert set(entry["calibration"]) == {"raw", "calibrated"}
        assert entry["calibration"]["raw"]["bins"] == 10
        assert len(entry["risk_coverage"]["aurc"]) == k
        assert entry["risk_coverage"]["mean_coverage"][0] == 1.0
    for name in ("calibration_A.csv", "reliability_A.png", "reliability_worst_A.png"):
        assert (written["eval"].parent / name).stat().st_size > 0

    with written["error_table_csv"].open() as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["attribute", "error_A", "error_C", "error_D", "error_majority"]
    assert [r[0] for r in rows[1:]] == [*names, "mean"]
    assert float(rows[-1][1]) == pytest.approx(data["protocols"]["A"]["mean"]["error"])
    assert "| majority |" in written["error_table_md"].read_text()
    report = written["classification_report_D"].read_text().splitlines()
    assert len(report) == 1 + k + 4 and report[-1].startswith("samples avg,")


def test_stored_thresholds_and_cached_protocols_are_reused(run: Path) -> None:
    tuned = evaluate_model(run, protocols="D", tune="accuracy", options=CPU)
    manifest = tuned.protocol_dir / "manifest.json"
    written_at = manifest.stat().st_mtime_ns
    again = evaluate_model(run, protocols=["d"], tune="none", options=CPU)
    assert again.thresholds.source == "model"
    np.testing.assert_allclose(again.thresholds.values, tuned.thresholds.values)
    assert again.protocol_dir == tuned.protocol_dir and manifest.stat().st_mtime_ns == written_at
    assert again.protocols["D"].metrics.error == pytest.approx(tuned.protocols["D"].metrics.error)
    fresh = evaluate_model(run / "last", protocols="D", tune="none", options=CPU)
    assert fresh.thresholds.source == "0.5" and set(fresh.thresholds.values) == {0.5}
    assert resolve_target(run / "last").default_out == run / "eval-last"


def test_majority_baseline_of_the_real_test_split_is_in_the_table(real_celeba: FaceDataset) -> None:
    labels = real_celeba.labels[real_celeba.split_indices("test")]
    assert len(labels) == 2000
    baselines, rows_used = fit_baselines(real_celeba, labels, ATTRIBUTES)
    assert rows_used == "the 16,000 present training images"
    assert baselines.mean_majority_accuracy == pytest.approx(0.8039, abs=5e-5)
    header, rows = error_table(ATTRIBUTES, {}, baselines)
    assert header == ["attribute", "error_majority"]
    assert rows[-1] == ["mean", pytest.approx(1 - 0.8039, abs=5e-5)]


def test_baselines_need_only_the_training_labels(real_celeba: FaceDataset) -> None:
    assert real_celeba.partition is not None
    without_train = replace(real_celeba, present=real_celeba.present & (real_celeba.partition != 0))
    labels = real_celeba.labels[real_celeba.split_indices("test")]
    baselines, rows_used = fit_baselines(without_train, labels, ATTRIBUTES)
    train = real_celeba.partition == 0
    assert (
        rows_used == f"the labels of all {train.sum():,} training rows (no training image present)"
    )
    majority = (real_celeba.labels[train].mean(axis=0) >= 0.5).astype(np.uint8)
    np.testing.assert_allclose(baselines.majority_accuracy, (labels == majority).mean(axis=0))


def test_bad_input_is_named(run: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="neither a run folder"):
        resolve_target(tmp_path)
    with pytest.raises(ValueError, match="unknown protocols"):
        parse_protocols("A,X")
    with pytest.raises(ValueError, match="unknown tuning"):
        evaluate_model(run, tune="auc", options=CPU)  # type: ignore[arg-type]
    val = evaluate_model(run, protocols="A", split="val", tune="none", options=CPU).protocol_dir
    with pytest.raises(ValueError, match="holds the 'val' split"):
        evaluate_model(run, protocol_dir=val, tune="none", options=CPU)
    with pytest.raises(FileNotFoundError, match="dataset root"):
        evaluate_model(run, root=tmp_path / "nowhere", options=CPU)


def test_slices_and_robustness_reach_eval_json_and_the_report(run: Path, tmp_path: Path) -> None:
    from faceattr.report.writer import write_report

    result = evaluate_model(run, protocols="A", tune="none", robustness=True, options=CPU)
    written = write_eval(result, tmp_path / "eval")
    data = json.loads(written["eval"].read_text())
    total = data["protocols"]["A"]["count"]
    for row in data["slices"]["rows"]:
        assert row["present_count"] + row["absent_count"] == total
    assert sorted(data["robustness"]) == ["rotation", "scale", "shift"]
    for curve in data["robustness"].values():
        assert len(curve["mean_accuracy"]) == len(curve["values"]) and curve["count"] > 0
        assert all(0.0 <= a <= 1.0 for a in curve["mean_accuracy"])
    for key in ("slices_png", "robustness_png"):
        assert written[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "--robustness" in data["command"]
    html = write_report([tmp_path / "eval"], tmp_path / "report", progress=False).html.read_text()
    assert "Error slices" in html and "Robustness" in html
