"""Devices that share one line (device_servers/core/line.py), in one real server process: the three
axes of an ESP301 on one RS-232 line to the esp301 simulator.

One axis's Init and FAULT leave the other two moving and polling as if nothing happened (the
line is neither closed nor reopened); a transport failure is the line's, seen by all three, and
the line reconnects once for all of them; a device asking for other settings of the same line is
refused, naming both devices.
"""

from __future__ import annotations

import threading

import pytest
import tango
from tango.test_context import MultiDeviceTestContext

from device_servers.esp301.device import NewportAxis
from simulators import run_in_thread
from simulators.esp301 import Esp301Simulator
from tangolab.scripting import wait_until
from tests.unit.esp301_axes import three_axes

SETTLED = (tango.DevState.ON,)


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(Esp301Simulator(seed=7)) as running:
        yield running


@pytest.fixture(scope="module")
def axes(simulator):
    with three_axes(simulator.url, poll_period=0.2) as proxies:
        yield proxies


class StateLog:
    """Every State event of a device, from its subscription on."""

    def __init__(self, proxy: tango.DeviceProxy) -> None:
        self.proxy = proxy
        self.states: list[tango.DevState] = []
        self.errors: list[str] = []
        self.id = proxy.subscribe_event("State", tango.EventType.CHANGE_EVENT, self)

    def push_event(self, event: tango.EventData) -> None:
        if event.err:
            self.errors.append(event.errors[0].desc)
        else:
            self.states.append(event.attr_value.value)

    def close(self) -> None:
        self.proxy.unsubscribe_event(self.id)


def shuttle(axis: tango.DeviceProxy, stop: threading.Event, trips: list[float], failures: list[str]) -> None:
    """Move `axis` between two targets until `stop`, reading its Position on the way."""
    targets = (2.0, -2.0)
    while not stop.is_set():
        target = targets[len(trips) % 2]
        try:
            axis.write_attribute("Position", target)
            wait_until(lambda: axis.state() == tango.DevState.ON, 20, interval=0.05, what="the move's end")
            reading = axis.read_attribute("Position")
            if reading.quality != tango.AttrQuality.ATTR_VALID or abs(reading.value - target) > 1e-3:
                failures.append(f"{axis.name()} at {reading.value} ({reading.quality}) after a move to {target}")
        except Exception as exc:  # noqa: BLE001 - every failure is the test's finding
            failures.append(f"{axis.name()}: {exc}")
            return
        trips.append(target)


def test_one_axis_re_initialised_then_fault_leaves_the_others_moving_and_polling(axes, simulator):
    one, two, three = axes
    connections = simulator.simulator.connections
    logs = [StateLog(one), StateLog(three)]
    stop = threading.Event()
    trips: dict[str, list[float]] = {"one": [], "three": []}
    failures: list[str] = []
    movers = [
        threading.Thread(target=shuttle, args=(axis, stop, trips[name], failures))
        for axis, name in ((one, "one"), (three, "three"))
    ]
    try:
        for mover in movers:
            mover.start()
        wait_until(lambda: all(len(t) >= 1 for t in trips.values()), 30, what="both axes under way")
        two.command_inout("Init")
        wait_until(lambda: two.state() == tango.DevState.ON, 30, what="the re-initialised axis ON")
        simulator.simulator.stall(2)
        two.write_attribute("Position", 4.0 if two.read_attribute("Position").value < 2.0 else 0.0)
        wait_until(lambda: two.state() == tango.DevState.FAULT, 30, what="the stalled axis FAULT")
        done = {name: len(t) for name, t in trips.items()}
        wait_until(lambda: all(len(t) >= done[name] + 2 for name, t in trips.items()) or failures, 60,
                   what="two more trips of each other axis after the FAULT")
    finally:
        stop.set()
        for mover in movers:
            mover.join(60)
        for log in logs:
            log.close()
        simulator.simulator.stall(2, False)
    assert not failures
    for log in logs:
        assert set(log.states) <= {tango.DevState.ON, tango.DevState.MOVING}, log.states
        assert not log.errors
    assert simulator.simulator.connections == connections  # the line was never closed nor reopened
    two.write_attribute("Position", 0.0)  # a new move clears the overrun
    wait_until(lambda: two.state() == tango.DevState.ON, 30, what="the stalled axis ON again")


def test_a_dropped_line_is_seen_by_every_axis_and_reopened_once(axes, simulator):
    logs = [StateLog(axis) for axis in axes]
    connections = simulator.simulator.connections
    try:
        simulator.simulator.drop()
        for axis in axes:
            wait_until(lambda a=axis: a.state() == tango.DevState.ON, 30, what="every axis ON again")
        wait_until(lambda: all(tango.DevState.FAULT in log.states for log in logs), 10, what="FAULT seen by all")
    finally:
        for log in logs:
            log.close()
    assert simulator.simulator.connections == connections + 1


def test_garbage_is_the_lines_failure_seen_by_every_axis_then_all_recover(axes, simulator):
    simulator.simulator.garbage = True
    try:
        for axis in axes:
            wait_until(lambda a=axis: a.state() == tango.DevState.FAULT, 30, what="FAULT on garbage")
        wait_until(lambda: "GarbledReply" in axes[0].status(), 30, what="the garbage named in the status")
        status = axes[0].status()
        assert "\ufffd" not in status and "\\x" in status, status  # the bytes escaped, as they came
    finally:
        simulator.simulator.garbage = False
    for axis in axes:
        wait_until(lambda a=axis: a.state() == tango.DevState.ON, 30, what="ON again")


def test_a_device_asking_other_settings_of_the_line_is_refused_naming_both(simulator):
    devices_info = [{
        "class": NewportAxis,
        "devices": [
            {"name": "lab/esp301/11", "properties": {"Url": simulator.url, "Axis": 1}},
            {"name": "lab/esp301/12", "properties": {"Url": simulator.url, "Axis": 2, "BaudRate": 9600}},
        ],
    }]
    with MultiDeviceTestContext(devices_info, process=True, timeout=30) as context:
        first, second = (context.get_device(name) for name in ("lab/esp301/11", "lab/esp301/12"))
        wait_until(lambda: first.state() == tango.DevState.ON or second.state() == tango.DevState.ON, 30,
                   what="the first device ON")
        refused = second if first.state() == tango.DevState.ON else first
        assert refused.state() == tango.DevState.FAULT
        status = refused.status()
        assert "lab/esp301/11" in status and "lab/esp301/12" in status
        assert "baudrate 19200" in status and "9600" in status
