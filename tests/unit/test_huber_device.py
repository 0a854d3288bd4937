"""The Chiller device in a DeviceTestContext (own process) against the Huber simulator in a
thread of the test: reads, writes as LAI frames, refusals, the unit's alarm, faults and recovery."""

from __future__ import annotations

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.huber.device import Chiller
from device_servers.huber.driver import SETPOINT_LIMITS
from simulators import run_in_thread
from simulators.huber import HuberSimulator
from tangolab.scripting import wait_until

CONNECTED = (tango.DevState.ON, tango.DevState.OFF, tango.DevState.RUNNING)


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(HuberSimulator(tau=5.0, seed=3)) as running:
        yield running


@pytest.fixture(scope="module")
def device(simulator):
    properties = {"Url": simulator.url, "PollPeriod": 0.2, "Timeout": 0.5}
    with DeviceTestContext(Chiller, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() in CONNECTED, 30, what="device connected")
        yield proxy


@pytest.fixture(autouse=True)
def healthy(simulator, device):
    simulator.simulator.clear()
    wait_until(lambda: device.state() in CONNECTED, 30, what="device back in operation")
    yield
    simulator.simulator.clear()


def test_temperature_in_celsius_and_no_external_sensor_is_invalid(device):
    reading = device.read_attribute("temperature")
    assert reading.quality == tango.AttrQuality.ATTR_VALID
    assert -20 < reading.value < 40
    assert device.get_attribute_config("temperature").unit == "degC"
    assert device.read_attribute("externalTemperature").quality == tango.AttrQuality.ATTR_INVALID


def test_cooling_to_a_setpoint(device, simulator):
    device.write_attribute("setpoint", 15.0)
    assert b"[M01G0D**05DC04" in simulator.simulator.received  # 1500 hundredths = 05DC
    device.write_attribute("mode", list(device.get_attribute_config("mode").enum_labels).index("COOL"))
    wait_until(lambda: device.state() == tango.DevState.RUNNING, 10, what="RUNNING while cooling")
    wait_until(lambda: "Cooling to 15.00" in device.status(), 10, what="the set-point in the status")
    wait_until(lambda: abs(device.read_attribute("temperature").value - 15.0) < 2.0, 30,
               what="bath close to the set-point")
    device.write_attribute("mode", 0)
    wait_until(lambda: device.state() == tango.DevState.OFF, 10, what="OFF")


def test_mode_labels(device):
    assert list(device.get_attribute_config("mode").enum_labels) == ["OFF", "PUMP", "COOL"]
    device.write_attribute("mode", 1)
    assert device.read_attribute("mode").value == 1
    wait_until(lambda: "Pump only" in device.status(), 10, what="PUMP in the status")
    device.write_attribute("mode", 0)


def test_the_setpoint_range_is_the_drivers_limits(device):
    # declared once: the driver refuses beyond them (test_huber_driver), Jive and Taurus show them
    config = device.get_attribute_config("setpoint")
    limits = SETPOINT_LIMITS
    assert (float(config.min_value), float(config.max_value), config.unit) == (limits.low, limits.high, limits.unit)


def test_the_units_alarm_makes_alarm_then_clears(device, simulator):
    simulator.simulator.alarm = True
    wait_until(lambda: device.state() == tango.DevState.ALARM, 10, what="ALARM")
    wait_until(lambda: "reports an alarm" in device.status(), 10, what="the alarm in the status")
    assert device.read_attribute("alarm").value
    simulator.simulator.alarm = False
    wait_until(lambda: device.state() in CONNECTED, 10, what="alarm gone")


@pytest.mark.parametrize(
    ("fault", "words"),
    [("checksum", "checksum"), ("address", "not from slave 01"), ("truncate", "no reply")],
)
def test_spoilt_replies_make_fault_with_the_reason_then_recover(device, simulator, fault, words):
    simulator.simulator.faults.add(fault)
    wait_until(lambda: device.state() == tango.DevState.FAULT, 20, what=f"FAULT on {fault}")
    wait_until(lambda: words in device.status(), 10, what=f"{words!r} in the status")
    assert device.read_attribute("temperature").quality == tango.AttrQuality.ATTR_INVALID
    simulator.simulator.faults.clear()
    wait_until(lambda: device.state() in CONNECTED, 20, what="back in operation")


def test_garbage_makes_fault_then_recovers(device, simulator):
    simulator.simulator.garbage = True
    wait_until(lambda: device.state() == tango.DevState.FAULT, 20, what="FAULT on garbage")
    wait_until(lambda: "GarbledReply" in device.status(), 10, what="GarbledReply in the status")
    simulator.simulator.garbage = False
    wait_until(lambda: device.state() in CONNECTED, 20, what="back in operation")


def test_a_dropped_connection_makes_fault_and_it_reconnects(device, simulator):
    simulator.simulator.set_offline(True)
    wait_until(lambda: device.state() == tango.DevState.FAULT, 20, what="FAULT while offline")
    wait_until(lambda: simulator.url in device.status(), 10, what="the URL in the status")
    with pytest.raises(tango.DevFailed) as failure:
        device.write_attribute("setpoint", 10.0)
    assert failure.value.args[0].reason == "LinkError"
    simulator.simulator.set_offline(False)
    wait_until(lambda: device.state() in CONNECTED, 20, what="reconnected")
