"""The PowerSupply device in a DeviceTestContext (own process) against the TTi simulator in a
thread of the test: per-output attributes from the model, writes read back, refusals that send
nothing, protection trips as ALARM with the reason and ResetTrip, faults to FAULT and back."""

from __future__ import annotations

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.tti.device import PowerSupply
from device_servers.tti.protocol import MODELS
from simulators import run_in_thread
from simulators.tti import TtiSimulator
from tangolab.scripting import wait_until

CONNECTED = (tango.DevState.ON, tango.DevState.OFF)


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(TtiSimulator(load=100.0, seed=3)) as running:
        yield running


@pytest.fixture(scope="module")
def device(simulator):
    properties = {"Url": simulator.url, "PollPeriod": 0.2, "Timeout": 0.5}
    with DeviceTestContext(PowerSupply, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() in CONNECTED, 30, what="device connected")
        yield proxy


@pytest.fixture(autouse=True)
def healthy(simulator, device):
    simulator.simulator.clear()
    for n in (1, 2, 3, 4):
        device.write_attribute(f"output{n}", False)
    device.ResetTrip()
    wait_until(lambda: device.state() in CONNECTED, 30, what="device back in operation")
    yield
    simulator.simulator.clear()


def test_four_outputs_of_the_mx100qp_with_units_and_ranges(device):
    names = {attr.lower() for attr in device.get_attribute_list()}
    for n in (1, 2, 3, 4):
        for name in ("voltage", "current", "voltageSetpoint", "currentLimit", "output", "overVoltageProtection"):
            assert f"{name}{n}".lower() in names
    assert "voltage5" not in names
    config = device.get_attribute_config("voltageSetpoint1")
    assert (float(config.min_value), float(config.max_value), config.unit) == (0, 35, "V")
    assert device.get_attribute_config("current2").unit == "A"


def test_current_follows_the_voltage_through_the_load(device, simulator):
    device.write_attribute("currentLimit1", 1.0)
    device.write_attribute("voltageSetpoint1", 12.0)
    device.write_attribute("output1", True)
    assert {"V1 12.000;V1?;EER?", "OP1 1;EER?"} <= set(simulator.simulator.received)
    wait_until(lambda: abs(device.read_attribute("current1").value - 0.12) < 0.002, 10, what="0.12 A in 100 ohm")
    assert device.read_attribute("voltage1").value == pytest.approx(12.0, abs=0.005)
    wait_until(lambda: "Outputs on: 1 (12.0" in device.status(), 10, what="output 1 on in the status")
    assert device.state() == tango.DevState.ON


def test_each_settings_range_is_the_models(device):
    # declared once: the driver refuses beyond them (test_tti_driver), Jive and Taurus show them
    model = MODELS["MX100QP"]
    for name, limits in (("voltageSetpoint2", model.voltage), ("currentLimit2", model.current),
                         ("overVoltageProtection2", model.ovp), ("overCurrentProtection2", model.ocp)):
        config = device.get_attribute_config(name)
        assert (float(config.min_value), float(config.max_value), config.unit) == (
            limits.low, limits.high, limits.unit
        )


def test_overload_trips_ocp_to_alarm_with_the_reason_and_reset_trip(device, simulator):
    device.write_attribute("voltageSetpoint2", 5.0)
    device.write_attribute("output2", True)
    simulator.simulator.overload(2)
    wait_until(lambda: device.state() == tango.DevState.ALARM, 10, what="ALARM on the trip")
    wait_until(lambda: "output 2 over-current protection" in device.status(), 10, what="the trip in the status")
    assert "output 2 over-current protection" in device.read_attribute("trips").value
    assert device.read_attribute("output2").value is False
    device.ResetTrip()
    assert "TRIPRST;EER?" in simulator.simulator.received
    wait_until(lambda: device.state() == tango.DevState.OFF, 10, what="no ALARM after ResetTrip")
    assert device.read_attribute("trips").value == ""


def test_a_voltage_above_the_ovp_level_trips_ovp(device):
    device.write_attribute("overVoltageProtection3", 5.0)
    device.write_attribute("voltageSetpoint3", 6.0)
    device.write_attribute("output3", True)
    wait_until(lambda: "output 3 over-voltage protection (OVP 5 V" in device.status(), 10, what="OVP trip")
    assert device.state() == tango.DevState.ALARM
    device.write_attribute("voltageSetpoint3", 4.0)
    device.write_attribute("output3", True)  # switching on again clears that output's trip
    wait_until(lambda: device.state() == tango.DevState.ON, 20, what="ON again")
    device.write_attribute("overVoltageProtection3", 40.0)


@pytest.mark.parametrize(("fault", "words"), [("garbage", "GarbledReply"), ("truncate", "no reply")])
def test_garbage_or_a_reply_cut_short_makes_fault_then_recovers(device, simulator, fault, words):
    if fault == "garbage":
        simulator.simulator.garbage = True
    else:
        simulator.simulator.faults.add(fault)
    wait_until(lambda: device.state() == tango.DevState.FAULT, 20, what=f"FAULT on {fault}")
    wait_until(lambda: words in device.status(), 10, what=f"{words!r} in the status")
    assert device.read_attribute("voltage1").quality == tango.AttrQuality.ATTR_INVALID
    simulator.simulator.clear()
    wait_until(lambda: device.state() in CONNECTED, 20, what="back in operation")


def test_a_silent_instrument_makes_fault_with_the_reason(device, simulator):
    simulator.simulator.delay = 2.0
    wait_until(lambda: device.state() == tango.DevState.FAULT, 20, what="FAULT on time-out")
    wait_until(lambda: "no reply" in device.status() and simulator.url in device.status(), 10, what="why")
    simulator.simulator.delay = 0.0
    wait_until(lambda: device.state() in CONNECTED, 20, what="back in operation")


def test_a_dropped_connection_makes_fault_and_it_reconnects(device, simulator):
    simulator.simulator.set_offline(True)
    wait_until(lambda: device.state() == tango.DevState.FAULT, 20, what="FAULT while offline")
    with pytest.raises(tango.DevFailed) as failure:
        device.write_attribute("voltageSetpoint1", 1.0)
    assert failure.value.args[0].reason == "LinkError"
    simulator.simulator.set_offline(False)
    wait_until(lambda: device.state() in CONNECTED, 20, what="reconnected")


def test_a_model_that_is_not_the_instrument_is_fault_saying_so(simulator):
    properties = {"Url": simulator.url, "PollPeriod": 0.2, "Timeout": 0.5, "Model": "PL303QMD-P"}
    with DeviceTestContext(PowerSupply, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() == tango.DevState.FAULT, 30, what="FAULT on the wrong model")
        assert "not an Aim-TTi PL303QMD-P" in proxy.status()
        names = {attr.lower() for attr in proxy.get_attribute_list()}
        assert "voltage2" in names and "voltage3" not in names  # the PL303QMD-P has two outputs
