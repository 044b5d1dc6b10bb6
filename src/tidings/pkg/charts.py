"""Small charts drawn as SVG by our own code: bars for the back office's console (shown as images, so it needs no
charting script and loads nothing from elsewhere) and lines for the soak's report (a file beside its table).
Written by hand because they are a few dozen lines; a plotting library (matplotlib) would be a large dependency
for two kinds of chart. Labels are escaped; each bar carries its value as a tooltip."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


_COLOURS = ("#3b6ea5", "#c0504d", "#9bbb59", "#8064a2", "#4bacc6", "#f79646", "#2c4d75")


def lines(title: str, xs: Sequence[float], series: Mapping[str, Sequence[float]]) -> str:
    """A line per series over the same ``xs``, both axes from their lowest to their highest value, with a legend."""
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT - 120, HEIGHT - _TOP - _BOTTOM
    values = [v for points in series.values() for v in points] or [0.0]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    x_low, x_span = (min(xs), (max(xs) - min(xs)) or 1.0) if xs else (0.0, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title, {chr(34): "&quot;"})}">',
        f'<text x="{_LEFT}" y="18" font-family="sans-serif" font-size="14">{escape(title)}</text>',
        f'<text x="{_LEFT - 6}" y="{_TOP + 10}" font-family="sans-serif" font-size="10" text-anchor="end">'
        f"{high:.0f}</text>",
        f'<text x="{_LEFT - 6}" y="{_TOP + plot_h}" font-family="sans-serif" font-size="10" text-anchor="end">'
        f"{low:.0f}</text>",
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_LEFT + plot_w}" y2="{_TOP + plot_h}" stroke="#888"/>',
    ]
    for index, (name, points) in enumerate(series.items()):
        colour = _COLOURS[index % len(_COLOURS)]
        path = " ".join(
            f"{_LEFT + plot_w * (x - x_low) / x_span:.1f},{_TOP + plot_h - plot_h * (y - low) / span:.1f}"
            for x, y in zip(xs, points, strict=False)
        )
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        parts.append(
            f'<text x="{_LEFT + plot_w + 8}" y="{_TOP + 12 + 14 * index}" font-family="sans-serif" font-size="11" '
            f'fill="{colour}">{escape(name)}</text>'
        )
    if xs:
        for x in (min(xs), max(xs)):
            parts.append(
                f'<text x="{_LEFT + plot_w * (x - x_low) / x_span:.1f}" y="{HEIGHT - 8}" font-family="sans-serif" '
                f'font-size="10" text-anchor="middle">{x:.1f} min</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
