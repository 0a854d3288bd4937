"""The OwonSupply device in a DeviceTestContext (its own process) against the ODP6033 simulator:
the Aim-TTi's PowerSupply vocabulary on three outputs with their own ranges, writes read back,
refusals in the instrument's words, protection trips as ALARM, and the fault matrix."""

from __future__ import annotations

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.owon.device import OwonSupply
from simulators import run_in_thread
from simulators.owon import OwonSimulator
from tangolab.scripting import wait_until

CONNECTED = (tango.DevState.ON, tango.DevState.OFF)


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(OwonSimulator(load=100.0, seed=3)) as running:
        yield running


@pytest.fixture(scope="module")
def device(simulator):
    properties = {"Url": simulator.url, "PollPeriod": 0.2, "Timeout": 0.5}
    with DeviceTestContext(OwonSupply, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() in CONNECTED, 30, what="device connected")
        yield proxy


@pytest.fixture(autouse=True)
def healthy(simulator, device):
    simulator.simulator.clear()
    for n in (1, 2, 3):
        device.write_attribute(f"output{n}", False)
    device.ResetTrip()
    wait_until(lambda: device.state() in CONNECTED, 30, what="device back in operation")
    yield
    simulator.simulator.clear()


def test_three_outputs_on_the_power_supply_vocabulary_with_their_own_ranges(device):
    names = {attr.lower() for attr in device.get_attribute_list()}
    for n in (1, 2, 3):
        for name in ("voltage", "current", "voltageSetpoint", "currentLimit", "output", "overVoltageProtection",
                     "overCurrentProtection"):
            assert f"{name}{n}".lower() in names
    assert "trips" in names and "voltage4" not in names
    assert float(device.get_attribute_config("voltageSetpoint1").max_value) == 60
    assert float(device.get_attribute_config("voltageSetpoint3").max_value) == 6


def test_a_voltage_through_the_load_and_the_status(device, simulator):
    device.write_attribute("currentLimit2", 1.0)
    device.write_attribute("voltageSetpoint2", 12.0)
    device.write_attribute("output2", True)
    assert ":VOLT 12.000;:VOLT?;:SYST:ERR?" in simulator.simulator.received
    wait_until(lambda: abs(device.read_attribute("current2").value - 0.12) < 0.003, 10, what="0.12 A in 100 ohm")
    wait_until(lambda: "Outputs on: 2 (12.0" in device.status(), 10, what="output 2 on in the status")
    assert device.state() == tango.DevState.ON


def test_over_voltage_protection_trips_to_alarm_and_reset_trip_clears_it(device, simulator):
    device.write_attribute("voltageSetpoint1", 12.0)
    device.write_attribute("output1", True)
    device.write_attribute("overVoltageProtection1", 10.0)
    wait_until(lambda: device.state() == tango.DevState.ALARM, 10, what="ALARM on the trip")
    assert "output 1 over-voltage protection" in device.status()
    assert device.read_attribute("output1").value is False
    device.ResetTrip()
    wait_until(lambda: device.state() == tango.DevState.OFF, 10, what="no ALARM after ResetTrip")
    device.write_attribute("overVoltageProtection1", 66.0)


def test_an_overload_trips_over_current_protection(device, simulator):
    device.write_attribute("voltageSetpoint3", 5.0)
    device.write_attribute("output3", True)
    simulator.simulator.overload(3)
    wait_until(lambda: "output 3 over-current protection" in device.status(), 10, what="the OCP trip")
    assert device.state() == tango.DevState.ALARM


@pytest.mark.parametrize(("fault", "says"), [("offline", "LinkError"), ("garbage", "GarbledReply")])
def test_a_fault_is_fault_with_the_reason_then_it_recovers(device, simulator, fault, says):
    instrument = simulator.simulator
    if fault == "offline":  # the connection dropped, and refused until the instrument is back
        instrument.set_offline(True)
    elif fault == "garbage":
        instrument.garbage = True
    else:
        instrument.faults.add(fault)
    wait_until(lambda: device.state() == tango.DevState.FAULT, 30, what=f"FAULT on {fault}")
    wait_until(lambda: says in device.status(), 10, what=f"{says!r} in the status")
    assert device.read_attribute("voltage1").quality == tango.AttrQuality.ATTR_INVALID
    instrument.clear()
    wait_until(lambda: device.state() in CONNECTED, 30, what=f"back after {fault}")
