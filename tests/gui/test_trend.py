"""LabTrend against a real Tango database and device server: history from a tangolab archive first,
then live points; a constant drawn at once; each reading stored once; legends by label."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tango

from gui.trend import LabTrend, LabTrendSet, archive_of_lab
from tangolab.archive import open_store
from tangolab.lab_config import free_port
from tangolab.launcher import answering_database, start_database
from tangolab.processes import spawn, terminate
from tangolab.scripting import wait_until

ROOT = Path(__file__).resolve().parents[2]
DEVICE = "test/burst/1"
# tests/unit/burst_device.py's Burst as a server process of its own: `level` pushes a change event per write
SERVE_BURST = (
    f"import sys; sys.path.insert(0, {str(ROOT)!r}); from tests.unit.burst_device import Burst;"
    " Burst.run_server(sys.argv[1:])"
)


SERVERS = {  # server: (class, device, properties, command line less the instance)
    "Burst/test": ("Burst", DEVICE, {}, [sys.executable, "-c", SERVE_BURST]),
    "Archiver/test": (
        "Archiver",
        "test/archiver/1",
        {  # its Store relative to its working folder, as in the demo lab
            "Store": ["archive.db"],
            "ArchivedAttributes": [f"{DEVICE}/level"],
        },
        [str(Path(sys.executable).parent / "Archiver")],
    ),
}


class TrendLab:
    """A Tango database and the servers above, each a process of its own in one run folder,
    stopped by PID. (Not tangolab.launcher.Lab: the trend needs no supervisor.)"""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.tango_host = f"127.0.0.1:{free_port()}"
        self.processes: dict[str, subprocess.Popen] = {}

    def kill(self, server: str) -> None:
        self.processes[server].kill()
        self.processes[server].wait(10)

    def start_server(self, server: str) -> None:
        _, device, _, command = SERVERS[server]
        self.processes[server] = spawn(server, [*command, server.split("/")[1]], self.run_dir, self.tango_host)
        wait_until(lambda: self.proxy(device).ping() is not None, 60, what=f"{device} answering")

    def start(self) -> None:
        self.processes["database"] = start_database(self.run_dir, self.tango_host)
        host, port = self.tango_host.split(":")
        database = wait_until(lambda: answering_database(host, int(port)), 60, what="the Tango database")
        for server, (tango_class, device, properties, command) in SERVERS.items():
            info = tango.DbDevInfo()
            info.name, info._class, info.server = device, tango_class, server
            database.add_device(info)
            if properties:
                database.put_device_property(device, properties)
            self.start_server(server)

    def proxy(self, device: str) -> tango.DeviceProxy:
        return tango.DeviceProxy(f"tango://{self.tango_host}/{device}")

    def stop(self) -> None:
        for process in reversed(self.processes.values()):
            terminate(process.pid)


@pytest.fixture(scope="session")
def qapp_cls():
    from taurus.qt.qtgui.application import TaurusApplication

    return TaurusApplication


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrendLab]:
    lab = TrendLab(tmp_path_factory.mktemp("trend-lab"))
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def burst(lab: TrendLab) -> tango.DeviceProxy:
    return lab.proxy(DEVICE)


def level_model(lab: TrendLab) -> str:
    return f"tango://{lab.tango_host}/{DEVICE}/level"


def trend_set(trend: LabTrend) -> LabTrendSet:
    (found,) = trend.getTrendSets()
    return found


def curve_data(trend: LabTrend) -> tuple[np.ndarray, np.ndarray]:
    """What the curve draws: (x, y), empty before the first reading."""
    curves = trend_set(trend)[:]
    if not curves or curves[0].xData is None:
        return np.empty(0), np.empty(0)
    return curves[0].xData, curves[0].yData


def until_live(trend: LabTrend, burst: tango.DeviceProxy, qtbot) -> None:
    """Write `level` until a pushed value reaches the trend. Its first point is the value read at
    subscription; a change pushed before the subscription reaches the device's ZMQ publisher is
    lost (ZMQ's late joiner), so a single write right after opening may never show."""
    counted = trend_set(trend).point_count()
    for probe in range(30):
        burst.level = -1000.0 - probe  # a value no test writes
        try:
            qtbot.waitUntil(lambda: trend_set(trend).point_count() > counted, timeout=1000)
            return
        except qtbot.TimeoutError:
            continue
    raise AssertionError("no pushed value reached the trend in 30 writes")


@pytest.fixture
def open_trend(qtbot):
    def open_trend(models: list[str], archive: str | None = None, **kwargs) -> LabTrend:
        trend = LabTrend(models, archive, **kwargs)
        qtbot.addWidget(trend)
        trend.resize(900, 400)
        trend.show()
        return trend

    return open_trend


def test_the_archive_of_the_lab_is_found_from_the_archivers_store_property(lab):
    assert archive_of_lab(lab.tango_host) == str(lab.run_dir / "archive.db")


def test_no_archive_where_the_database_does_not_answer():
    assert archive_of_lab(f"127.0.0.1:{1}") is None


def test_history_from_before_the_window_opened_then_live_points(lab, burst, open_trend, qtbot, tmp_path):
    now = time.time()
    archived = [(now - 500 + 60 * i, 10.0 + i) for i in range(7)]  # every minute from 500 s ago
    older = [(now - 3000 + 60 * i, 100.0 + i) for i in range(5)]  # before the trend's first span
    with open_store(tmp_path / "archive.db") as store:
        conf_id = store.register(level_model(lab), "DevDouble", "SCALAR", "READ_WRITE")
        store.insert_values([(conf_id, t, v, None, 0, None) for t, v in older + archived])

    trend = open_trend([level_model(lab)], str(tmp_path / "archive.db"), history=600)
    qtbot.waitUntil(lambda: trend.loaded_from() is not None, timeout=30_000)
    assert trend.history_error is None
    qtbot.waitUntil(lambda: len(curve_data(trend)[0]) >= len(archived) + 1, timeout=30_000)
    x, y = curve_data(trend)
    for t, v in archived:
        assert v in y[np.isclose(x, t, atol=1e-3)]
    # from before the span asked for: only the value that held at its start, drawn from there
    assert not set(y) & {v for _, v in older[:-1]}
    assert y[0] == older[-1][1] and x[0] == trend.loaded_from()

    # the subscription is made in the background: write once the current value is in
    qtbot.waitUntil(lambda: trend_set(trend)._xBuffer.contents()[-1] > archived[-1][0], timeout=30_000)
    until_live(trend, burst, qtbot)
    stored = trend_set(trend).point_count()
    for value in (41.5, 42.5):
        burst.level = value
    qtbot.waitUntil(lambda: trend_set(trend).point_count() >= stored + 2, timeout=30_000)
    qtbot.waitUntil(lambda: curve_data(trend)[1][-1] == 42.5, timeout=30_000)
    x, y = curve_data(trend)
    assert list(y[-3:-1]) == [41.5, 42.5] and x[-1] >= x[-2], (x - now, y)  # the last value held up to now
    assert all(np.diff(x) >= 0)

    # scrolled back before what is loaded: the older points come from the archive too
    trend.getPlotItem().setXRange(now - 3600, now, padding=0)
    qtbot.waitUntil(lambda: trend.loaded_from() < now - 3000, timeout=30_000)
    qtbot.waitUntil(lambda: {v for _, v in older} <= set(curve_data(trend)[1]), timeout=30_000)
    assert all(np.diff(curve_data(trend)[0]) >= 0)
    trend.grab().save(str(tmp_path / "trend_history.png"))


def test_a_constant_value_draws_a_flat_line_at_once(lab, burst, open_trend, qtbot, tmp_path):
    burst.level = 80.0
    trend = open_trend([level_model(lab)])
    qtbot.waitUntil(lambda: len(curve_data(trend)[0]) >= 2, timeout=30_000)
    x, y = curve_data(trend)
    assert trend_set(trend).point_count() == 1  # one reading, drawn held up to now
    assert list(y) == [80.0] * len(y) and x[-1] > x[0]
    trend.grab().save(str(tmp_path / "trend_flat.png"))


def test_each_reading_is_stored_once(lab, burst, open_trend, qtbot):
    trend = open_trend([level_model(lab)])
    qtbot.waitUntil(lambda: trend_set(trend).point_count() == 1, timeout=30_000)
    until_live(trend, burst, qtbot)
    stored = trend_set(trend).point_count()
    first = trend_set(trend)._yBuffer.contents()[-1, 0]
    writes = [first + 1, first + 2, first + 3, first + 4]
    for value in writes:
        burst.level = value
    # events come in order: once the last write is in, a second copy of any earlier one would be too
    qtbot.waitUntil(lambda: trend_set(trend)._yBuffer.contents()[-1, 0] == writes[-1], timeout=30_000)
    assert trend_set(trend).point_count() == stored + len(writes)
    assert list(trend_set(trend)._yBuffer.contents()[-len(writes) - 1:, 0]) == [first, *writes]
    assert all(np.diff(trend_set(trend)._xBuffer.contents()) > 0)


def test_legends_read_the_attribute_label_without_an_index(lab, burst, open_trend, qtbot, tmp_path):
    counter = f"tango://{lab.tango_host}/{DEVICE}/counter"
    trend = open_trend([level_model(lab), counter])
    qtbot.waitUntil(lambda: all(len(ts) == 1 for ts in trend.getTrendSets()), timeout=30_000)
    burst.Burst(3)
    legend = trend.getPlotItem().legend
    qtbot.waitUntil(lambda: len(legend.items) == 2, timeout=30_000)
    assert sorted(label.text for _, label in legend.items) == ["counter", "level"]
    trend.grab().save(str(tmp_path / "trend_legend.png"))


def test_an_archive_that_cannot_be_read_says_why_and_the_trend_goes_on_live(
    lab, burst, open_trend, qtbot, tmp_path
):
    trend = open_trend([level_model(lab)], str(tmp_path / "nothing-here.db"))
    qtbot.waitUntil(lambda: trend.history_error is not None, timeout=30_000)
    assert "nothing-here.db" in trend.history_error
    qtbot.waitUntil(lambda: trend_set(trend).point_count() >= 1, timeout=30_000)
    until_live(trend, burst, qtbot)
    burst.level = 7.25
    qtbot.waitUntil(lambda: len(curve_data(trend)[1]) and curve_data(trend)[1][-1] == 7.25, timeout=30_000)


def test_a_hidden_trend_keeps_its_points_and_draws_them_when_shown(lab, burst, open_trend, qtbot):
    trend = open_trend([level_model(lab)])
    qtbot.waitUntil(lambda: trend_set(trend).point_count() >= 1, timeout=30_000)
    until_live(trend, burst, qtbot)
    value = trend_set(trend)._yBuffer.contents()[-1, 0] + 1.5
    trend.hide()
    burst.level = value
    qtbot.waitUntil(lambda: trend_set(trend)._yBuffer.contents()[-1, 0] == value, timeout=30_000)
    assert curve_data(trend)[1][-1] != value  # in the buffer, not drawn while hidden
    trend.show()
    qtbot.waitUntil(lambda: curve_data(trend)[1][-1] == value, timeout=30_000)


def test_an_attribute_that_pushes_no_events_is_read_in_the_background_and_drawn(
    lab, burst, open_trend, qtbot
):
    trend = open_trend([f"tango://{lab.tango_host}/{DEVICE}/quiet"])
    qtbot.waitUntil(lambda: trend_set(trend).point_count() >= 1, timeout=30_000)
    assert trend_set(trend)._yBuffer.contents()[0, 0] == 1.0
    assert len(curve_data(trend)[0]) >= 1


def test_readings_come_from_the_trends_own_subscription_not_through_taurus(lab, burst, open_trend, qtbot):
    trend = open_trend([level_model(lab)])
    qtbot.waitUntil(lambda: trend_set(trend).point_count() >= 1, timeout=30_000)
    assert trend_set(trend)._feed.event_id is not None
    assert trend_set(trend) not in trend_set(trend).getModelObj()._listeners


def test_a_server_killed_and_started_again_shows_as_a_gap_then_comes_back_by_itself(lab, open_trend, qtbot):
    trend = open_trend([level_model(lab)])
    qtbot.waitUntil(lambda: trend_set(trend).point_count() >= 1, timeout=30_000)
    lab.kill("Burst/test")
    qtbot.waitUntil(lambda: not trend_set(trend)._held, timeout=60_000)  # no longer drawn up to now
    assert np.isnan(trend_set(trend)._yBuffer.contents()[-1, 0])  # a gap in the line
    lab.start_server("Burst/test")
    lab.proxy(DEVICE).level = 55.5
    qtbot.waitUntil(lambda: curve_data(trend)[1][-1] == 55.5, timeout=60_000)
    assert trend_set(trend)._held
