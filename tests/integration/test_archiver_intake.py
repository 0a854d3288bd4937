"""How the archiver keeps up: an honest lag when it falls behind.

One small lab for the module: a `Burst` server (tests/unit/burst_device.py) whose `counter`
pushes a change event per step on demand, and an Archiver storing it into SQLite. Each pushed
counter value is a number after the previous one, so the archive is checked value by value.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tango

from tangolab import history
from tangolab.archive import SQLiteStore
from tangolab.lab_config import LabConfig
from tangolab.launcher import Lab
from tangolab.scripting import wait_until
from tests.conftest import run_lab

ROOT = Path(__file__).resolve().parents[2]
BURST = "test/burst/1"
COUNTER = f"{BURST}/counter"
ARCHIVER = "test/archiver/1"
SERVE_BURST = (
    f"import sys; sys.path.insert(0, {str(ROOT)!r}); from tests.unit.burst_device import Burst;"
    " Burst.run_server(sys.argv[1:])"
)


def intake_lab(folder: Path) -> LabConfig:
    archiver = {"Store": [str(folder / "archive.db")], "ArchivedAttributes": [COUNTER], "LagAlarm": ["1.0"],
                "RetryPeriod": ["0.5"]}
    return LabConfig({
        "servers": {
            "Burst": {"test": {"Burst": {BURST: {}}}},
            "Archiver": {"test": {"Archiver": {ARCHIVER: {"properties": archiver}}}},
        },
        "tangolab": {"commands": {"Burst": [sys.executable, "-c", SERVE_BURST]}},
    })


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    folder = tmp_path_factory.mktemp("intake")
    with run_lab(intake_lab(folder), folder) as lab:
        wait_until(lambda: lab.proxy(ARCHIVER).state() == tango.DevState.ON, 60, what="archiver ON")
        yield lab


def stored_counts(lab: Lab) -> np.ndarray:
    values = history.values(COUNTER, 0.0, store=str(lab.run_dir / "archive.db"))["value"]
    return np.asarray(values.compressed(), dtype=np.int64)


def test_a_store_that_writes_slowly_makes_the_lag_grow_and_the_archiver_alarm(lab: Lab) -> None:
    """Another process holds the archive's write lock: nothing can be stored, values wait, and
    writeLag grows with the backlog until the archiver turns ALARM saying how late it is; once
    the lock goes, everything is stored, once."""
    archiver, burst = lab.proxy(ARCHIVER), lab.proxy(BURST)
    burst.Burst(5)
    wait_until(lambda: stored_counts(lab).size and stored_counts(lab).max() == burst.counter, 30,
               what="the first values archived")
    samples: list[tuple[float, int]] = []

    def falling_behind() -> bool:
        burst.Burst(20)
        samples.append((archiver.writeLag, archiver.queueDepth))
        return archiver.state() == tango.DevState.ALARM and "falling behind" in archiver.status()

    with SQLiteStore(lab.run_dir / "archive.db") as other:
        other._execute("BEGIN IMMEDIATE")  # another writer keeps the file locked
        try:
            wait_until(falling_behind, 25, interval=0.2, what="the archiver ALARM for its lag")
            status = archiver.status()
        finally:
            other._execute("ROLLBACK")
    (first_lag, first_depth), (last_lag, last_depth) = samples[0], samples[-1]
    assert last_lag > first_lag and last_depth > first_depth, samples
    late = re.search(r"falling behind: values reach the archive ([\d.]+) s after their time stamps \((\d+) wait",
                     status)
    assert late and float(late[1]) >= 1.0 and int(late[2]) > 0, status
    assert "LagAlarm" in status

    pushed = burst.counter
    wait_until(lambda: archiver.state() == tango.DevState.ON, 30, what="the archiver caught up")
    wait_until(lambda: stored_counts(lab).max() == pushed, 30, what="every value archived")
    counts = stored_counts(lab)
    assert np.array_equal(np.sort(counts), np.arange(0, pushed + 1)), "values lost or stored twice"  # 0: read at subscription
