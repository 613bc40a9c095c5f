"""The sections of one model's report, each a function ``ReportData -> Section | None`` (None:
nothing to show, e.g. no run folder for the training curves).

A new section (say per-subgroup "slices" read from ``eval.json``) is one more such function,
appended to :data:`SINGLE_SECTIONS` (and to ``comparison.COMPARISON_SECTIONS`` where it compares).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from faceattr.data.stats import correlation_figure, dataset_stats
from faceattr.evaluation.analyses import ROBUSTNESS_PNG, SLICES_PNG, reliability_files
from faceattr.evaluation.protocols import load_protocol
from faceattr.report.build import ReportData
from faceattr.report.card import model_card
from faceattr.report.document import (
    Block,
    Cell,
    ReportFigure,
    ReportTable,
    Section,
    cells,
    render_figure,
)
from faceattr.report.figures import (
    confusion_figure,
    error_bars,
    numeric_figure,
    sample_grid,
    training_curves,
    yes_no,
)
from faceattr.report.folders import Evaluation

SectionRenderer = Callable[[ReportData], Section | None]

GRID_ATTRIBUTES = ("Male", "Smiling", "Young", "Eyeglasses", "Wearing_Hat", "Blond_Hair")
"""Attributes marked under the sample images by default (those evaluated, else the first six)."""
CLASSIFICATION_AVERAGES = ("micro", "macro", "weighted", "samples")
C_CENTRE_VIEW = 4
"""Protocol C's centre view (corners first, then the centre; see ``ten_crop``)."""


def percent(value: float) -> str:
    """A fraction as a percentage with two decimals, as seed 003's tables print errors."""
    return f"{100.0 * value:.2f}"


def majority_error(evaluation: Evaluation) -> NDArray[np.float64]:
    """(K,) error of the majority baseline on the evaluated split."""
    return 1.0 - evaluation.baselines["majority"]["accuracy"]


# ---- training -------------------------------------------------------------------------------


def training_section(data: ReportData) -> Section | None:
    """Losses and validation accuracy per epoch (``metrics.csv``)."""
    entry = data.entries[0]
    if entry.run is None or not entry.run.history:
        return None
    history = entry.run.history
    paragraphs = []
    accuracy = history.get("val/mean_accuracy")
    if accuracy is not None and np.isfinite(accuracy).any():
        best = int(np.nanargmax(accuracy))
        paragraphs.append(
            f"{len(accuracy)} epochs; validation mean accuracy {accuracy[-1]:.2%} at the last "
            f"epoch, best {accuracy[best]:.2%} at epoch {best + 1}."
        )
    figure = render_figure(
        "training_curves", "Training curves (metrics.csv)", training_curves({entry.label: history})
    )
    return Section("Training", (*paragraphs, figure))


# ---- errors against the baseline, per protocol ----------------------------------------------


def baseline_section(data: ReportData) -> Section | None:
    """Each attribute's error beside the majority baseline's, on the primary protocol."""
    evaluation = data.entries[0].evaluation
    if evaluation is None:
        return None
    protocol = evaluation.primary_protocol
    error = evaluation.protocols[protocol].per_attribute["error"]
    baseline = majority_error(evaluation)
    beaten = int((error < baseline).sum())
    paragraph = (
        f"Protocol {protocol}: mean error {percent(float(error.mean()))}% against the majority "
        f"baseline's {percent(float(baseline.mean()))}% (the most frequent training class of each "
        f"attribute); the model is better on {beaten} of {len(error)} attributes."
    )
    minority = evaluation.baselines["minority"]
    floor = (
        f"The minority estimator (the rarer training class of each attribute, seed 000) scores "
        f"{minority['accuracy'].mean():.2%} mean accuracy and {minority['f1'].mean():.3f} mean F1 "
        f"(its positive class being the minority one): the F1 a rare-attribute detector must beat."
    )
    figure = error_bars(
        evaluation.attributes,
        {f"{data.entries[0].label} ({protocol})": error},
        baseline,
        f"Error per attribute, protocol {protocol}, {evaluation.split} split",
    )
    caption = f"Per-attribute error against the majority baseline (protocol {protocol})"
    rendered = render_figure("baseline_errors", caption, figure)
    return Section("Error against the baseline", (paragraph, floor, rendered))


