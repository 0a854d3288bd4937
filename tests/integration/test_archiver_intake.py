"""How the archiver keeps up: an honest lag when it falls behind, intake over two processes.

One small lab for the module: a `Burst` server (tests/unit/burst_device.py) whose `counter`
pushes a change event per step on demand, and two Archivers storing it (with `level` and
`State`) into SQLite files of their own: one taking events in its own process, the other in two
intake processes. Each pushed counter value is a number after the previous one, so the archive
is checked value by value.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tango

from tangolab import history
from tangolab.archive import SQLiteStore, open_store
from tangolab.lab_config import LabConfig
from tangolab.launcher import Lab
from tangolab.scripting import wait_until
from tests.conftest import run_lab

ROOT = Path(__file__).resolve().parents[2]
BURST = "test/burst/1"
COUNTER = f"{BURST}/counter"
ARCHIVER = "test/archiver/1"
SPREAD = "test/archiver/2"  # with two intake processes
SERVE_BURST = (
    f"import sys; sys.path.insert(0, {str(ROOT)!r}); from tests.unit.burst_device import Burst;"
    " Burst.run_server(sys.argv[1:])"
)


def intake_lab(folder: Path) -> LabConfig:
    archiver = {"Store": [str(folder / "archive.db")], "ArchivedAttributes": [COUNTER], "LagAlarm": ["1.0"],
                "RetryPeriod": ["0.5"]}
    spread = {"Store": [str(folder / "spread.db")], "ArchivedAttributes": [COUNTER, f"{BURST}/level", f"{BURST}/State"],
              "IntakeProcesses": ["2"], "RetryPeriod": ["0.5"]}
    return LabConfig({
        "servers": {
            "Burst": {"test": {"Burst": {BURST: {}}}},
            "Archiver": {"test": {"Archiver": {ARCHIVER: {"properties": archiver}}},
                         "spread": {"Archiver": {SPREAD: {"properties": spread}}}},
        },
        "tangolab": {"commands": {"Burst": [sys.executable, "-c", SERVE_BURST]}},
    })


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    folder = tmp_path_factory.mktemp("intake")
    with run_lab(intake_lab(folder), folder) as lab:
        archivers = [lab.proxy(ARCHIVER), lab.proxy(SPREAD)]
        wait_until(lambda: all(archiver.state() == tango.DevState.ON for archiver in archivers), 60,
                   what="the archivers ON")
        yield lab


def stored_counts(lab: Lab, store: str = "archive.db") -> np.ndarray:
    values = history.values(COUNTER, 0.0, store=str(lab.run_dir / store))["value"]
    return np.asarray(values.compressed(), dtype=np.int64)


def children(pid: int) -> list[int]:
    """The processes `pid` started (the archiver's intake processes)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                found.append(int(stat.parent.name))
        except (OSError, IndexError):
            continue
    return found


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


def test_two_intake_processes_store_every_value_once_and_outages_as_gaps(lab: Lab) -> None:
    """The attributes spread over two intake processes: every counter value stored once (those of
    the test above too), a server's end one error row before its values resume, and an intake
    process killed one error row each for its attributes, which are then subscribed again."""
    spread, burst = lab.proxy(SPREAD), lab.proxy(BURST)
    store = str(lab.run_dir / "spread.db")
    intakes = children(lab.pid("Archiver/spread"))
    assert len(intakes) == 2, intakes
    for _ in range(5):
        burst.Burst(200)
        burst.level = float(burst.counter)
    pushed = burst.counter
    wait_until(lambda: stored_counts(lab, "spread.db").max() == pushed, 30, what="every value archived")
    assert np.array_equal(np.sort(stored_counts(lab, "spread.db")), np.arange(0, pushed + 1))
    wait_until(lambda: len(history.values(f"{BURST}/level", 0.0, store=store)) >= 6, 30, what="levels archived")

    ended = time.time()
    lab.kill("Burst/test")
    wait_until(lambda: spread.attributesInError, 30, what="the outage noticed")
    lab.start_program("Burst/test")
    wait_until(lambda: not spread.attributesInError, 60, what="archiving resumed")
    burst.Burst(50)  # the restarted server counts from 0 again: 1 ... 50
    wait_until(lambda: history.values(COUNTER, ended, store=store)["value"].compressed().max() == 50, 30,
               what="the restarted server's values archived")
    with open_store(store, read_only=True) as archive:
        (outage,) = archive.errors(COUNTER, ended)
    after = history.values(COUNTER, ended, store=store)
    valid = after["time"][~np.ma.getmaskarray(after["value"])]
    assert valid.size and outage[0] < valid.min()  # the gap first, then the values

    killed = time.time()
    os.kill(intakes[0], signal.SIGKILL)
    wait_until(lambda: (set(children(lab.pid("Archiver/spread"))) - set(intakes)) and not spread.attributesInError,
               60, what="a new intake process, every attribute subscribed again")
    before = burst.counter
    burst.Burst(50)
    wait_until(lambda: history.values(COUNTER, killed, store=store)["value"].compressed().max() == before + 50, 30,
               what="values after the intake process's end archived")
    with open_store(store, read_only=True) as archive:
        outages = [archive.errors(name, killed) for name in (COUNTER, f"{BURST}/level", f"{BURST}/State")]
    assert all(len(rows) <= 1 for rows in outages) and any(outages), outages  # its share: one outage each
    assert all("intake process" in text for rows in outages for _, text in rows), outages
    wait_until(lambda: spread.state() == tango.DevState.ON, 30, what="the archiver ON again")
