"""The test watchdog turns a hang into a fast failure that names the stuck await."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

HANGING = textwrap.dedent(
    """
    import asyncio
    import pathlib
    import subprocess
    import sys

    import pytest


    async def wait_for_ever(event: asyncio.Event) -> None:
        await event.wait()


    @pytest.mark.asyncio
    async def test_hangs() -> None:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        pathlib.Path(__file__).with_name("child.pid").write_text(str(child.pid))
        await asyncio.create_task(wait_for_ever(asyncio.Event()))
    """
)


def test_a_hung_test_ends_the_run_with_its_task_stacks_and_no_children(
    tmp_path: Path,
) -> None:
    """Run under pytest's default fd capture, as make test runs: the report must get out."""
    test_file = tmp_path / "test_hang.py"
    test_file.write_text(HANGING)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.watchdog",
            "-c",
            "/dev/null",
            "--rootdir",
            str(tmp_path),
            str(test_file),
        ],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "TEST_HANG_LIMIT_S": "3", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 124, run.stdout + run.stderr
    assert "HUNG: " in run.stderr
    assert "test_hangs ran past 3 s" in run.stderr
    assert "wait_for_ever" in run.stderr
    assert "event.wait()" in run.stderr
    assert "wait_for_ever" in (tmp_path / ".pytest-hang.txt").read_text()
    child_pid = int((tmp_path / "child.pid").read_text())
    assert not Path(f"/proc/{child_pid}").exists() or _is_zombie(child_pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True
