"""Small bar charts drawn on the server as SVG: the console shows them as images, so it needs no charting script
(and loads nothing from elsewhere). Labels are escaped; each bar carries its value as a tooltip."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

WIDTH = 640
HEIGHT = 200
_TOP, _BOTTOM, _LEFT, _RIGHT = 28, 24, 48, 8


def bars(title: str, points: Sequence[tuple[str, int]]) -> str:
    """A bar per point (label, value), in order, scaled to the largest value."""
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    peak = max((value for _, value in points), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title, {chr(34): "&quot;"})}">',
        f'<text x="{_LEFT}" y="18" font-family="sans-serif" font-size="14">{escape(title)}</text>',
        f'<text x="{_LEFT - 6}" y="{_TOP + 10}" font-family="sans-serif" font-size="10" text-anchor="end">'
        f"{peak}</text>",
        f'<text x="{_LEFT - 6}" y="{_TOP + plot_h}" font-family="sans-serif" font-size="10" text-anchor="end">0</text>',
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{WIDTH - _RIGHT}" y2="{_TOP + plot_h}" stroke="#888"/>',
    ]
    if not points:
        parts.append(
            f'<text x="{_LEFT + plot_w // 2}" y="{_TOP + plot_h // 2}" font-family="sans-serif" font-size="12" '
            'text-anchor="middle" fill="#666">no data yet</text>'
        )
    slot = plot_w / max(len(points), 1)
    for index, (label, value) in enumerate(points):
        height = plot_h * value / peak
        x = _LEFT + index * slot + slot * 0.1
        parts.append(
            f'<rect x="{x:.1f}" y="{_TOP + plot_h - height:.1f}" width="{slot * 0.8:.1f}" height="{height:.1f}" '
            f'fill="#3b6ea5"><title>{escape(label)}: {value}</title></rect>'
        )
    if points:
        for index in sorted({0, len(points) - 1}):
            x = _LEFT + index * slot + slot / 2
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 8}" font-family="sans-serif" font-size="10" text-anchor="middle">'
                f"{escape(points[index][0])}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
