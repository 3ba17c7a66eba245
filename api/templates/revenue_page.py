"""The /reports page: a chart of one figure per tier per month, and the reports as tables.

Pure: report JSON (as `GET /v1/reports/revenue` answers it) in, an HTML string out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from html import escape
from typing import Any
from urllib.parse import urlencode

from api.templates.chart import legend, stacked_bars
from billing.money import SYMBOLS

METRICS = {
    "net": "Net revenue (collected - refunded)",
    "billed": "Billed",
    "collected": "Collected",
    "outstanding": "Outstanding",
}
COLUMNS = ("billed", "collected", "refunded", "net", "outstanding", "written_off", "tax")

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 margin:0;background:#f8fafc;color:#0f172a}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#475569;margin:0 0 16px}
nav a{margin-right:12px;color:#2563eb;text-decoration:none}nav a.on{font-weight:700;color:#0f172a}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:16px;margin:12px 0;
 overflow-x:auto}.card h2{margin-top:0}
.chart .grid{stroke:#e2e8f0}.chart .axis{fill:#475569;font-size:12px}
.legend{list-style:none;padding:0;margin:8px 0 0;display:flex;gap:18px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:6px 7px;border-bottom:1px solid #e2e8f0;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{color:#475569;font-weight:600}
form input{font:inherit;padding:6px;width:320px}form button{font:inherit;padding:6px 12px}
.error{color:#b91c1c}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def _money(text: str, symbol: str) -> str:
    return f"{symbol}{Decimal(text):,.2f}"


def _rate(value: str | None) -> str:
    return "-" if value is None else f"{Decimal(value) * 100:.2f}%"


def _nav(first: str, last: str, metric: str, ranges: Mapping[str, tuple[str, str]]) -> str:
    links = [
        f'<a href="?{escape(urlencode({"from": a, "to": b, "metric": metric}))}">'
        f"{escape(label)}</a>"
        for label, (a, b) in ranges.items()
    ]
    links += [
        f'<a class="{"on" if m == metric else ""}" '
        f'href="?{escape(urlencode({"from": first, "to": last, "metric": m}))}">{escape(m)}</a>'
        for m in METRICS
    ]
    return f"<nav>{''.join(links)}</nav>"


def _totals_table(reports: Sequence[Mapping[str, Any]], symbol: str) -> str:
    head = "".join(f"<th>{c.replace('_', ' ')}</th>" for c in COLUMNS)
    rows = "".join(
        f'<tr data-period="{escape(r["period"])}"><td>{escape(r["period"])}</td>'
        + "".join(f"<td>{_money(r[c], symbol)}</td>" for c in COLUMNS)
        + f"<td>{_rate(r['payment_success_rate'])}</td><td>{r['customers']}</td></tr>"
        for r in reports
    )
    return (
        f"<table class=totals><tr><th>period</th>{head}<th>success rate</th>"
        f"<th>customers</th></tr>{rows}</table>"
    )


def _tier_table(reports: Sequence[Mapping[str, Any]], tiers: Sequence[str], metric: str,
                symbol: str) -> str:  # fmt: skip
    head = "".join(f"<th>{escape(t)}</th>" for t in tiers)
    rows = "".join(
        f"<tr><td>{escape(r['period'])}</td>"
        + "".join(f"<td>{_money(r['by_tier'][t][metric], symbol)}</td>" for t in tiers)
        + f"<td>{_money(r[metric], symbol)}</td></tr>"
        for r in reports
    )
    return f"<table class=tiers><tr><th>period</th>{head}<th>all tiers</th></tr>{rows}</table>"


def report_page(
    reports: Sequence[Mapping[str, Any]],
    *,
    currency: str,
    metric: str,
    ranges: Mapping[str, tuple[str, str]],
) -> str:
    """Chart and tables of `reports` (oldest first), all from the same report JSON."""
    symbol = SYMBOLS.get(currency, currency + " ")
    months = [r["period"] for r in reports]
    tiers = list(reports[0]["by_tier"]) if reports else []
    series = {t: [Decimal(r["by_tier"][t][metric]) for r in reports] for t in tiers}
    first, last = months[0], months[-1]
    title = f"{METRICS[metric]} per tier, {first} to {last} ({currency})"
    body = (
        "<h1>Revenue</h1>"
        f'<p class="sub">Derived from the ledger: every figure adds up. Bills of each billing '
        f"period, void bills left out. Amounts in {escape(currency)}.</p>"
        + _nav(first, last, metric, ranges)
        + f'<section class="card"><h2>{escape(title)}</h2>'
        + stacked_bars(months, series, symbol=symbol, title=title)
        + legend(tiers)
        + "</section>"
        + f'<section class="card"><h2>{escape(METRICS[metric])} by tier</h2>'
        + _tier_table(reports, tiers, metric, symbol)
        + "</section>"
        + '<section class="card"><h2>Every figure, per period</h2>'
        + _totals_table(reports, symbol)
        + "</section>"
    )
    return _page("Revenue", body)


def message_page(title: str, message: str, *, login: bool = False) -> str:
    """A refusal a person can act on; `login` adds the form that posts the service key."""
    form = (
        '<form method="post" action="/reports"><p><label>Service key<br>'
        '<input type="password" name="key" autocomplete="current-password" autofocus></label>'
        "</p><button>Show revenue</button></form>"
        if login
        else ""
    )
    body = f'<h1>{escape(title)}</h1><p class="error">{escape(message)}</p>{form}'
    return _page(title, body)
