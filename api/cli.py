"""`billing`: the operator's command line, a client of the API (never of the database).

    billing report --period 2026-10 [--json]
    billing customers [--json]
    billing bills --customer cus_... [--json]
    billing reconcile [--since 2026-05-01T00:00:00Z] [--json]
    billing listen [--forward-to http://127.0.0.1:3000/hooks] [--events bill.paid,...] [--json]

BILLING_API_URL (default http://127.0.0.1:8000) and BILLING_API_KEY (default the dev key
that `make run` uses) say where and as whom. Exit status: 0 done, 1 the API refused, 2 the
API could not be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import httpx

from api.listen import listen
from config.settings import DEV_API_KEY

DEFAULT_URL = "http://127.0.0.1:8000"
MONEY = ("billed", "collected", "refunded", "net", "outstanding", "written_off", "tax")
_PAGE = 500
# How often and how long `reconcile` looks at the report before leaving it running.
_POLL_S = 1.0
_WAIT_S = 600.0


class Refused(Exception):
    """The API answered with an error envelope."""


def _answer(answer: httpx.Response) -> dict[str, Any]:
    if answer.is_success:
        body: dict[str, Any] = answer.json()
        return body
    try:
        error = answer.json()["error"]
        detail = f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        detail = answer.text[:200]
    raise Refused(f"{answer.status_code} {detail}")


def _get(client: httpx.Client, path: str, **params: str) -> dict[str, Any]:
    return _answer(client.get(path, params=params))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to fit; a column of numbers (amounts too) is right-aligned, header and all."""
    body = [[str(c) for c in row] for row in rows]
    cells = [[str(h) for h in headers], *body]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def numeric(text: str) -> bool:
        return text.replace(".", "", 1).replace("%", "").lstrip("-").isdigit()

    right = [bool(body) and all(numeric(row[i]) for row in body) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join(line(row) for row in cells)


def report(client: httpx.Client, args: argparse.Namespace) -> str:
    body = _get(client, "/v1/reports/revenue", period=args.period)
    if args.json:
        return json.dumps(body, indent=2)
    headers = ["tier", "customers", *(m.replace("_", " ") for m in MONEY)]
    rows = [[t, v["customers"], *(v[m] for m in MONEY)] for t, v in body["by_tier"].items()]
    rows.append(["all tiers", body.get("customers", ""), *(body[m] for m in MONEY)])
    rate = body["payment_success_rate"]
    shown = "no payment attempts" if rate is None else f"{Decimal(rate) * 100:.2f}%"
    return (
        f"Revenue for {body['period']} ({body['currency']}), from the ledger\n\n"
        + table(headers, rows)
        + f"\n\npayment success rate: {shown}"
    )


def customers(client: httpx.Client, args: argparse.Namespace) -> str:
    found: list[dict[str, Any]] = []
    after: dict[str, str] = {}
    while True:
        page = _get(client, "/v1/customers", limit=str(_PAGE), **after)
        found += page["customers"]
        if not page.get("next_after"):
            break
        after = {"after": page["next_after"]}
    if args.json:
        return json.dumps(found, indent=2)
    rows = [[c["id"], c["name"], c["email"], c["tier"], c["status"], c["started_at"][:10]]
            for c in found]  # fmt: skip
    headers = ["id", "name", "email", "tier", "status", "since"]
    return table(headers, rows) + f"\n\n{len(found)} customer(s)"


def bills(client: httpx.Client, args: argparse.Namespace) -> str:
    body = _get(client, f"/v1/customers/{args.customer}/bills")
    if args.json:
        return json.dumps(body, indent=2)
    headers = ["id", "period", "kind", "tier", "total", "paid", "refunded", "status", "attempts"]
    rows = [
        [b["id"], b["period"], b["kind"], b["tier"], b["total"], b["amount_paid"],
         b["amount_refunded"], b["status"], len(b["attempts"])]
        for b in body["bills"]
    ]  # fmt: skip
    return table(headers, rows) + f"\n\n{len(rows)} bill(s) of {args.customer}"


def _item(item: dict[str, Any]) -> str:
    what = f"{item['kind']} {item['gateway_reference']} {item['amount']} {item['currency']}"
    return what + f" on {item.get('bill_id') or 'no bill'}"


def reconcile(client: httpx.Client, args: argparse.Namespace) -> str:
    body = {"since": args.since} if args.since else {}
    started = _answer(client.post("/v1/reconciliations", json=body))
    deadline = time.monotonic() + _WAIT_S
    report = _get(client, f"/v1/reconciliations/{started['id']}")
    while report["status"] != "completed":
        if time.monotonic() > deadline:
            raise Refused(f"{started['id']} still running after {_WAIT_S:.0f} s; see its report")
        time.sleep(_POLL_S)
        report = _get(client, f"/v1/reconciliations/{started['id']}")
    if args.json:
        return json.dumps(report, indent=2)
    lines = [
        f"Reconciliation {report['id']} of the gateway since {report['since']}",
        f"checked {report['checked']}, matched {report['matched']}, "
        f"fixed {len(report['fixed'])}, unresolved {len(report['unresolved'])}",
    ]
    for item in report["fixed"]:
        excess = item.get("excess_refunded")
        tail = f", excess {excess} refunded" if excess and Decimal(excess) else ""
        lines.append(f"  fixed: {_item(item)} ({item['outcome']}{tail})")
    lines += [f"  unresolved: {_item(u)}: {u['reason']}" for u in report["unresolved"]]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="billing", description=__doc__.split("\n\n")[0])
    top.add_argument("--url", default=os.environ.get("BILLING_API_URL", DEFAULT_URL))
    key = os.environ.get("BILLING_API_KEY", DEV_API_KEY)
    top.add_argument("--key", default=key, help="default: $BILLING_API_KEY, else the dev key")
    commands = top.add_subparsers(dest="command", required=True)
    rep = commands.add_parser("report", help="the revenue report of one billing period")
    rep.add_argument("--period", required=True, help="YYYY-MM")
    rep.set_defaults(run=report)
    cus = commands.add_parser("customers", help="every customer")
    cus.set_defaults(run=customers)
    bil = commands.add_parser("bills", help="a customer's bills")
    bil.add_argument("--customer", required=True, help="the customer id (cus_...)")
    bil.set_defaults(run=bills)
    rec = commands.add_parser("reconcile", help="compare the gateway with the ledger, fix it")
    rec.add_argument("--since", help="ISO 8601 time with a zone; default: 2 days ago")
    rec.set_defaults(run=reconcile)
    lis = commands.add_parser("listen", help="print the local stack's events; forward them")
    lis.add_argument("--forward-to", help="POST each event here, signed headers and all")
    lis.add_argument("--events", help="comma-separated types (default: every type)")
    lis.add_argument("--port", type=int, default=0, help="the local receiver's port (default: any)")
    lis.add_argument("--exit-after", type=int, default=0, help="stop after this many events")
    lis.set_defaults(run=lambda client, args: listen(client, args, _answer))
    for command in (rep, cus, bil, rec, lis):
        command.add_argument("--json", action="store_true", help="the API's JSON, as is")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    run: Callable[[httpx.Client, argparse.Namespace], str] = args.run
    headers = {"Authorization": f"Bearer {args.key}"}
    try:
        with httpx.Client(base_url=args.url, headers=headers, timeout=30) as client:
            print(run(client, args))
    except Refused as exc:
        print(f"billing: the API refused: {exc}", file=sys.stderr)
        return 1
    except httpx.TransportError as exc:
        print(f"billing: cannot reach the API at {args.url}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
