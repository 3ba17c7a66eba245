"""Numbered SQL migrations (`migrations/NNNN_name.sql`), applied once each, in order.

Hand-written rather than alembic or yoyo: both need a second, synchronous driver
beside asyncpg, and plain numbered SQL files are all this schema needs. An
advisory lock makes concurrent starters (API, worker, tests) safe.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_LOCK_KEY = 0x6B11_1A6E  # any constant shared by every migrator of this schema
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""

# The file's digest, so that editing a migration after it ran is caught, not ignored.
_ADD_CHECKSUM = "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text"


class MigrationChanged(RuntimeError):
    """An applied migration's file no longer matches what ran: add a new one instead."""


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    """The migrations in version order; a misnamed file is an error, not skipped."""
    found: list[tuple[int, Path]] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file name must be NNNN_name.sql: {path.name}")
        found.append((int(match.group(1)), path))
    return found


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply what is missing; returns the names applied now (empty when up to date)."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1::bigint)", _LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        await conn.execute(_ADD_CHECKSUM)
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        done = {r["version"]: r["checksum"] for r in rows}
        for version, path in migration_files(directory):
            if version in done:
                if done[version] is not None and done[version] != checksum(path):
                    raise MigrationChanged(
                        f"{path.name} changed after it was applied; write a new migration"
                    )
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum)"
                    " VALUES ($1::int, $2::text, $3::text)",
                    version,
                    path.name,
                    checksum(path),
                )
            applied_now.append(path.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1::bigint)", _LOCK_KEY)
    return applied_now


async def migrate_url(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()
