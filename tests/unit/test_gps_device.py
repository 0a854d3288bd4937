"""The GpsReceiver device in a DeviceTestContext (its own process) against the GPS simulator,
sending 5 bursts a second, its clock 2 s ahead of the host's: fix, satellites, position and the
clock's offset; ALARM without a fix; and the fault matrix (silent then back, garbage, a bad
checksum)."""

from __future__ import annotations

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.gps.device import GpsReceiver
from simulators import run_in_thread
from simulators.gps import GpsSimulator
from tangolab.scripting import wait_until


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(GpsSimulator(offset=2.0, rate=5, seed=3)) as running:
        yield running


@pytest.fixture(scope="module")
def gps(simulator):
    properties = {"Url": simulator.url, "Timeout": 0.6}
    with DeviceTestContext(GpsReceiver, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="receiver ON")
        yield proxy


@pytest.fixture(autouse=True)
def healthy(simulator, gps):
    simulator.simulator.clear()
    wait_until(lambda: gps.state() == tango.DevState.ON, 30, what="receiver ON")
    yield
    simulator.simulator.clear()


def test_1_the_fix_its_satellites_position_and_clock_offset(gps):
    assert gps.read_attribute("fix").value is True
    assert (gps.read_attribute("satellitesInUse").value, gps.read_attribute("satellitesInView").value) == (8, 11)
    assert gps.read_attribute("latitude").value == pytest.approx(28.755)
    assert gps.read_attribute("longitude").value == pytest.approx(-(17 + 53.5 / 60))
    assert 1.5 < gps.read_attribute("timeOffset").value <= 2.0  # 2 s ahead, less the burst's lateness
    assert "Fix with 8 of 11 satellites" in gps.status()


def test_2_no_fix_is_alarm_saying_how_many_satellites_are_in_view(gps, simulator):
    assert simulator.simulator.control("fix off") == "OK"
    wait_until(lambda: gps.state() == tango.DevState.ALARM, 10, what="ALARM without a fix")
    assert gps.status() == "No fix (11 satellites in view)"
    assert gps.read_attribute("satellitesInUse").value == 0


@pytest.mark.parametrize(("fault", "says"), [("offline", "LinkError"), ("garbage", "no NMEA sentence"),
                                             ("checksum", "bad NMEA checksum")])
def test_3_a_fault_is_fault_with_the_reason_then_it_recovers(gps, simulator, fault, says):
    instrument = simulator.simulator
    if fault == "offline":
        instrument.set_offline(True)
    elif fault == "garbage":
        instrument.garbage = True
    else:
        instrument.faults.add(fault)
    wait_until(lambda: gps.state() == tango.DevState.FAULT, 30, what=f"FAULT on {fault}")
    wait_until(lambda: says in gps.status(), 10, what=f"{says!r} in the status")
    instrument.clear()
    wait_until(lambda: gps.state() == tango.DevState.ON, 30, what=f"ON again after {fault}")
