"""Keys at rest and in comparison.

Customer keys are stored as their SHA-256 only (256 random bits: no salt needed, and an
unsalted digest lets the unique index find the key), so no key is anywhere in the
database in clear; the service key is never written at all. Secrets are compared with
`hmac.compare_digest`, never `==`: an `==` on a secret leaks through its timing how many
leading characters matched. A customer key is found by its hash's index lookup, which
reveals nothing about the key.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

from .conftest import new_customer

ROOT = Path(__file__).resolve().parents[2]
# Every module that handles a key, a signature or a cookie derived from a key.
SECRET_HANDLERS = [
    "api/auth.py",
    "api/routes/reports.py",
    "billing/webhooks.py",
    "observability/codec_server.py",
]
_SECRET_WORDS = ("key", "secret", "signature", "digest", "token", "cookie", "expected", "candidate")


async def _tables(pool) -> list[str]:
    rows = await pool.fetch(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    )
    return [r["table_name"] for r in rows]


async def _rows_containing(pool, text: str) -> list[str]:
    """Tables with a row whose text form contains `text` anywhere, in any column."""
    found = []
    for table in await _tables(pool):
        # The table name comes from the catalog, not from input.
        query = f'SELECT count(*) FROM "{table}" t WHERE position($1::text in t::text) > 0'
        if await pool.fetchval(query, text):
            found.append(table)
    return found


async def test_customer_keys_are_stored_hashed_and_nowhere_in_clear(
    api, service, db_pool, redis_client, settings
):
    keys = {}
    for _ in range(3):
        created = await new_customer(api, service)
        keys[created["id"]] = created["api_key"]
    for cid, key in keys.items():
        assert key.startswith("ck_")
        assert len(key) >= 40
        stored = await db_pool.fetchval("SELECT api_key_hash FROM customers WHERE id = $1", cid)
        assert stored == hashlib.sha256(key.encode()).hexdigest()
        assert await _rows_containing(db_pool, key) == []
        assert await _rows_containing(db_pool, key[3:]) == []  # not even without its prefix
        shown = await api.get(f"/v1/customers/{cid}", headers=service)
        assert key not in shown.text  # shown once, at creation only
        assert "api_key" not in shown.json()
    service_key = settings.billing_api_key.get_secret_value()
    assert await _rows_containing(db_pool, service_key) == []
    secrets = [service_key, *keys.values()]
    async for name in redis_client.scan_iter(count=1000):
        assert not any(s.encode() in name for s in secrets)


async def test_wrong_keys_get_one_answer_that_says_nothing_about_why(api, service):
    created = await new_customer(api, service)
    near = created["api_key"][:-1] + ("A" if created["api_key"][-1] != "A" else "B")
    answers = [
        await api.get(f"/v1/customers/{created['id']}", headers={"Authorization": f"Bearer {k}"})
        for k in (near, "ck_" + "x" * 43, service["Authorization"][7:-1] + "!", "nonsense")
    ]
    assert {a.status_code for a in answers} == {401}
    assert {a.json()["error"]["message"] for a in answers} == {"the API key is not valid"}


def _identifiers(node: ast.AST) -> set[str]:
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id.lower())
        elif isinstance(sub, ast.Attribute):
            names.add(sub.attr.lower())
    return names


def _secret_equalities(source: str, label: str) -> list[str]:
    """`==` / `!=` between two non-literal values, one of them named like a secret."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            continue
        operands = [node.left, *node.comparators]
        if any(isinstance(o, ast.Constant) for o in operands):
            continue  # a literal (a header field name, a scheme) is never a secret
        names = set().union(*(_identifiers(o) for o in operands))
        if any(word in name for name in names for word in _SECRET_WORDS):
            found.append(f"{label}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_secrets_are_compared_in_constant_time():
    present = [ROOT / p for p in SECRET_HANDLERS if (ROOT / p).exists()]
    assert ROOT / "api/auth.py" in present
    found = [line for p in present for line in _secret_equalities(p.read_text(), p.name)]
    assert found == []
    auth = ast.parse((ROOT / "api/auth.py").read_text())
    principal = next(
        n for n in ast.walk(auth)
        if isinstance(n, ast.AsyncFunctionDef) and n.name == "get_principal"
    )  # fmt: skip
    calls = {ast.unparse(n.func) for n in ast.walk(principal) if isinstance(n, ast.Call)}
    assert "hmac.compare_digest" in calls
    assert "hash_customer_key" in calls  # the customer key is looked up by its hash
    webhooks = (ROOT / "billing/webhooks.py").read_text()
    assert "hmac.compare_digest" in webhooks


def test_the_equality_check_can_fail():
    # The check above is only worth something if a plain `==` on a key is caught.
    bad = "def check(key, state):\n    return key != state.settings.billing_api_key\n"
    assert _secret_equalities(bad, "bad.py") == ["bad.py:2: key != state.settings.billing_api_key"]
    fine = 'def parse(key):\n    return key == "t"\n'
    assert _secret_equalities(fine, "fine.py") == []
