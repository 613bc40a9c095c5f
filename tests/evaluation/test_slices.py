"""Error slices: exact recombination, planted gaps, group labels from the full CelebA labels,
JSON and the heatmap."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.patches import Rectangle

from faceattr.attributes import ATTRIBUTE_INDEX, ATTRIBUTES
from faceattr.evaluation.figures_ext import slice_figure
from faceattr.evaluation.slices import slice_metrics

NAMES = ("Male", "Young", "Eyeglasses", "Pale_Skin", "Smiling", "Bald")


def planted(count: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Labels and decisions of ``count`` faces, half of them Male: Smiling is wrong for 30% of
    the men and 10% of the others (gap -0.2), Bald for 11% and 10% (gap -0.01); the grouping
    attributes themselves are always right."""
    labels = np.zeros((count, len(NAMES)), dtype=np.uint8)
    half = count // 2
    labels[:half, 0] = 1  # Male
    labels[::3, 1] = 1  # Young
    labels[::5, 4] = 1  # Smiling
    decisions = labels.copy()
    smiling, bald = NAMES.index("Smiling"), NAMES.index("Bald")
    decisions[: int(0.3 * half), smiling] ^= 1
    decisions[half : half + int(0.1 * half), smiling] ^= 1
    decisions[half - int(0.11 * half) : half, bald] ^= 1
    decisions[half : half + int(0.1 * half), bald] ^= 1
    return labels, decisions


def test_slice_accuracies_recombine_to_the_overall_accuracy_exactly() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (301, len(NAMES)), dtype=np.uint8)
    decisions = np.where(rng.random(labels.shape) < 0.8, labels, 1 - labels).astype(np.uint8)
    table = slice_metrics(labels, decisions, NAMES)

    correct = (labels == decisions).sum(axis=0)
    assert table.groups == ("Male", "Young", "Eyeglasses", "Pale_Skin")
    np.testing.assert_array_equal(table.present_count + table.absent_count, 301)
    for g in range(len(table.groups)):
        np.testing.assert_array_equal(table.present_correct[g] + table.absent_correct[g], correct)
        weighted = (
            table.present_accuracy[g] * table.present_count[g]
            + table.absent_accuracy[g] * table.absent_count[g]
        ) / 301
        others = [k for k, name in enumerate(NAMES) if name != table.groups[g]]
        np.testing.assert_allclose(weighted[others], correct[others] / 301, rtol=0, atol=1e-12)
        assert np.isnan(table.present_accuracy[g, NAMES.index(table.groups[g])])


def test_a_planted_gap_is_flagged_and_a_small_one_is_not() -> None:
    labels, decisions = planted()
    table = slice_metrics(labels, decisions, NAMES, by=("Male",), gap_threshold=0.05)

    smiling, bald = NAMES.index("Smiling"), NAMES.index("Bald")
    assert table.gap[0, smiling] == pytest.approx(0.7 - 0.9)
    assert table.gap[0, bald] == pytest.approx(0.89 - 0.9)
    assert table.flagged[0].tolist() == [k == smiling for k in range(len(NAMES))]
    document = json.loads(json.dumps(table.to_dict()))
    assert document["flagged"] == [
        {"group": "Male", "attribute": "Smiling", "gap": pytest.approx(-0.2)}
    ]
    assert len(document["rows"]) == len(NAMES) - 1  # Male is not sliced by itself
    assert len(table.to_rows()) == len(NAMES) - 1


def test_a_gap_in_a_small_group_is_not_flagged() -> None:
    labels, decisions = planted()
    labels[:, NAMES.index("Eyeglasses")] = 0
    labels[:10, NAMES.index("Eyeglasses")] = 1  # ten men with glasses, all Smiling-wrong
    table = slice_metrics(labels, decisions, NAMES, by=("Eyeglasses",))
    smiling = NAMES.index("Smiling")
    assert table.gap[0, smiling] < -0.5
    assert not table.flagged.any()
    assert slice_metrics(labels, decisions, NAMES, by=("Eyeglasses",), min_group=10).flagged[
        0, smiling
    ]


def test_grouping_attributes_the_model_lacks_come_from_all_labels() -> None:
    labels, decisions = planted()
    evaluated = ["Smiling", "Bald"]
    columns = [NAMES.index(n) for n in evaluated]
    all_labels = np.zeros((len(labels), 40), dtype=np.uint8)
    all_labels[:, ATTRIBUTE_INDEX["Male"]] = labels[:, 0]
    table = slice_metrics(
        labels[:, columns],
        decisions[:, columns],
        evaluated,
        by=("Male",),
        all_labels=all_labels,
        all_attributes=ATTRIBUTES,
    )
    assert table.gap[0, 0] == pytest.approx(-0.2)
    with pytest.raises(KeyError, match="all_labels"):
        slice_metrics(labels[:, columns], decisions[:, columns], evaluated, by=("Male",))
    with pytest.raises(KeyError, match="Moustache"):
        slice_metrics(labels, decisions, NAMES, by=("Moustache",))


def test_unthresholded_or_mismatched_inputs_are_refused() -> None:
    labels, decisions = planted()
    with pytest.raises(ValueError, match="only 0 and 1"):
        slice_metrics(labels, decisions * 0.7, NAMES)
    with pytest.raises(ValueError, match="shapes disagree"):
        slice_metrics(labels, decisions[:, :3], NAMES)


def test_slice_figure_frames_the_flagged_cells() -> None:
    labels, decisions = planted()
    table = slice_metrics(labels, decisions, NAMES, by=("Male", "Young"))
    figure = slice_figure(table)
    frames = [p for p in figure.axes[0].patches if isinstance(p, Rectangle)]
    assert len(frames) == int(table.flagged.sum()) >= 1
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    assert canvas.buffer_rgba().shape[2] == 4
