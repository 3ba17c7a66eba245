"""Stacked bars as inline SVG: one bar per month, one segment per tier, drawn server-side.

Geometry is computed in Decimal like the money it draws, so a bar's height is exactly
proportional to its amount; every value is escaped, every segment carries its figures
(`data-*` for tests, `<title>` for a tooltip) so nothing needs JavaScript.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from html import escape

WIDTH, HEIGHT = 960, 360
LEFT, RIGHT, TOP, BOTTOM = 80, 20, 20, 40
TIER_COLORS = {
    "free": "#94a3b8",
    "starter": "#38bdf8",
    "professional": "#8b5cf6",
    "enterprise": "#f59e0b",
}
_OTHER_COLOR = "#64748b"
_TICKS = 5


def _px(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP):f}"


def nice_ceiling(value: Decimal) -> Decimal:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= value (1 for nothing): a readable axis."""
    if value <= 0:
        return Decimal(1)
    scale = Decimal(1).scaleb(value.adjusted())
    for step in (1, 2, Decimal("2.5"), 5, 10):
        if step * scale >= value:
            return step * scale
    raise AssertionError("unreachable: 10 x scale exceeds value")


def _amount(value: Decimal, symbol: str) -> str:
    whole = value == value.to_integral_value()
    return f"{symbol}{value:,.0f}" if whole else f"{symbol}{value:,.2f}"


def stacked_bars(
    months: Sequence[str],
    series: Mapping[str, Sequence[Decimal]],
    *,
    symbol: str,
    title: str,
) -> str:
    """An <svg> of `series[tier][i]` stacked for `months[i]`; negative amounts draw as 0."""
    totals = [
        sum((max(values[i], Decimal(0)) for values in series.values()), Decimal(0))
        for i in range(len(months))
    ]
    top = nice_ceiling(max(totals, default=Decimal(0)))
    plot_w, plot_h = Decimal(WIDTH - LEFT - RIGHT), Decimal(HEIGHT - TOP - BOTTOM)
    slot = plot_w / max(len(months), 1)
    bar_w = slot * Decimal("0.6")
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" class="chart" '
        f'aria-label="{escape(title)}" data-max="{top:f}">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in range(_TICKS + 1):
        value = top * tick / _TICKS
        y = TOP + plot_h - plot_h * tick / _TICKS
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_px(y)}" y2="{_px(y)}"/>'
            f'<text class="axis" x="{LEFT - 8}" y="{_px(y + 4)}" text-anchor="end">'
            f"{escape(_amount(value.normalize(), symbol))}</text>"
        )
    for i, month in enumerate(months):
        x = LEFT + slot * i + (slot - bar_w) / 2
        out.append(
            f'<text class="axis" x="{_px(x + bar_w / 2)}" y="{HEIGHT - BOTTOM + 20}" '
            f'text-anchor="middle">{escape(month)}</text>'
        )
    base = [Decimal(TOP) + plot_h] * len(months)
    for tier, values in series.items():
        color = TIER_COLORS.get(tier, _OTHER_COLOR)
        out.append(f'<g class="series" data-tier="{escape(tier)}" fill="{color}">')
        for i, month in enumerate(months):
            value = values[i]
            height = plot_h * max(value, Decimal(0)) / top
            base[i] -= height
            x = LEFT + slot * i + (slot - bar_w) / 2
            out.append(
                f'<rect x="{_px(x)}" y="{_px(base[i])}" width="{_px(bar_w)}" '
                f'height="{_px(height)}" data-period="{escape(month)}" data-value="{value:f}">'
                f"<title>{escape(f'{tier}, {month}: {_amount(value, symbol)}')}</title></rect>"
            )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def legend(tiers: Sequence[str]) -> str:
    items = "".join(
        f'<li><span class="swatch" style="background:{TIER_COLORS.get(t, _OTHER_COLOR)}">'
        f"</span>{escape(t)}</li>"
        for t in tiers
    )
    return f'<ul class="legend">{items}</ul>'