def protocol_summary_table(evaluation: Evaluation) -> ReportTable:
    """One row per protocol: images, mean error, F1, balanced accuracy, hamming loss and score."""
    rows = tuple(
        cells(
            name,
            scores.description,
            f"{scores.count:,}",
            percent(scores.mean["error"]),
            f"{scores.mean['f1']:.3f}",
            f"{scores.mean['balanced_accuracy']:.3f}",
            f"{scores.hamming_loss:.4f}",
            f"{scores.hamming_score:.4f}",
        )
        for name, scores in evaluation.protocols.items()
    )
    header = ("protocol", "crops", "images", "mean error %", "mean F1", "mean bal. acc.")
    return ReportTable("Protocols", (*header, "hamming loss", "hamming score"), rows, numeric=True)


def error_table(
    names: Sequence[str], columns: dict[str, NDArray[np.float64]], caption: str
) -> ReportTable:
    """Seed 003's Table 7.1: error (%) per attribute (rows) and column, then the mean row."""
    rows = [cells(name, *(percent(v[k]) for v in columns.values())) for k, name in enumerate(names)]
    rows.append(cells("mean", *(percent(float(v.mean())) for v in columns.values())))
    return ReportTable(caption, ("attribute", *columns), tuple(rows))


def protocol_section(data: ReportData) -> Section | None:
    """The error of every attribute on every protocol, beside the majority baseline."""
    evaluation = data.entries[0].evaluation
    if evaluation is None:
        return None
    errors = {p: s.per_attribute["error"] for p, s in evaluation.protocols.items()}
    baseline = majority_error(evaluation)
    table = error_table(
        evaluation.attributes,
        {**errors, "majority baseline": baseline},
        "Error (%) per attribute and protocol (seed 003, Table 7.1)",
    )
    title = f"Error per attribute and protocol, {evaluation.split} split"
    figure = error_bars(evaluation.attributes, errors, baseline, title)
    caption = "Per-attribute error on each protocol, with the majority baseline"
    summary = protocol_summary_table(evaluation)
    return Section("Protocols", (summary, render_figure("protocol_errors", caption, figure), table))


# ---- the classification report --------------------------------------------------------------


def classification_section(data: ReportData) -> Section | None:
    """Precision, recall, F1 and support per attribute and their averages (seed 004's report)."""
    evaluation = data.entries[0].evaluation
    if evaluation is None:
        return None
    protocol = evaluation.primary_protocol
    scores = evaluation.protocols[protocol]
    metrics = scores.per_attribute
    rows = [
        cells(
            name,
            f"{metrics['precision'][k]:.3f}",
            f"{metrics['recall'][k]:.3f}",
            f"{metrics['f1'][k]:.3f}",
            f"{int(metrics['support'][k]):,}",
        )
        for k, name in enumerate(evaluation.attributes)
    ]
    total = f"{int(metrics['support'].sum()):,}"
    for kind in CLASSIFICATION_AVERAGES:
        if kind in scores.averages:
            average = scores.averages[kind]
            rows.append(
                cells(
                    f"{kind} avg",
                    f"{average['precision']:.3f}",
                    f"{average['recall']:.3f}",
                    f"{average['f1']:.3f}",
                    total,
                )
            )
    paragraph = (
        f"Protocol {protocol}, thresholds: {evaluation.threshold_source}. Every protocol's report "
        f"is also in {evaluation.directory}/classification_report_<P>.csv."
    )
    table = ReportTable(
        f"Classification report, protocol {protocol}",
        ("attribute", "precision", "recall", "f1-score", "support"),
        tuple(rows),
    )
    return Section("Classification report", (paragraph, table))


# ---- label correlations ---------------------------------------------------------------------


