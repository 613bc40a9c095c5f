"""One-file reports of an evaluation, a run or a comparison: ``report.html`` (self-contained)
and ``report.md`` (with its PNGs).

files = write_report(["runs/x/eval"], "report/")            # one model
files = write_report(["runs/x/eval", "runs/y/eval"], "cmp/")  # side by side
"""

from faceattr.report.build import ReportData, ReportEntry, ReportOptions, gather
from faceattr.report.document import Cell, Report, ReportFigure, ReportTable, Section
from faceattr.report.folders import Evaluation, RunRecord, load_evaluation, load_run
from faceattr.report.writer import ReportFiles, compose_report, write_report

__all__ = [
    "Cell",
    "Evaluation",
    "Report",
    "ReportData",
    "ReportEntry",
    "ReportFigure",
    "ReportFiles",
    "ReportOptions",
    "ReportTable",
    "RunRecord",
    "Section",
    "compose_report",
    "gather",
    "load_evaluation",
    "load_run",
    "write_report",
]
