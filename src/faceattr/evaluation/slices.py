"""Error slices: each attribute's accuracy within subgroups defined by other attributes.

A mean accuracy hides where a model fails; often it is a group of faces (women with glasses, pale
skin, the old). For every grouping attribute
``g`` (Male, Young, Eyeglasses, Pale_Skin by default) and every evaluated attribute ``a != g``,
:func:`slice_metrics` counts the faces with ``g`` present and absent (ground truth) and how many
of each ``a`` got right. The gap is ``accuracy(g present) - accuracy(g absent)``; it is flagged
when it exceeds ``gap_threshold`` in size and both groups hold at least ``min_group`` faces::

    table = slice_metrics(labels, decisions, model.attributes)
    document["slices"] = table.to_dict()
    rows = table.to_rows()  # CSV / markdown
    figure = slice_figure(table)  # faceattr.evaluation.figures_ext

Counts are integers, so the two groups' correct decisions add up to the attribute's overall
correct decisions exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from faceattr.data.baselines import check_labels

DEFAULT_GROUPS = ("Male", "Young", "Eyeglasses", "Pale_Skin")
"""The grouping attributes of issue 7: sex, age, glasses and skin tone."""
GAP_THRESHOLD = 0.05
MIN_GROUP = 20
"""Fewest faces a group needs before its gap can be flagged (smaller groups are noise)."""

CountArray = NDArray[np.int64]


@dataclass(frozen=True)
class Slice:
    """One evaluated attribute within the two groups of one grouping attribute."""

    group: str
    attribute: str
    present_count: int
    absent_count: int
    present_accuracy: float | None
    """None where the group is empty."""
    absent_accuracy: float | None
    gap: float | None
    flagged: bool


@dataclass(frozen=True)
class SliceTable:
    """Per-group counts and accuracies: rows are grouping attributes ``groups`` (G), columns the
    evaluated ``attributes`` (K). Cells where the grouping attribute is the evaluated one are
    not slices (accuracy NaN, never flagged)."""

    attributes: tuple[str, ...]
    groups: tuple[str, ...]
    present_count: CountArray
    """``(G,)`` faces with the grouping attribute."""
    absent_count: CountArray
    """``(G,)`` faces without it."""
    present_correct: CountArray
    """``(G, K)`` correct decisions among the faces with the grouping attribute."""
    absent_correct: CountArray
    """``(G, K)`` correct decisions among the faces without it."""
    gap_threshold: float = GAP_THRESHOLD
    min_group: int = MIN_GROUP

    @property
    def present_accuracy(self) -> NDArray[np.float64]:
        """``(G, K)`` accuracy within the group with the attribute (NaN: empty or not a slice)."""
        return self._accuracy(self.present_correct, self.present_count)

    @property
    def absent_accuracy(self) -> NDArray[np.float64]:
        """``(G, K)`` accuracy within the group without the attribute."""
        return self._accuracy(self.absent_correct, self.absent_count)

    @property
    def gap(self) -> NDArray[np.float64]:
        """``(G, K)`` present minus absent accuracy."""
        return self.present_accuracy - self.absent_accuracy

    @property
    def flagged(self) -> NDArray[np.bool_]:
        """``(G, K)``: a gap larger than ``gap_threshold`` between two big enough groups."""
        big_enough = np.minimum(self.present_count, self.absent_count) >= self.min_group
        gap = np.nan_to_num(self.gap, nan=0.0)
        return (np.abs(gap) > self.gap_threshold) & big_enough[:, None]

    def _accuracy(self, correct: CountArray, count: CountArray) -> NDArray[np.float64]:
        accuracy = np.full(correct.shape, np.nan)
        np.divide(correct, count[:, None], out=accuracy, where=count[:, None] > 0)
        accuracy[self._self_cells()] = np.nan
        return accuracy

    def _self_cells(self) -> NDArray[np.bool_]:
        """``(G, K)``: cells whose grouping attribute is the evaluated attribute."""
        return np.array(self.groups)[:, None] == np.array(self.attributes)[None, :]

    def slices(self) -> list[Slice]:
        """Every slice (grouping attribute, evaluated attribute), grouping attribute by group."""
        present, absent, gap, flagged = (
            self.present_accuracy,
            self.absent_accuracy,
            self.gap,
            self.flagged,
        )
        return [
            Slice(
                group=group,
                attribute=attribute,
                present_count=int(self.present_count[g]),
                absent_count=int(self.absent_count[g]),
                present_accuracy=_json_float(present[g, k]),
                absent_accuracy=_json_float(absent[g, k]),
                gap=_json_float(gap[g, k]),
                flagged=bool(flagged[g, k]),
            )
            for g, group in enumerate(self.groups)
            for k, attribute in enumerate(self.attributes)
            if group != attribute
        ]

    def to_rows(self) -> list[dict[str, str | int | float | bool | None]]:
        """One flat row per slice, for a CSV file or a markdown table."""
        return [asdict(s) for s in self.slices()]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: the settings, every slice (``rows``) and the flagged ones, largest gap
        first."""
        flagged = sorted((s for s in self.slices() if s.flagged), key=lambda s: -abs(s.gap or 0))
        return {
            "groups": list(self.groups),
            "gap_threshold": self.gap_threshold,
            "min_group": self.min_group,
            "rows": self.to_rows(),
            "flagged": [
                {"group": s.group, "attribute": s.attribute, "gap": s.gap} for s in flagged
            ],
        }


