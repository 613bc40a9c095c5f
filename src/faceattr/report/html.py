"""``report.html``: one self-contained file (figures as base64 PNG ``data:`` URIs, inline CSS,
no script, no external URL), rendered by Jinja2 with HTML escaping."""

from __future__ import annotations

import base64
from pathlib import Path

import jinja2

from faceattr.report.document import Report, ReportFigure, ReportTable

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       max-width: 1100px; margin: 0 auto; padding: 1rem 2rem 3rem; line-height: 1.5; }
h1 { margin-bottom: 0.2rem; }
.subtitle, figcaption { color: #59636e; }
nav ol { columns: 2; }
section { border-top: 1px solid #d1d9e0; margin-top: 2rem; }
figure { margin: 1rem 0; }
img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9rem; }
.table { overflow-x: auto; margin: 1rem 0; }
table { border-collapse: collapse; font-size: 0.85rem; }
caption { text-align: left; font-weight: 600; padding: 0.3rem 0; }
th, td { border: 1px solid #d1d9e0; padding: 0.2rem 0.5rem; vertical-align: top; }
th { background: #f6f8fa; }
table.numeric td:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
td.good { background: #dafbe1; }
td.bad { background: #ffebe9; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.85em;
       overflow-wrap: anywhere; }
"""

TEMPLATE = """{% macro td(cell) %}<td{% if cell.tone %} class="{{ cell.tone }}"{% endif %}>
{%- if cell.code %}<code>{{ cell.text }}</code>{% else %}{{ cell.text }}{% endif %}</td>
{%- endmacro %}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ report.title }}</title>
<style>{{ style | safe }}</style>
</head>
<body>
<header>
<h1>{{ report.title }}</h1>
<p class="subtitle">{{ report.subtitle }}</p>
<nav><ol>
{% for section in report.sections %}
<li><a href="#{{ section.anchor }}">{{ section.title }}</a></li>
{% endfor %}
</ol></nav>
</header>
<main>
{% for section in report.sections %}
<section id="{{ section.anchor }}">
<h2>{{ section.title }}</h2>
{% for block in section.blocks %}
{% if block is figure %}
<figure>
<img src="data:image/png;base64,{{ block.png | base64 }}" alt="{{ block.caption }}">
<figcaption>{{ block.caption }}</figcaption>
</figure>
{% elif block is table %}
<div class="table"><table{% if block.numeric %} class="numeric"{% endif %}>
<caption>{{ block.caption }}</caption>
{% if block.header | select | list %}
<thead><tr>{% for name in block.header %}<th>{{ name }}</th>{% endfor %}</tr></thead>
{% endif %}
<tbody>
{% for row in block.rows %}
<tr>{% for cell in row %}{{ td(cell) }}{% endfor %}</tr>
{% endfor %}
</tbody>
</table></div>
{% else %}
<p>{{ block }}</p>
{% endif %}
{% endfor %}
</section>
{% endfor %}
</main>
</body>
</html>
"""


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    environment.filters["base64"] = lambda data: base64.b64encode(data).decode("ascii")
    environment.tests["figure"] = lambda block: isinstance(block, ReportFigure)
    environment.tests["table"] = lambda block: isinstance(block, ReportTable)
    return environment


def render_html(report: Report) -> str:
    """The whole report as one HTML document."""
    return _environment().from_string(TEMPLATE).render(report=report, style=STYLE)


def write_html(report: Report, path: str | Path) -> Path:
    """Write :func:`render_html` to ``path`` (UTF-8)."""
    path = Path(path)
    path.write_text(render_html(report), encoding="utf-8")
    return path
