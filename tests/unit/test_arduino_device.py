"""The EnvironmentBox device in a DeviceTestContext (its own process) against the Arduino box
simulator: it waits for the board that opening the port resets instead of failing, reads both
sensors with their dew points, sets and reads back the switches, and passes the fault matrix."""

from __future__ import annotations

import math

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.arduino.device import EnvironmentBox
from simulators import run_in_thread
from simulators.arduino import ArduinoSimulator
from tangolab.scripting import wait_until


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(ArduinoSimulator(boot=0.25, seed=3)) as running:
        yield running


@pytest.fixture(scope="module")
def box(simulator):
    properties = {"Url": simulator.url, "PollPeriod": 0.2, "Timeout": 0.5, "StartupTime": 5.0}
    with DeviceTestContext(EnvironmentBox, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="box ON")
        yield proxy


@pytest.fixture(autouse=True)
def healthy(simulator, box):
    simulator.simulator.clear()
    wait_until(lambda: box.state() == tango.DevState.ON, 30, what="box ON")
    yield
    simulator.simulator.clear()


def test_1_the_board_reset_by_the_opening_is_waited_for_not_failed(box, simulator):
    # one start of the transport (a RESET sent twice): no FAULT and reconnect while the board started
    assert simulator.simulator.received.count(bytes.fromhex("aa aa aa fe 00 00 40 1b 87 c8 55")) == 2
    assert box.read_attribute("temperature1").value == pytest.approx(21.5, abs=0.5)


def test_2_dew_point_from_temperature_and_humidity(box):
    celsius, humidity = box.read_attribute("temperature2").value, box.read_attribute("humidity2").value
    gamma = math.log(humidity / 100) + 17.62 * celsius / (243.12 + celsius)
    assert box.read_attribute("dewPoint2").value == pytest.approx(243.12 * gamma / (17.62 - gamma), abs=0.05)
    assert 8.0 < box.read_attribute("dewPoint2").value < 10.0  # 21.25 °C at 44.8 %
    assert box.get_attribute_config("dewPoint1").unit == "°C"


def test_3_switches_are_set_and_read_back(box, simulator):
    box.write_attribute("switch4", True)
    assert simulator.simulator.switches == [False, False, False, True]
    assert box.read_attribute("switch4").value is True
    wait_until(lambda: "switches on: 4" in box.status(), 10, what="switch 4 in the status")
    box.write_attribute("switch4", False)
    assert simulator.simulator.switches == [False] * 4


@pytest.mark.parametrize(("fault", "says"), [("offline", "LinkError"), ("garbage", "MIN frame"), ("checksum", "bad CRC-32")])
def test_4_a_fault_is_fault_with_the_reason_then_it_waits_for_the_board_and_recovers(box, simulator, fault, says):
    instrument = simulator.simulator
    if fault == "offline":
        instrument.set_offline(True)
    elif fault == "garbage":
        instrument.garbage = True
    else:
        instrument.faults.add(fault)
    wait_until(lambda: box.state() == tango.DevState.FAULT, 30, what=f"FAULT on {fault}")
    wait_until(lambda: says in box.status(), 10, what=f"{says!r} in the status")
    resets = instrument.resets
    instrument.clear()
    wait_until(lambda: box.state() == tango.DevState.ON, 30, what=f"ON again after {fault}")
    assert instrument.resets > resets  # reopened, the board reset, and the device waited for it