def _json_float(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _binary(values: ArrayLike, what: str) -> NDArray[np.uint8]:
    """``values`` as uint8, refusing anything but 0 and 1 (e.g. unthresholded probabilities)."""
    array = np.asarray(values)
    if array.size and not np.isin(array, (0, 1)).all():
        raise ValueError(f"{what} must hold only 0 and 1 (threshold probabilities first)")
    return check_labels(array.astype(np.uint8), what)


def _group_columns(
    labels: NDArray[np.uint8],
    attributes: tuple[str, ...],
    by: Sequence[str],
    all_labels: ArrayLike | None,
    all_attributes: Sequence[str],
) -> NDArray[np.uint8]:
    """``(N, G)`` ground truth of the grouping attributes: the columns of ``labels`` where the
    model evaluates them, else of ``all_labels`` (columns ``all_attributes``)."""
    unknown = [g for g in by if g not in attributes and g not in all_attributes]
    if unknown:
        raise KeyError(
            f"grouping attribute(s) {unknown} are neither evaluated nor in all_labels' columns"
        )
    full = None if all_labels is None else _binary(all_labels, "all_labels")
    if full is not None and full.shape != (labels.shape[0], len(all_attributes)):
        raise ValueError(
            f"all_labels must be (N, {len(all_attributes)}) for N = {labels.shape[0]} faces, "
            f"got {full.shape}"
        )
    columns = [
        labels[:, attributes.index(g)]
        if full is None or g in attributes
        else full[:, list(all_attributes).index(g)]
        for g in by
    ]
    return np.stack(columns, axis=1)


def slice_metrics(
    labels: ArrayLike,
    decisions: ArrayLike,
    attributes: Sequence[str],
    by: Sequence[str] = DEFAULT_GROUPS,
    gap_threshold: float = GAP_THRESHOLD,
    min_group: int = MIN_GROUP,
    all_labels: ArrayLike | None = None,
    all_attributes: Sequence[str] = (),
) -> SliceTable:
    """Accuracy of each of ``attributes`` within the faces with and without each of ``by``.

    ``labels`` and ``decisions`` are ``(N, K)`` 0/1 arrays (ground truth and the model's
    thresholded outputs) whose columns are ``attributes``. Grouping attributes the model does
    not evaluate are read from ``all_labels``, the same faces' labels of ``all_attributes`` (e.g.
    a protocol set's ``labels`` and ``attributes``).
    """
    names = tuple(attributes)
    truth = _binary(labels, "labels")
    decided = _binary(decisions, "decisions")
    if truth.shape != decided.shape or truth.shape[1] != len(names):
        raise ValueError(
            f"shapes disagree: labels {truth.shape}, decisions {decided.shape}, "
            f"{len(names)} attribute names"
        )
    if gap_threshold < 0 or min_group < 0:
        raise ValueError("gap_threshold and min_group must be >= 0")
    groups = _group_columns(truth, names, by, all_labels, all_attributes)
    correct = (truth == decided).astype(np.int64)
    present = groups.astype(np.int64)
    return SliceTable(
        attributes=names,
        groups=tuple(by),
        present_count=present.sum(axis=0),
        absent_count=(1 - present).sum(axis=0),
        present_correct=present.T @ correct,
        absent_correct=(1 - present).T @ correct,
        gap_threshold=gap_threshold,
        min_group=min_group,
    )
