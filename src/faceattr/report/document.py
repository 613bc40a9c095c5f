"""What a report is made of, whatever its output format: sections of paragraphs, tables and
figures (PNG bytes) in reading order, which :mod:`faceattr.report.html` and
:mod:`faceattr.report.markdown` render."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Literal

from matplotlib.figure import Figure

Tone = Literal["good", "bad"]
FIGURE_DPI = 100


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, an optional right (good) / wrong (bad) marking, code style."""

    text: str
    tone: Tone | None = None
    code: bool = False


@dataclass(frozen=True)
class ReportTable:
    """A table with a header row; ``numeric`` right-aligns every column but the first."""

    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    numeric: bool = True

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(
                    f"table {self.caption!r}: a row has {len(row)} cells for "
                    f"{len(self.header)} columns"
                )


@dataclass(frozen=True)
class ReportFigure:
    """A rendered figure: ``name`` is its file stem (``<name>.png`` beside ``report.md``)."""

    name: str
    caption: str
    png: bytes


Block = str | ReportTable | ReportFigure
"""A paragraph of plain text, a table or a figure."""


@dataclass(frozen=True)
class Section:
    """One titled part of a report: its blocks in reading order."""

    title: str
    blocks: tuple[Block, ...] = ()

    @property
    def anchor(self) -> str:
        """A fragment id made of the title (``Model card`` -> ``model-card``)."""
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


@dataclass(frozen=True)
class Report:
    """A whole report: its title, a one-line subtitle and its sections in order."""

    title: str
    subtitle: str
    sections: tuple[Section, ...]

    @property
    def figures(self) -> tuple[ReportFigure, ...]:
        """Every figure of every section, in order."""
        return tuple(
            block
            for section in self.sections
            for block in section.blocks
            if isinstance(block, ReportFigure)
        )


def cells(*texts: str) -> tuple[Cell, ...]:
    """A row of plain cells."""
    return tuple(Cell(text) for text in texts)


def render_figure(name: str, caption: str, figure: Figure) -> ReportFigure:
    """Render ``figure`` to PNG bytes (Agg, no display needed)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI)
    return ReportFigure(name, caption, buffer.getvalue())
