"""Charts as inline SVG, drawn on the server: no JavaScript library, nothing vendored.

Two shapes cover the console: horizontal bars (a value per label: queue depths, denials by
CARC, aging buckets) and columns over time (throughput per hour). Labels are escaped; the
markup is returned ready to embed (`markupsafe.Markup`). Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from markupsafe import Markup, escape

Number = int | float | Decimal


def _fmt(v: Number) -> str:
    return f"{v:,.2f}" if isinstance(v, Decimal | float) and v != int(v) else f"{int(v):,}"


def bars(
    rows: Sequence[tuple[str, Number]],
    *,
    title: str,
    width: int = 520,
    color: str = "#2f6f9f",
    unit: str = "",
) -> Markup:
    """One horizontal bar per (label, value), longest first as given."""
    if not rows:
        return Markup(f'<p class="empty">{escape(title)}: nothing to show</p>')  # noqa: S704
    row_h, label_w, pad = 22, 170, 8
    height = row_h * len(rows) + 2 * pad + 18
    top = max((float(v) for _, v in rows), default=0.0) or 1.0
    span = width - label_w - 90
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">',
        f'<text x="0" y="14" class="chart-title">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(rows):
        y = 18 + pad + i * row_h
        w = max(1.0, span * float(value) / top) if float(value) > 0 else 0.0
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
            f'fill="{color}"><title>{escape(label)}: {_fmt(value)}{unit}</title>'
            f'</rect><text x="{label_w + w + 6:.1f}" y="{y + 15}">'
            f"{_fmt(value)}{escape(unit)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label and title is escaped above


def columns(
    points: Sequence[tuple[str, Number]],
    *,
    title: str,
    width: int = 520,
    height: int = 150,
    color: str = "#3c8d5a",
) -> Markup:
    """Columns left to right (time order), with the first and last label under the axis."""
    if not points:
        return Markup(f'<p class="empty">{escape(title)}: nothing to show</p>')  # noqa: S704
    top = max(float(v) for _, v in points) or 1.0
    plot_h, base = height - 44, height - 22
    step = (width - 10) / len(points)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">',
        f'<text x="0" y="14" class="chart-title">{escape(title)} (max {_fmt(top)})</text>',
        f'<line x1="0" y1="{base}" x2="{width}" y2="{base}" stroke="#999"/>',
    ]
    for i, (label, value) in enumerate(points):
        h = plot_h * float(value) / top
        x = 5 + i * step
        parts.append(
            f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{max(1.0, step - 2):.1f}" '
            f'height="{h:.1f}" fill="{color}"><title>{escape(label)}: '
            f"{_fmt(value)}</title></rect>"
        )
    parts.append(
        f'<text x="0" y="{height - 4}">{escape(points[0][0])}</text>'
        f'<text x="{width}" y="{height - 4}" text-anchor="end">'
        f"{escape(points[-1][0])}</text></svg>"
    )
    return Markup("".join(parts))  # noqa: S704 - every label and title is escaped above