def correlation_section(data: ReportData) -> Section | None:
    """The phi correlations of the evaluated split's true labels, strongest pairs named."""
    evaluation = data.entries[0].evaluation
    if evaluation is None or len(evaluation.attributes) < 2:
        return None
    stats = dataset_stats(evaluation.labels, None, evaluation.attributes)
    upper = np.triu(np.nan_to_num(stats.correlation), k=1)
    strongest = np.argsort(-np.abs(upper), axis=None)[:5]
    pairs = [
        f"{stats.names[i]} / {stats.names[j]} {upper[i, j]:+.2f}"
        for i, j in zip(*np.unravel_index(strongest, upper.shape), strict=True)
    ]
    paragraph = f"Strongest pairs on the {evaluation.split} split: {'; '.join(pairs)}."
    caption = f"Attribute correlation of the {evaluation.split} split's true labels"
    figure = render_figure("correlation", caption, correlation_figure(stats))
    return Section("Attribute correlation", (paragraph, figure))


# ---- sample images --------------------------------------------------------------------------


def grid_attributes(evaluation: Evaluation, requested: Sequence[str] | None) -> list[str]:
    """The attributes marked under the sample images: ``requested`` (checked by ``gather``),
    else those of :data:`GRID_ATTRIBUTES` evaluated, else the first six."""
    if requested:
        return list(requested)
    chosen = [name for name in GRID_ATTRIBUTES if name in evaluation.attributes]
    return chosen or list(evaluation.attributes[: len(GRID_ATTRIBUTES)])


def samples_section(data: ReportData) -> Section | None:
    """Sample crops with predicted and true labels marked right or wrong (seed 003, Fig. 3.5
    and A.1)."""
    evaluation = data.entries[0].evaluation
    if evaluation is None:
        return None
    protocol = evaluation.primary_protocol
    try:
        crops = load_protocol(evaluation.protocol_dir, protocol)
    except FileNotFoundError:
        note = f"The crops of protocol {protocol} are not at {evaluation.protocol_dir} any more."
        return Section("Sample images", (note,))
    if not np.array_equal(crops.image_ids, evaluation.image_ids):
        raise ValueError(
            f"{evaluation.protocol_dir}: its images are not the ones {evaluation.directory} scored"
        )
    options = data.options
    count = min(options.samples, len(evaluation.image_ids))
    rng = np.random.default_rng(options.seed)
    rows = np.sort(rng.choice(len(evaluation.image_ids), count, replace=False))
    views = crops.batch(rows)
    images = views[:, C_CENTRE_VIEW if crops.views > 1 else 0]
    predicted = evaluation.decisions[protocol][rows]
    truth = evaluation.labels[rows]
    right = predicted == truth
    ids = [str(i) for i in evaluation.image_ids[rows]]
    titles = [f"{i}: {r.mean():.0%} right" for i, r in zip(ids, right, strict=True)]
    names = grid_attributes(evaluation, options.grid_attributes)
    columns = [evaluation.attributes.index(name) for name in names]
    figure = sample_grid(images, titles, names, predicted[:, columns], truth[:, columns])
    caption = f"Sample {evaluation.split} images (protocol {protocol}): predicted labels"
    table_rows = [
        (
            Cell(name),
            *(
                Cell(yes_no(p), "good" if ok else "bad")
                for p, ok in zip(predicted[:, k], right[:, k], strict=True)
            ),
        )
        for k, name in enumerate(evaluation.attributes)
    ]
    table_rows.append(cells("right", *(f"{int(r.sum())}/{r.size}" for r in right)))
    table = ReportTable(
        "Predicted label per attribute, marked right or wrong (seed 003, Fig. A.1)",
        ("attribute", *ids),
        tuple(table_rows),
        numeric=False,
    )
    paragraph = (
        f"{count} images drawn at random (seed {options.seed}) from the {evaluation.split} split; "
        f"thresholds: {evaluation.threshold_source}."
    )
    return Section("Sample images", (paragraph, render_figure("samples", caption, figure), table))


# ---- error slices and robustness (written by `faceattr evaluate --slices / --robustness`) -----


def stored_figure(evaluation: Evaluation, file: str, caption: str) -> ReportFigure | None:
    """A PNG that ``faceattr evaluate`` wrote beside eval.json, as a report figure."""
    path = evaluation.directory / file
    return ReportFigure(path.stem, caption, path.read_bytes()) if path.is_file() else None


