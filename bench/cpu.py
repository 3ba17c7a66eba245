"""CPU time per process tree, and the machine's, from /proc: where each run spent its time.

Figures per unit of work (ms of CPU per 1,000 events, per workflow) hardly move when the
machine is shared, where wall-clock rates do; and the machine's total tells how much of it
other programs took during the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


def _stat(pid: int, *, reaped: bool = True) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its reaped children), None if gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    # After the command: state ppid ... utime stime cutime cstime (11 to 14, 0-based).
    ppid = int(fields[1])
    ticks = sum(int(f) for f in fields[11 : 15 if reaped else 13])
    return ppid, ticks / _TICK


def own_cpu_s(pid: int) -> float:
    """CPU seconds of `pid` alone: for the process that is the parent of all the others."""
    found = _stat(pid, reaped=False)
    return 0.0 if found is None else found[1]


def tree_cpu_s(root: int) -> float:
    """CPU seconds of `root` and every live descendant (each with what it has reaped)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and (found := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = found
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
            todo.extend(children.get(pid, []))
    return total


def machine_busy_s() -> tuple[float, float]:
    """(busy CPU seconds, all CPU seconds) of the whole machine since boot."""
    first = (_PROC / "stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in first[:8]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICK, sum(values) / _TICK


@dataclass(frozen=True)
class CpuSnapshot:
    per_tree: dict[str, float]
    busy_s: float
    all_s: float


def snapshot(trees: Mapping[str, int], alone: Mapping[str, int]) -> CpuSnapshot:
    """CPU seconds so far of each named process tree, and of each process in `alone`."""
    per_tree = {name: tree_cpu_s(pid) for name, pid in trees.items()}
    per_tree |= {name: own_cpu_s(pid) for name, pid in alone.items()}
    busy, every = machine_busy_s()
    return CpuSnapshot(per_tree, busy, every)


@dataclass(frozen=True)
class CpuUsage:
    """CPU seconds each tree used between two snapshots, and the machine's share to others."""

    per_tree: dict[str, float]
    machine_busy_s: float
    machine_all_s: float

    @property
    def others_s(self) -> float:
        return max(self.machine_busy_s - sum(self.per_tree.values()), 0.0)

    def per_unit_ms(self, units: int) -> dict[str, float]:
        out = {name: 1000 * s / units for name, s in self.per_tree.items()}
        out["other programs"] = 1000 * self.others_s / units
        return {k: round(v, 3) for k, v in out.items()}

    def ours_ms(self, units: int) -> float:
        """CPU ms per unit of every process the benchmark runs, load generator included."""
        return 1000 * sum(self.per_tree.values()) / units

    def busy_fraction(self) -> float:
        return self.machine_busy_s / self.machine_all_s if self.machine_all_s else 0.0


def used(before: CpuSnapshot, after: CpuSnapshot) -> CpuUsage:
    per_tree = {
        name: max(after.per_tree.get(name, 0.0) - s, 0.0) for name, s in before.per_tree.items()
    }
    return CpuUsage(per_tree, after.busy_s - before.busy_s, after.all_s - before.all_s)


def combined(usages: Iterable[CpuUsage]) -> CpuUsage:
    """The CPU of several runs as one: what pooled ratios are taken over."""
    per_tree: dict[str, float] = {}
    busy = every = 0.0
    for usage in usages:
        for name, s in usage.per_tree.items():
            per_tree[name] = per_tree.get(name, 0.0) + s
        busy += usage.machine_busy_s
        every += usage.machine_all_s
    return CpuUsage(per_tree, busy, every)
