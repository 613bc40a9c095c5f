"""pydantic's validation errors as one line: what faceattr prints for a bad file or argument."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

SHOWN_PROBLEMS = 3
SHOWN_INPUT = 40
"""Characters of a rejected value quoted in a message (longer ones are named by their type)."""


def one_line(error: ValidationError) -> str:
    """The first problems of ``error`` as ``where: what (got value)`` (a validator's own
    ``ValueError`` as its message alone), joined by ``; ``."""
    problems = error.errors()
    parts = []
    for problem in problems[:SHOWN_PROBLEMS]:
        where = ".".join(map(str, problem["loc"]))
        if problem["type"] == "value_error":
            what = str(problem.get("ctx", {}).get("error", problem["msg"]))
        else:
            what = f"{problem['msg']} (got {_quoted(problem.get('input'))})"
        parts.append(f"{where}: {what}" if where else what)
    more = len(problems) - SHOWN_PROBLEMS
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _quoted(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_INPUT else f"a {type(value).__name__}"
