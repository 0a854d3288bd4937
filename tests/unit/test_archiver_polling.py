"""Attributes that push no events (TangoTest's kind): read every poll, stored as archive events would be.

A device of the test's own, in a DeviceTestContext process, offers no events; the archiver's
`ArchivedAttribute` polls it from the test process into a real SQLite archive. Each poll is
called directly, so nothing depends on timing but `archive_period`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
import tango
from tango.server import Device, attribute, command
from tango.test_context import DeviceTestContext

from device_servers.archiver.subscription import ArchivedAttribute, ArchiveThresholds
from device_servers.archiver.writer import Writer
from tangolab.archive import SQLiteStore
from tangolab.events import Intake
from tangolab.scripting import wait_until


class Quiet(Device):
    """Values set by a command, read on demand, no events of any kind: as TangoTest's attributes."""

    def init_device(self) -> None:
        super().init_device()
        self._value, self._count, self._flag = 0.0, 0, False
        self.set_state(tango.DevState.ON)

    @attribute(dtype=float, archive_abs_change=0.5)
    def level(self) -> float:
        return self._value

    @attribute(dtype=float, archive_rel_change=10)
    def pressure(self) -> float:
        return self._value

    @attribute(dtype=float, archive_period=300)
    def heartbeat(self) -> float:
        return 1.0

    @attribute(dtype=tango.CmdArgType.DevShort)
    def count(self) -> int:
        return self._count

    @attribute(dtype=bool)
    def flag(self) -> bool:
        return self._flag

    @command(dtype_in=float)
    def Set(self, value: float) -> None:
        self._value, self._count, self._flag = value, int(value), value > 0
        self.set_state(tango.DevState.RUNNING if value > 0 else tango.DevState.ON)


@pytest.fixture(scope="module")
def device() -> Iterator[tuple[tango.DeviceProxy, str]]:
    context = DeviceTestContext(Quiet, process=True, timeout=30)
    with context as proxy:
        yield proxy, context.get_device_access().split("#")[0]


@pytest.fixture
def archive(tmp_path) -> Iterator[tuple[SQLiteStore, Writer]]:
    with SQLiteStore(tmp_path / "archive.db") as store, Writer(store, period=0.01) as writer:
        yield store, writer


@pytest.fixture(scope="module")
def intake() -> Iterator[Intake]:
    intake = Intake()
    yield intake
    intake.close()


def polled(device_access: str, attribute_name: str, writer: Writer, intake: Intake) -> ArchivedAttribute:
    name = device_access.split("#")[0] + "/" + attribute_name
    archived = ArchivedAttribute(writer.store.archived_name(name), device_access + "#dbase=no", writer, intake)
    archived.connect()
    assert archived.mode == "polling"  # no events offered
    return archived


def stored(store: SQLiteStore, writer: Writer, archived: ArchivedAttribute) -> list:
    wait_until(lambda: writer.stats().queue_depth == 0, 30, what="the writer emptying its queue")
    return store.values(archived.name)[1].tolist()


def test_a_value_that_does_not_move_is_stored_once(device, archive, intake) -> None:
    proxy, access = device
    store, writer = archive
    proxy.Set(0.0)
    level = polled(access, "level", writer, intake)  # archive_abs_change 0.5
    for _ in range(5):
        level.poll()
    assert stored(store, writer, level) == [0.0]


def test_abs_and_rel_change_as_archive_events_have_them(device, archive, intake) -> None:
    proxy, access = device
    store, writer = archive
    proxy.Set(10.0)
    level, pressure = polled(access, "level", writer, intake), polled(access, "pressure", writer, intake)
    for value in (10.3, 10.6, 10.0, 9.4, 11.05):
        proxy.Set(value)
        level.poll()
        pressure.poll()
    # level: moved >= 0.5 from the last stored value; pressure: >= 10 % of it
    assert stored(store, writer, level) == [10.0, 10.6, 10.0, 9.4, 11.05]
    assert stored(store, writer, pressure) == [10.0, 11.05]


def test_archive_period_stores_an_unchanged_value_again(device, archive, intake) -> None:
    _, access = device
    store, writer = archive
    heartbeat = polled(access, "heartbeat", writer, intake)  # archive_period 300 ms, no change thresholds
    heartbeat.poll()
    assert len(stored(store, writer, heartbeat)) == 1
    started = time.monotonic()
    wait_until(lambda: time.monotonic() - started > 0.35, 5, what="one archive period")
    heartbeat.poll()
    heartbeat.poll()  # at once: not due again
    assert stored(store, writer, heartbeat) == [1.0, 1.0]


def test_without_thresholds_any_change_is_stored_in_its_own_type(device, archive, intake) -> None:
    proxy, access = device
    store, writer = archive
    proxy.Set(0.0)
    attributes = [polled(access, name, writer, intake) for name in ("count", "flag", "State")]
    for value in (0.0, 3.0, 3.0, 0.0):
        proxy.Set(value)
        for archived in attributes:
            archived.poll()
    assert stored(store, writer, attributes[0]) == [0, 3, 0]
    count, flag, state = (store.values(archived.name)[1] for archived in attributes)
    assert count.dtype == np.int16
    assert flag.tolist() == [False, True, False] and flag.dtype == np.bool_
    assert state.tolist() == [tango.DevState.ON, tango.DevState.RUNNING, tango.DevState.ON]


def test_a_failed_read_is_one_error_row_and_the_next_reading_is_stored(device, archive, intake) -> None:
    proxy, access = device
    store, writer = archive
    proxy.Set(1.0)
    level = polled(access, "level", writer, intake)
    level.failed("device gone")
    level.failed("device gone")  # the same outage
    level.poll()  # unchanged, but after an outage: stored
    wait_until(lambda: len(store.values(level.name)[0]) == 3, 30, what="three rows")
    assert store.values(level.name)[1].tolist() == [1.0, None, 1.0]


@pytest.mark.parametrize(
    ("thresholds", "last", "now", "due"),
    [
        (ArchiveThresholds(), None, (1.0, 5.0, 0), True),  # the first reading
        (ArchiveThresholds(), (1.0, 5.0, 0), (1.0, 6.0, 0), False),  # the same reading again (same time)
        (ArchiveThresholds(), (1.0, 5.0, 0), (2.0, 5.0, 0), False),
        (ArchiveThresholds(), (1.0, 5.0, 0), (2.0, 5.0, 2), True),  # quality changed (ALARM)
        (ArchiveThresholds(), (1.0, float("nan"), 0), (2.0, float("nan"), 0), False),
        (ArchiveThresholds(), (1.0, "cold", 0), (2.0, "warm", 0), True),
        (ArchiveThresholds(absolute=(1.0, 2.0)), (1.0, 5.0, 0), (2.0, 6.5, 0), False),  # up needs 2
        (ArchiveThresholds(absolute=(1.0, 2.0)), (1.0, 5.0, 0), (2.0, 4.0, 0), True),  # down needs 1
        (ArchiveThresholds(relative=(5.0, 5.0)), (1.0, 0.0, 0), (2.0, 0.1, 0), True),  # from 0: any change
        (ArchiveThresholds(period=10.0), (1.0, 5.0, 0), (10.9, 5.0, 0), True),  # within the tolerance
        (ArchiveThresholds(absolute=(1, 1)), (1.0, np.array([1.0, 2.0]), 0), (2.0, np.array([1.0, 3.0]), 0), True),
    ],
)
def test_when_a_polled_reading_is_due(thresholds, last, now, due) -> None:
    assert thresholds.due(last, now) is due
