"""The TemperatureController device in a DeviceTestContext, against the simulator over a real socket.

The device runs in a process of its own (one Tango server per process); the simulator runs in
a thread of the test, so the tests can inject faults and see every line the device sent.
"""

from __future__ import annotations

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.cryocon.device import TemperatureController
from simulators import run_in_thread
from simulators.cryocon import CryoConSimulator
from tangolab.scripting import wait_until

OPERATING = (tango.DevState.ON, tango.DevState.RUNNING)


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(CryoConSimulator(seed=3)) as running:
        yield running


@pytest.fixture(scope="module")
def device(simulator):
    properties = {"Url": simulator.url, "PollPeriod": 0.2, "Timeout": 0.5}
    with DeviceTestContext(TemperatureController, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() in OPERATING, 30, what="device connected")
        yield proxy


@pytest.fixture(autouse=True)
def healthy(simulator, device):
    """Every test starts and ends with a well-behaved instrument and a connected device."""
    simulator.simulator.clear()
    wait_until(lambda: device.state() in OPERATING, 30, what="device back in operation")
    yield
    simulator.simulator.clear()


def test_reads_come_from_the_poll_cache_with_units(device):
    first = device.read_attribute("temperatureA")
    assert first.quality == tango.AttrQuality.ATTR_VALID
    assert device.get_attribute_config("temperatureA").unit == "K"
    assert device.get_attribute_config("heaterPower1").unit == "%"
    wait_until(lambda: device.read_attribute("temperatureA").time.totime() > first.time.totime(), 10,
               what="a newer reading after one poll period")


def test_missing_sensor_is_invalid_not_a_number(device):
    reading = device.read_attribute("temperatureD")
    assert reading.quality == tango.AttrQuality.ATTR_INVALID
    assert reading.value is None


def test_setpoint_goes_to_the_instrument_as_scpi(device, simulator):
    device.write_attribute("setpoint2", 123.25)
    assert any("LOOP 2:SETP 123.25" in line.upper() for line in simulator.simulator.received)
    wait_until(lambda: device.read_attribute("setpoint2").value == pytest.approx(123.25), 10)


def test_the_driver_limits_are_the_attributes_range_and_a_value_outside_sends_nothing(device, simulator):
    config = device.get_attribute_config("setpoint1")
    assert (float(config.min_value), float(config.max_value), config.unit) == (0, 1000, "K")
    sent_before = len(simulator.simulator.received)
    with pytest.raises(tango.DevFailed) as failure:
        device.write_attribute("setpoint1", -5.0)
    assert failure.value.args[0].reason == "API_WAttrOutsideLimit"  # Tango's own check of min/max
    assert "below the minimum" in failure.value.args[0].desc
    sent = simulator.simulator.received[sent_before:]
    assert not [line for line in sent if "SETP " in line.upper()], sent


def test_loop_type_and_heater_range_are_enumerations(device, simulator):
    labels = list(device.get_attribute_config("loopType1").enum_labels)
    assert labels == ["OFF", "MAN", "PID", "TABLE", "RAMPP", "RAMPT"]
    device.write_attribute("loopType1", labels.index("PID"))
    device.write_attribute("heaterRange1", 1)
    assert any("LOOP 1:TYPE PID" in line.upper() for line in simulator.simulator.received)
    wait_until(lambda: device.read_attribute("loopType1").value == 2, 10, what="loopType1 PID")
    wait_until(lambda: device.read_attribute("heaterRange1").value == 1, 10, what="heaterRange1 MID")
    with pytest.raises(tango.DevFailed):
        device.write_attribute("heaterRange2", 2)  # loop 2 has HI and LOW only


def test_garbage_from_the_instrument_makes_fault_then_it_recovers(device, simulator):
    simulator.simulator.garbage = True
    wait_until(lambda: device.state() == tango.DevState.FAULT, 20, what="FAULT on garbage")
    assert "GarbledReply" in device.status() or "InstrumentError" in device.status()
    assert device.read_attribute("temperatureA").quality == tango.AttrQuality.ATTR_INVALID
    simulator.simulator.garbage = False
    wait_until(lambda: device.state() in OPERATING, 20, what="back in operation")


def test_silent_instrument_makes_fault_with_the_reason(device, simulator):
    simulator.simulator.delay = 2.0  # longer than the device's 0.5 s Timeout
    wait_until(lambda: device.state() == tango.DevState.FAULT, 20, what="FAULT on time-out")
    status = device.status()
    assert "no reply" in status and simulator.url in status, status


def test_a_slow_instrument_does_not_slow_reads(device, simulator):
    simulator.simulator.delay = 0.4  # within the Timeout: polls take long, reads must not
    device.set_timeout_millis(300)  # a read waiting on the instrument would time out
    try:
        for _ in range(20):
            device.read_attribute("temperatureB")
    finally:
        device.set_timeout_millis(3000)


def test_writes_while_the_link_is_down_say_so(device, simulator):
    simulator.simulator.set_offline(True)
    wait_until(lambda: device.state() == tango.DevState.FAULT, 20, what="FAULT while offline")
    with pytest.raises(tango.DevFailed) as failure:
        device.write_attribute("setpoint1", 50.0)
    assert failure.value.args[0].reason == "LinkError"
    simulator.simulator.set_offline(False)


def test_reading_beyond_its_alarm_limit_makes_alarm(device):
    config = device.get_attribute_config("temperatureB")
    limit = config.alarms.max_alarm
    config.alarms.max_alarm = "1.5"  # every reading of a cryostat stage is above 1.5 K
    device.set_attribute_config(config)
    try:
        wait_until(lambda: device.state() == tango.DevState.ALARM, 10, what="ALARM")
        assert "temperatureB" in device.status()
        assert device.read_attribute("temperatureB").quality == tango.AttrQuality.ATTR_ALARM
    finally:
        config.alarms.max_alarm = limit
        device.set_attribute_config(config)
    wait_until(lambda: device.state() in OPERATING, 10, what="no ALARM once the limit is back")


def test_reading_beyond_its_warning_limit_is_flagged_without_alarm(device):
    config = device.get_attribute_config("temperatureC")
    limit = config.alarms.max_warning
    config.alarms.max_warning = "1.5"
    device.set_attribute_config(config)
    try:
        wait_until(lambda: device.read_attribute("temperatureC").quality == tango.AttrQuality.ATTR_WARNING, 10,
                   what="WARNING quality")
        assert device.state() in OPERATING
    finally:
        config.alarms.max_warning = limit
        device.set_attribute_config(config)