def slices_section(data: ReportData) -> Section | None:
    """Per-attribute accuracy within subgroups (Male, Young, Eyeglasses, Pale_Skin), the
    largest gaps flagged."""
    evaluation = data.entries[0].evaluation
    if evaluation is None or "slices" not in evaluation.document:
        return None
    slices = evaluation.document["slices"]
    flagged = slices["flagged"]
    paragraph = (
        f"Accuracy of each attribute among faces with and without each of "
        f"{', '.join(slices['groups'])} (true labels), protocol {evaluation.primary_protocol}; "
        f"{len(flagged)} gaps exceed {100 * slices['gap_threshold']:.0f} points "
        f"(groups of at least {slices['min_group']} faces)."
    )
    rows = {(r["group"], r["attribute"]): r for r in slices["rows"]}
    table = ReportTable(
        "Largest flagged gaps (accuracy with the group minus without)",
        ("attribute", "group", "with", "without", "gap", "faces with / without"),
        tuple(
            cells(
                f["attribute"],
                f["group"],
                percent(rows[f["group"], f["attribute"]]["present_accuracy"]),
                percent(rows[f["group"], f["attribute"]]["absent_accuracy"]),
                f"{100 * f['gap']:+.2f}",
                f"{rows[f['group'], f['attribute']]['present_count']} / "
                f"{rows[f['group'], f['attribute']]['absent_count']}",
            )
            for f in flagged[:15]
        ),
    )
    figure = stored_figure(evaluation, SLICES_PNG, "Accuracy gap per attribute and group")
    blocks: list[Block] = [paragraph, table]
    if figure is not None:
        blocks.append(figure)
    return Section("Error slices", tuple(blocks))


def robustness_section(data: ReportData) -> Section | None:
    """Mean accuracy under test-time rotation, scale and shift (seed 003's conclusion)."""
    evaluation = data.entries[0].evaluation
    if evaluation is None or "robustness" not in evaluation.document:
        return None
    curves = evaluation.document["robustness"]
    paragraph = (
        "Mean accuracy over the attributes when the model's crop is rotated, scaled or shifted at "
        "test time with the training warp: a flat curve is a model that needs no alignment."
    )
    table = ReportTable(
        "Mean accuracy (%) per transform amount",
        ("transform", "amounts", "accuracies"),
        tuple(
            cells(
                f"{kind} ({curve['unit']})",
                ", ".join(f"{v:g}" for v in curve["values"]),
                ", ".join(percent(a) for a in curve["mean_accuracy"]),
            )
            for kind, curve in curves.items()
        ),
        numeric=False,
    )
    figure = stored_figure(evaluation, ROBUSTNESS_PNG, "Accuracy under test-time transforms")
    blocks: list[Block] = [paragraph, table]
    if figure is not None:
        blocks.append(figure)
    return Section("Robustness", tuple(blocks))


def calibration_section(data: ReportData) -> Section | None:
    """Calibration before and after per protocol (ECE, MCE, Brier, NLL, risk-coverage area) and
    the reliability diagrams of the primary protocol: every attribute, then the worst five."""
    evaluation = data.entries[0].evaluation
    if evaluation is None or "calibration" not in evaluation.document:
        return None
    use = evaluation.document["calibration"]
    protocols = evaluation.document["protocols"]
    methods = use["methods"] or []
    wins = ", ".join(f"{m} {methods.count(m)}" for m in dict.fromkeys(methods)) or "none"
    bins = next(iter(protocols.values()))["calibration"]["raw"]["bins"]
    paragraph = (
        f"Calibration: {use['source']} (per attribute: {wins}). Expected and maximum calibration "
        f"error over {bins} equal-mass bins, Brier score and negative log-likelihood, means over "
        "the attributes, before (raw) and after calibration; the risk-coverage area (AURC) of "
        "the decisions kept by their distance to the threshold."
    )
    rows = []
    for name, entry in protocols.items():
        decided = list(entry["calibration"])[-1]  # the risk-coverage curve is of these
        for kind, measured in entry["calibration"].items():
            mean = measured["mean"]
            area = entry["risk_coverage"]["mean_aurc"]
            rows.append(
                cells(
                    name,
                    kind,
                    f"{mean['ece']:.4f}",
                    f"{mean['mce']:.3f}",
                    f"{mean['brier']:.4f}",
                    f"{mean['nll']:.4f}",
                    f"{area:.4f}" if kind == decided else "",
                )
            )
    table = ReportTable(
        "Calibration, mean over the attributes",
        ("protocol", "probabilities", "ECE", "MCE", "Brier", "NLL", "risk-coverage area"),
        tuple(rows),
    )
    blocks: list[Block] = [paragraph, table]
    primary = evaluation.primary_protocol
    _, grid, worst = reliability_files(primary)
    for file, caption in (
        (grid, f"Reliability diagrams, protocol {primary}: raw (grey) and calibrated (blue)"),
        (worst, f"The five attributes of largest ECE, protocol {primary}"),
    ):
        figure = stored_figure(evaluation, file, caption)
        if figure is not None:
            blocks.append(figure)
    return Section("Calibration", tuple(blocks))


