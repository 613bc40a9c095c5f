"""The sections of a comparison of several models: models x protocols, per-attribute errors
side by side (seed 003, Table 7.1), training curves together, and every model's card."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from faceattr.report.build import ReportData
from faceattr.report.card import card_table
from faceattr.report.document import ReportTable, Section, cells, render_figure
from faceattr.report.figures import error_bars, training_curves
from faceattr.report.folders import PREFERRED_PROTOCOLS, Evaluation
from faceattr.report.sections import SectionRenderer, error_table, majority_error, percent

MISSING = "—"


def shared_protocols(evaluations: list[Evaluation]) -> list[str]:
    """Protocols every evaluation scored, in seed 003's order."""
    return [p for p in PREFERRED_PROTOCOLS if all(p in e.protocols for e in evaluations)]


def shared_attributes(evaluations: list[Evaluation]) -> list[str]:
    """Attributes every evaluation scored, in the first one's order."""
    first = evaluations[0].attributes
    return [a for a in first if all(a in e.attributes for e in evaluations)]


def _errors(evaluation: Evaluation, protocol: str, names: list[str]) -> NDArray[np.float64]:
    columns = [evaluation.attributes.index(name) for name in names]
    return evaluation.protocols[protocol].per_attribute["error"][columns]


def _mean_error(evaluation: Evaluation, protocol: str) -> str:
    scores = evaluation.protocols.get(protocol)
    return percent(scores.mean["error"]) if scores else MISSING


def models_section(data: ReportData) -> Section | None:
    """Mean error of each model on each protocol, with the cost of each model."""
    evaluated = data.evaluations
    if not evaluated:
        return None
    protocols = list(dict.fromkeys(p for _, e in evaluated for p in e.protocols))
    rows = tuple(
        cells(
            label,
            e.model_name,
            f"{e.parameters:,}",
            f"{e.flops:,}",
            f"{len(e.image_ids):,}",
            *(_mean_error(e, p) for p in protocols),
            percent(float(majority_error(e).mean())),
        )
        for label, e in evaluated
    )
    header = ("model", "registry name", "parameters", "FLOPs", "images")
    table = ReportTable(
        "Mean error (%) per model and protocol",
        (*header, *protocols, "majority baseline"),
        rows,
    )
    return Section("Models and protocols", (table,))


def attributes_section(data: ReportData) -> Section | None:
    """Every attribute's error per protocol and model, and bars of the models on one protocol."""
    evaluations = [e for _, e in data.evaluations]
    if len(evaluations) < 2:
        return None
    names = shared_attributes(evaluations)
    protocols = shared_protocols(evaluations)
    if not names or not protocols:
        note = "The models share no attribute or no protocol, so they are not compared here."
        return Section("Errors per attribute", (note,))
    labels = [label for label, _ in data.evaluations]
    columns = {
        f"{protocol} {label}": _errors(e, protocol, names)
        for protocol in protocols
        for label, e in zip(labels, evaluations, strict=True)
    }
    baseline = majority_error(evaluations[0])[[evaluations[0].attributes.index(n) for n in names]]
    table = error_table(
        names,
        {**columns, "majority baseline": baseline},
        "Error (%) per attribute, protocol and model (seed 003, Table 7.1)",
    )
    protocol = protocols[0]
    figure = error_bars(
        names,
        {label: _errors(e, protocol, names) for label, e in zip(labels, evaluations, strict=True)},
        baseline,
        f"Error per attribute and model, protocol {protocol}",
    )
    paragraph = (
        f"{len(names)} attributes scored by every model; the baseline is the majority estimator "
        f"on {labels[0]}'s evaluated split."
    )
    caption = f"Per-attribute error of each model on protocol {protocol}"
    return Section(
        "Errors per attribute",
        (paragraph, render_figure("attribute_errors", caption, figure), table),
    )


def curves_section(data: ReportData) -> Section | None:
    """Every run's losses and validation accuracy in one chart (by run folder: evaluations of
    one run share its curves)."""
    histories = {run.directory.name: run.history for _, run in data.runs if run.history}
    if not histories:
        return None
    figure = training_curves(histories)
    return Section("Training", (render_figure("training_curves", "Training curves", figure),))


def cards_section(data: ReportData) -> Section:
    """One model card per model."""
    return Section("Model cards", tuple(card_table(entry) for entry in data.entries))


COMPARISON_SECTIONS: tuple[SectionRenderer, ...] = (
    models_section,
    attributes_section,
    curves_section,
    cards_section,
)
"""The sections of a comparison report, in order."""
