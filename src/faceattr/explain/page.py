"""The files of an explanation: titled PNG figures, and one HTML page that links them relatively
(the folder can be moved or served as it is)."""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from faceattr.explain.results import Explanation, FaceExplanation, SaliencyFigure
from faceattr.inference.values import BinaryValue

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
.row { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
figure { margin: 0; } figcaption { font-size: 0.85em; max-width: 28em; }
table { border-collapse: collapse; font-size: 0.85em; }
td, th { padding: 0.1em 0.6em; text-align: left; } .yes { font-weight: bold; }
"""


def save_figure(image: np.ndarray, title: str, path: Path) -> Path:
    """``image`` (uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB) as a PNG at ``path`` with
    ``title`` above it, drawn without interpolation on a figure at least 320 pixels wide."""
    height, width = image.shape[:2]
    inches = max(3.2, width / 100)
    figure = Figure(figsize=(inches, inches * height / width + 0.4), dpi=100)
    axes = figure.add_subplot()
    axes.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
    axes.set_title(title, fontsize=9)
    axes.axis("off")
    figure.savefig(path, bbox_inches="tight")
    return path


def _image(path: Path, page: Path, caption: str) -> str:
    source = escape(Path(os.path.relpath(path, page.parent)).as_posix())
    text = escape(caption)
    return f'<figure><img src="{source}" alt="{text}"><figcaption>{text}</figcaption></figure>'


def _caption(figure: SaliencyFigure) -> str:
    value = figure.value
    if isinstance(value, BinaryValue):
        said = (
            f"p = {value.probability:.3f} (threshold {value.threshold:.2f}, "
            f"{'present' if value.present else 'absent'})"
        )
    elif value.kind == "numeric":
        said = f"{value} (evidence for a higher value)"
    else:
        said = f"{value} (evidence for {value.label})"
    return f"{figure.name}: {said}; {figure.method} at {figure.layer}"


def _face_section(face: FaceExplanation, page: Path) -> str:
    if face.box is None:
        where = "the whole image, as the model's input"
    else:
        x, y, width, height = face.box
        where = f"box x={x:.0f} y={y:.0f} w={width:.0f} h={height:.0f}"
        if face.detection_score is not None:
            where += f", detection score {face.detection_score:.2f}"
    binary = {n: v for n, v in face.values.items() if isinstance(v, BinaryValue)}
    others = "".join(
        f'<tr class="yes"><td>{escape(name)}</td><td colspan="3">{escape(str(value))}</td></tr>'
        for name, value in face.values.items()
        if name not in binary
    )
    rows = others + "".join(
        f'<tr class="{"yes" if v.present else "no"}"><td>{escape(name)}</td>'
        f"<td>{v.probability:.3f}</td><td>{v.threshold:.2f}</td>"
        f"<td>{'yes' if v.present else 'no'}</td></tr>"
        for name, v in sorted(binary.items(), key=lambda item: -item[1].probability)
    )
    saliency = "".join(_image(s.path, page, _caption(s)) for s in face.saliency)
    stages = "".join(
        _image(
            s.path,
            page,
            f"Stage {s.number} ({s.name}): {s.shown} of {s.channels} channels, "
            f"{s.size[0]}x{s.size[1]}" + (" (the most active)" if s.shown < s.channels else ""),
        )
        for s in face.stages
    )
    return (
        f"<section><h2>Face {face.number}</h2><p>{escape(where)}</p>"
        f'<div class="row">{_image(face.crop, page, "The aligned model input")}'
        "<table><tr><th>attribute</th><th>probability</th><th>threshold</th><th>present</th></tr>"
        f"{rows}</table></div>"
        f'<h3>Saliency</h3><div class="row">{saliency}</div>'
        f'<h3>Feature maps after each convolutional stage</h3><div class="row">{stages}</div>'
        "</section>"
    )


def write_page(explanation: Explanation) -> Path:
    """Write ``explanation.page``: per face its box, scores, saliency overlays and stage grids."""
    page = explanation.page
    sections = "".join(_face_section(face, page) for face in explanation.faces)
    if not explanation.faces:
        sections = "<p>No face found.</p>"
    title = f"faceattr explain: {explanation.source}"
    page.write_text(
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><p>Model: {escape(explanation.model)}</p>"
        f"{sections}</body></html>\n",
        encoding="utf-8",
    )
    return page
