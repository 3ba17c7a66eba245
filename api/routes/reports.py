"""Revenue: `GET /v1/reports/revenue` (JSON, service key) and `/reports` (a page for people).

Every figure is derived from the ledger by `billing.revenue`; nothing here adds money.

The page takes the service key three ways, each for a reason:
- `Authorization: Bearer` first, as the API does (curl, scripts, tests);
- a cookie, so a person who signed in once can browse months. It holds an HMAC of the
  service key, not the key: it opens this page only, and a new service key revokes it;
- `?key=` (or the sign-in form's POST) only to sign in: the answer sets the cookie and
  redirects to the same URL without the key, so the key does not stay in the address
  bar, the history or a Referer. It exists because a link is what `make demo` can print
  and what headless Chromium can open: neither can send a header.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import CallerDep, StateDep, require_service
from api.deps import AppState
from api.schemas import ERRORS
from api.templates.revenue_page import METRICS, message_page, report_page
from billing.errors import InvalidInput
from billing.periods import parse_period, period_of, period_range, shift_period
from billing.revenue import revenue_report
from store.revenue import bill_facts

router = APIRouter(tags=["reports"], responses=ERRORS)

MAX_MONTHS = 36
PAGE_MONTHS = 6
COOKIE = "billing_reports"
_COOKIE_AGE_S = 12 * 3600
# No script may run and nothing may load from elsewhere: the page is one self-contained document.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}

PeriodQuery = Annotated[str | None, Query(description="One billing period, YYYY-MM")]
FromQuery = Annotated[str | None, Query(alias="from", description="First period, YYYY-MM")]
ToQuery = Annotated[str | None, Query(description="Last period, YYYY-MM (inclusive)")]


async def reports(state: AppState, periods: list[str]) -> list[dict[str, object]]:
    currency = state.settings.currency
    async with state.pool.acquire() as conn:
        facts = await bill_facts(conn, periods[0], periods[-1], currency)
    return [revenue_report(p, currency, facts.get(p, [])).to_json() for p in periods]


@router.get("/v1/reports/revenue")
async def revenue(
    state: StateDep,
    caller: CallerDep,
    period: PeriodQuery = None,
    first: FromQuery = None,
    to: ToQuery = None,
) -> dict[str, Any]:
    """The report of one period; or, with `from` and `to`, `{periods: [report, ...]}`."""
    require_service(caller)
    if period is not None and (first is not None or to is not None):
        raise InvalidInput("send either period, or from and to; not both")
    if period is not None:
        return (await reports(state, [parse_period(period)]))[0]
    if first is None or to is None:
        raise InvalidInput("period is required (YYYY-MM), or from and to for a range of months")
    span = period_range(first, to, most=MAX_MONTHS)
    return {
        "from": span[0],
        "to": span[-1],
        "currency": state.settings.currency,
        "periods": await reports(state, span),
    }


def _cookie_token(state: AppState) -> str:
    key = state.settings.billing_api_key.get_secret_value().encode()
    return hmac.new(key, b"billing reports page v1", hashlib.sha256).hexdigest()


def _is_service_key(state: AppState, key: str) -> bool:
    expected = state.settings.billing_api_key.get_secret_value()
    return hmac.compare_digest(key.encode(), expected.encode())


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=_PAGE_HEADERS)


def _wrong_key() -> Response:
    return _html(message_page("Sign in", "that key is not the service key", login=True), 401)


def _signed_in(request: Request, state: AppState, target: str) -> Response:
    """303 to `target` with the page cookie set: the key leaves the URL at once."""
    answer = RedirectResponse(target, status_code=303, headers=_PAGE_HEADERS)
    answer.set_cookie(
        COOKIE,
        _cookie_token(state),
        max_age=_COOKIE_AGE_S,
        path="/reports",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return answer


def _refusal(request: Request, state: AppState) -> Response | None:
    """None when the caller may see the page; else the page that says why not."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, key = header.partition(" ")
        if scheme.lower() == "bearer" and _is_service_key(state, key.strip()):
            return None
        return _html(message_page("Not allowed", "this page needs the service key"), 403)
    cookie = request.cookies.get(COOKIE)
    if cookie is not None and hmac.compare_digest(cookie, _cookie_token(state)):
        return None
    note = "sign in with the service key" if cookie is None else "the sign-in expired"
    return _html(message_page("Sign in", note, login=True), 401)


@router.get("/reports", response_class=HTMLResponse, include_in_schema=False)
async def revenue_page(
    request: Request,
    state: StateDep,
    first: FromQuery = None,
    to: ToQuery = None,
    metric: str = "net",
    key: str | None = None,
) -> Response:
    """Revenue per tier per month as a chart, then the figures as tables."""
    if key is not None:
        if not _is_service_key(state, key):
            return _wrong_key()
        rest = {k: v for k, v in request.query_params.items() if k != "key"}
        return _signed_in(request, state, "/reports" + (f"?{urlencode(rest)}" if rest else ""))
    refused = _refusal(request, state)
    if refused is not None:
        return refused
    last = to or period_of(datetime.now(UTC))
    try:
        start = first or shift_period(last, 1 - PAGE_MONTHS)
        span = period_range(start, last, most=MAX_MONTHS)
        if metric not in METRICS:
            raise InvalidInput(f"metric is one of {', '.join(METRICS)}")
    except InvalidInput as exc:
        return _html(message_page("Cannot show that", exc.message), 422)
    earlier = (shift_period(span[0], -len(span)), shift_period(span[0], -1))
    ranges = {"earlier": earlier, f"last {PAGE_MONTHS} months": _recent()}
    page = report_page(
        await reports(state, span), currency=state.settings.currency, metric=metric, ranges=ranges
    )
    return _html(page)


@router.post("/reports", include_in_schema=False)
async def sign_in(request: Request, state: StateDep) -> Response:
    """The sign-in form: the key travels in the body, never in a URL."""
    form = parse_qs((await request.body()).decode(errors="replace"))
    key = (form.get("key") or [""])[0]
    if not _is_service_key(state, key):
        return _wrong_key()
    return _signed_in(request, state, "/reports")


def _recent() -> tuple[str, str]:
    now = period_of(datetime.now(UTC))
    return shift_period(now, 1 - PAGE_MONTHS), now