# ---- categorical and numeric attributes -----------------------------------------------------


def kinds_section(data: ReportData) -> Section | None:
    """The categorical and numeric attributes on the primary protocol: their scores beside the
    majority class or the training mean and median, a confusion matrix per categorical attribute,
    predicted against true values and the error by range per numeric one."""
    evaluation = data.entries[0].evaluation
    if evaluation is None or not evaluation.kind_attributes or evaluation.kind_labels is None:
        return None
    primary = evaluation.primary_protocol
    scores = evaluation.document["protocols"][primary]["kinds"]
    baselines = evaluation.document["baselines"]["kinds"]
    categorical: list[tuple[Cell, ...]] = []
    numeric: list[tuple[Cell, ...]] = []
    blocks: list[Block] = []
    for j, attribute in enumerate(evaluation.kind_attributes):
        name, score, baseline = attribute.name, scores[attribute.name], baselines[attribute.name]
        if attribute.kind == "categorical":
            majority = baseline["majority"]
            categorical.append(
                cells(
                    name,
                    str(score["count"]),
                    *(percent(score[m]) for m in ("accuracy", "macro_f1", "balanced_accuracy")),
                    f"{attribute.classes[int(majority['value'])]}: {percent(majority['accuracy'])}",
                )
            )
            title = f"{name}, protocol {primary}"
            figure = confusion_figure(np.asarray(score["confusion"]), attribute.classes, title)
            caption = f"Confusion matrix of {name} (protocol {primary}; rows: true class)"
            blocks.append(render_figure(f"confusion_{name}", caption, figure))
            continue
        numeric.append(
            cells(
                name,
                str(score["count"]),
                *(f"{score[m]:.3g}" for m in ("mae", "rmse")),
                percent(score["cs"]),
                *(f"{baseline[b]['mae']:.3g}" for b in ("mean", "median")),
            )
        )
        truth = evaluation.kind_labels[:, j].astype(np.float64)
        known = ~np.isnan(truth)
        predicted = evaluation.kind_predictions[primary][known, j]
        title = f"{name}, protocol {primary}"
        figure = numeric_figure(truth[known], predicted, attribute.unit, title)
        caption = f"{name}: predicted against true values and the error by range"
        blocks.append(render_figure(f"numeric_{name}", caption, figure))
    tables: list[Block] = []
    if categorical:
        names: tuple[str, ...] = (
            "attribute",
            "images",
            "accuracy",
            "macro-F1",
            "balanced acc.",
            "majority class",
        )
        tables.append(ReportTable("Categorical attributes (%)", names, tuple(categorical)))
    if numeric:
        names = ("attribute", "images", "MAE", "RMSE", "CS(5) %", "mean MAE", "median MAE")
        tables.append(ReportTable("Numeric attributes (in their units)", names, tuple(numeric)))
    return Section("Categorical and numeric attributes", (*tables, *blocks))


SINGLE_SECTIONS: tuple[SectionRenderer, ...] = (
    model_card,
    training_section,
    baseline_section,
    protocol_section,
    kinds_section,
    classification_section,
    calibration_section,
    correlation_section,
    slices_section,
    robustness_section,
    samples_section,
)
"""The sections of one model's report, in order."""
