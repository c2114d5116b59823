"""A run as one self-contained HTML file: curves, galleries and config, no network needed.

Plotly's JavaScript is inlined once (include_plotlyjs=True on the first figure); images are
embedded as base64 data URIs. Every piece of user text (names, notes, tags) is escaped.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #222; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } .sub { color: #666; margin-top: 0; }
table.summary td { padding: 2px 12px 2px 0; vertical-align: top; }
table.summary td:first-child { color: #666; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
.gallery figure { margin: 0; text-align: center; font-size: 0.85rem; color: #555; }
.gallery img { image-rendering: pixelated; max-width: 320px; border: 1px solid #ddd; }
pre { background: #f6f6f6; padding: 1rem; overflow-x: auto; font-size: 0.85rem; }
.notes { white-space: pre-wrap; background: #fafafa; border-left: 3px solid #ccc;
         padding: 0.5rem 1rem; }
"""


@dataclass(frozen=True)
class ReportImage:
    caption: str
    png: bytes
    media_type: str = "image/png"


@dataclass(frozen=True)
class RunReport:
    """What goes into the report: plain values, figures and PNG bytes."""

    title: str
    summary: Mapping[str, Any]
    config: Mapping[str, Any]
    figures: Sequence[tuple[str, go.Figure]] = ()
    images: Sequence[ReportImage] = ()
    notes: str = ""
    tags: Sequence[str] = field(default_factory=tuple)


def _img_tag(img: ReportImage) -> str:
    data = base64.b64encode(img.png).decode("ascii")
    cap = html.escape(img.caption)
    return (
        f'<figure><img alt="{cap}" src="data:{html.escape(img.media_type)};base64,{data}">'
        f"<figcaption>{cap}</figcaption></figure>"
    )


def build_report(report: RunReport) -> str:
    """The report as one HTML document (a string), viewable offline."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(report.title)} - Diffusion Lab report</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        f'<p class="sub">Diffusion Lab run report, exported '
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p>",
        '<table class="summary">',
    ]
    for key, value in report.summary.items():
        parts.append(f"<tr><td>{html.escape(str(key))}</td><td>{html.escape(str(value))}</td></tr>")
    if report.tags:
        parts.append(f"<tr><td>tags</td><td>{html.escape(', '.join(report.tags))}</td></tr>")
    parts.append("</table>")
    if report.notes:
        parts += ["<h2>Notes</h2>", f'<div class="notes">{html.escape(report.notes)}</div>']
    if report.figures:
        parts.append("<h2>Curves</h2>")
    for i, (title, fig) in enumerate(report.figures):
        parts.append(f"<h3>{html.escape(title)}</h3>")
        parts.append(
            fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
        )
    if report.images:
        parts += ["<h2>Samples</h2>", '<div class="gallery">']
        parts += [_img_tag(img) for img in report.images]
        parts.append("</div>")
    config_text = json.dumps(report.config, indent=2, sort_keys=True, default=str)
    parts += [
        "<h2>Configuration</h2>",
        f"<pre>{html.escape(config_text, quote=False)}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts)
