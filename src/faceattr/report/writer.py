"""Compose a report from its section renderers and write it as ``report.html`` and
``report.md`` (+ its PNGs) into one folder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from faceattr.report.build import ReportData, ReportOptions, gather
from faceattr.report.comparison import COMPARISON_SECTIONS
from faceattr.report.document import Report
from faceattr.report.html import write_html
from faceattr.report.markdown import write_markdown
from faceattr.report.sections import SINGLE_SECTIONS, SectionRenderer


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote."""

    html: Path
    markdown: Path
    figures: tuple[Path, ...]
    """The PNGs beside ``report.md`` (``report.html`` embeds the same images)."""


def default_title(data: ReportData) -> str:
    """``<model>: evaluation report``, or ``Comparison of <n> models``."""
    if data.is_comparison:
        return f"Comparison of {len(data.entries)} models"
    entry = data.entries[0]
    return f"{entry.label}: {'evaluation' if entry.evaluation else 'training'} report"


def compose_report(
    data: ReportData,
    sections: Sequence[SectionRenderer] | None = None,
    title: str | None = None,
    progress: bool = True,
) -> Report:
    """Run each section renderer over ``data`` (default: the single-model or the comparison
    sections) and keep the sections they return."""
    renderers = sections or (COMPARISON_SECTIONS if data.is_comparison else SINGLE_SECTIONS)
    rendered = []
    for renderer in tqdm(renderers, desc="report", unit="section", disable=not progress):
        section = renderer(data)
        if section is not None:
            rendered.append(section)
    folders = ", ".join(str(entry.source) for entry in data.entries)
    subtitle = f"faceattr report, {datetime.now():%Y-%m-%d %H:%M}, from {folders}"
    return Report(title or default_title(data), subtitle, tuple(rendered))


def write_report(
    paths: Sequence[str | Path],
    out: str | Path,
    options: ReportOptions | None = None,
    title: str | None = None,
    progress: bool = True,
) -> ReportFiles:
    """Report the evaluation or run folders ``paths`` (several: a comparison) into ``out``."""
    report = compose_report(gather(paths, options), title=title, progress=progress)
    out = Path(out)
    markdown = write_markdown(report, out)
    html = write_html(report, out / "report.html")
    figures = tuple(out / f"{figure.name}.png" for figure in report.figures)
    return ReportFiles(html, markdown, figures)
