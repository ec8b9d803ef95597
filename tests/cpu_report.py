"""`pytest --cpu-report FILE`: the CPU each test costs, its processes included.

Wall time says little on a shared two-core machine; CPU time says what a test costs
wherever it runs. For each test this charges the pytest process's own CPU, that of the
children it has reaped, and the growth of every living descendant's CPU (its own and
its reaped children's), so a Temporal server or runner server that outlives the test
is charged for what it did during it. One line per test phase set, tab-separated:
node id, CPU seconds, wall seconds. Under xdist each worker appends to FILE.<worker>.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Generator
from pathlib import Path

import pytest

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _descendants_cpu(root: int) -> float:
    """CPU seconds of every living process below `root`, with their reaped children."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat_path.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        pid = int(stat_path.parent.name)
        parents[pid] = int(fields[1])
        # utime, stime, cutime, cstime: fields 14-17 of proc(5), 11-14 after the name.
        cpu[pid] = sum(int(v) for v in fields[11:15]) / CLOCK_TICKS
    below = {root}
    total = 0.0
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in below and pid not in below:
                below.add(pid)
                total += cpu[pid]
                changed = True
    return total


def _own_cpu() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _snapshot() -> float:
    return _own_cpu() + _descendants_cpu(os.getpid())


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cpu-report",
        metavar="FILE",
        help="append each test's CPU seconds (its processes included) and wall seconds to FILE",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    report = item.config.getoption("--cpu-report")
    if not report:
        yield
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    path = Path(f"{report}.{worker}" if worker else report)
    cpu, wall = _snapshot(), time.monotonic()
    yield
    spent = _snapshot() - cpu
    with path.open("a") as out:
        out.write(f"{item.nodeid}\t{spent:.2f}\t{time.monotonic() - wall:.2f}\n")
