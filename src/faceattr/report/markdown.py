"""``report.md``: the same report as GitHub-flavoured Markdown, each figure a PNG file beside it."""

from __future__ import annotations

from pathlib import Path

from faceattr.report.document import Cell, Report, ReportFigure, ReportTable, Section

MARK = {"good": "✓", "bad": "✗"}


def _cell(cell: Cell) -> str:
    text = cell.text.replace("|", "\\|").replace("\n", " ")
    if cell.code:
        text = f"`{text}`"
    if cell.tone == "bad":
        return f"**{text} {MARK['bad']}**"
    return f"{text} {MARK['good']}" if cell.tone == "good" else text


def _table(table: ReportTable) -> str:
    align = ["---"] + [("---:" if table.numeric else "---")] * (len(table.header) - 1)
    lines = [
        f"**{table.caption}**",
        "",
        "| " + " | ".join(name.replace("|", "\\|") for name in table.header) + " |",
        "| " + " | ".join(align) + " |",
    ]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _figure(figure: ReportFigure) -> str:
    return f"![{figure.caption}]({figure.name}.png)\n\n*{figure.caption}*"


def _section(section: Section) -> str:
    parts = [f"## {section.title}"]
    for block in section.blocks:
        if isinstance(block, ReportFigure):
            parts.append(_figure(block))
        elif isinstance(block, ReportTable):
            parts.append(_table(block))
        else:
            parts.append(block)
    return "\n\n".join(parts)


def render_markdown(report: Report) -> str:
    """The report as Markdown; figures are referenced as ``<name>.png`` in the same folder."""
    contents = "\n".join(f"- [{s.title}](#{s.anchor})" for s in report.sections)
    parts = [f"# {report.title}", report.subtitle, contents]
    parts += [_section(section) for section in report.sections]
    return "\n\n".join(parts) + "\n"


def write_markdown(report: Report, directory: str | Path, name: str = "report.md") -> Path:
    """Write ``<directory>/<name>`` and every figure as ``<directory>/<figure name>.png``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = [figure.name for figure in report.figures]
    if len(set(names)) != len(names):
        raise ValueError(f"figure names must be unique in a report, got {names}")
    for figure in report.figures:
        (directory / f"{figure.name}.png").write_bytes(figure.png)
    path = directory / name
    path.write_text(render_markdown(report), encoding="utf-8")
    return path
