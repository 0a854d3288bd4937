"""The PressureGauge device in a DeviceTestContext (its own process) per model, against the TPG 361
and PDR900 simulators served from this test: pressure in mbar, status codes as quality and state,
refusals in the gauge's words, a leak, alarm levels, and faults that end in FAULT and recover."""

from __future__ import annotations

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.gauge.device import PressureGauge
from device_servers.gauge.vocabulary import SensorStatus
from simulators import run_in_thread
from simulators.pdr900 import Pdr900Simulator
from simulators.tpg361 import Tpg361Simulator
from tangolab.scripting import wait_until

VALID, INVALID, ALARM = tango.AttrQuality.ATTR_VALID, tango.AttrQuality.ATTR_INVALID, tango.AttrQuality.ATTR_ALARM
SIMULATORS = {"TPG361": Tpg361Simulator, "PDR900": Pdr900Simulator}
HELD_MBAR = 2e-3 * 1013.25 / 760  # 2.00E-3 Torr: exact for the PDR900's three digits in Torr


def _start(running, model: str, **properties):
    properties = {"Url": running.url, "Model": model, "PollPeriod": 0.2, "Timeout": 0.5, **properties}
    context = DeviceTestContext(PressureGauge, properties=properties, process=True, timeout=30)
    return context, context.__enter__()


@pytest.fixture(scope="module", params=list(SIMULATORS))
def served(request):
    model = request.param
    with run_in_thread(SIMULATORS[model](seed=4, pressure=HELD_MBAR)) as running:
        context, proxy = _start(running, model)
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what=f"{model} ON")
        yield model, running.simulator, proxy
        context.__exit__(None, None, None)


@pytest.fixture
def gauge(served):
    """A gauge reading a held 2.666e-3 mbar, no fault, no alarm level."""
    model, sim, proxy = served
    sim.clear()
    with sim.lock:  # the pump stays out between the two
        sim.pressure = HELD_MBAR
        sim.freeze("pressure")
    config = proxy.get_attribute_config("pressure")
    config.alarms.max_alarm = "Not specified"
    proxy.set_attribute_config(config)
    wait_until(lambda: proxy.state() == tango.DevState.ON, 20, what="ON with no fault")
    yield model, sim, proxy
    sim.clear()


def test_pressure_in_mbar_whatever_the_gauge_shows(gauge):
    model, _, proxy = gauge
    wait_until(lambda: "2.666e-03 mbar" in proxy.status(), 10, what="the held pressure in the status")
    reading = proxy.read_attribute("pressure")
    assert reading.quality == VALID
    config = proxy.get_attribute_config("pressure")
    assert (config.unit, config.format) == ("mbar", "%.3e")
    assert proxy.read_attribute("sensorStatus").value == SensorStatus.OK
    assert proxy.read_attribute("displayUnit").value == {"TPG361": "mbar", "PDR900": "Torr"}[model]
    assert proxy.read_attribute("gaugeIdentity").value in ("PKR", "PDR900 serial 1734201956, firmware 1.07")
    assert reading.value == pytest.approx(HELD_MBAR, rel=1e-4)


@pytest.mark.parametrize(
    ("fault", "status", "words"),
    [("sensor error", SensorStatus.SENSOR_ERROR, "Sensor error"),
     ("sensor off", SensorStatus.SENSOR_OFF, "Sensor off"),
     ("no sensor", SensorStatus.NO_SENSOR, "No sensor")],
)
def test_status_codes_are_quality_and_state_never_a_pressure(gauge, fault, status, words):
    model, sim, proxy = gauge
    if model == "PDR900" and status is not SensorStatus.SENSOR_ERROR:
        pytest.skip("the PDR900 reports only a transducer failure")
    assert sim.control(fault) == "OK"
    wait_until(lambda: proxy.read_attribute("sensorStatus").value == status, 10, what=f"{status.name} shown")
    assert proxy.read_attribute("pressure").quality == INVALID
    assert proxy.state() == tango.DevState.ALARM
    assert words in proxy.status() and "no valid pressure" in proxy.status()
    sim.control("sensor ok")
    wait_until(lambda: proxy.state() == tango.DevState.ON, 10, what="ON once the sensor is back")
    assert proxy.read_attribute("pressure").quality == VALID


def test_a_leak_raises_the_pressure_past_a_configured_alarm_level(gauge):
    _, sim, proxy = gauge
    config = proxy.get_attribute_config("pressure")
    config.alarms.max_alarm = "8e-3"
    proxy.set_attribute_config(config)
    sim.unfreeze("pressure")
    sim.pressure = 1e-6
    wait_until(lambda: proxy.read_attribute("pressure").value < 1e-4, 10, what="a good vacuum")
    assert proxy.state() == tango.DevState.ON
    sim.control("leak on")
    wait_until(lambda: proxy.read_attribute("pressure").value > 8e-3, 20, what="the pressure rising")
    wait_until(lambda: proxy.state() == tango.DevState.ALARM, 10, what="ALARM above 8e-3 mbar")
    assert proxy.read_attribute("pressure").quality == ALARM
    assert "out of alarm limits: pressure" in proxy.status()
    sim.control("leak off")


def test_a_dropped_link_is_fault_with_the_reason_then_it_reconnects(gauge):
    _, sim, proxy = gauge
    sim.set_offline(True)
    wait_until(lambda: proxy.state() == tango.DevState.FAULT, 20, what="FAULT while offline")
    assert "LinkError" in proxy.status()
    assert proxy.read_attribute("pressure").quality == INVALID
    sim.set_offline(False)
    wait_until(lambda: proxy.state() == tango.DevState.ON, 20, what="reconnected")


def test_garbage_is_fault_with_the_reason_then_it_recovers(gauge):
    model, sim, proxy = gauge
    sim.garbage = True
    wait_until(lambda: proxy.state() == tango.DevState.FAULT, 20, what="FAULT on garbage")
    assert "GarbledReply" in proxy.status()
    assert {"TPG361": "expected ACK or NAK", "PDR900": "PDR900 answered"}[model] in proxy.status()
    sim.garbage = False
    wait_until(lambda: proxy.state() == tango.DevState.ON, 20, what="back ON")


def test_slow_replies_are_fault_then_it_recovers(gauge):
    _, sim, proxy = gauge
    sim.delay = 1.0
    wait_until(lambda: proxy.state() == tango.DevState.FAULT, 20, what="FAULT on slow replies")
    assert "no reply" in proxy.status()
    sim.delay = 0.0
    wait_until(lambda: proxy.state() == tango.DevState.ON, 20, what="back ON")


def test_a_refused_request_is_alarm_in_the_gauges_words_and_keeps_the_connection():
    """Channel 2 asked of a SingleGauge: NAK, and the error word says why; a refusal is the
    instrument's answer, not a broken link, so the device stays connected and says so."""
    with run_in_thread(Tpg361Simulator(seed=5)) as running:
        context, proxy = _start(running, "TPG361", Channel=2)
        try:
            wait_until(lambda: proxy.state() == tango.DevState.ALARM, 30, what="ALARM on NAK")
            assert "TPG 361 refused 'PR2' (NAK): error 01" in proxy.status()
            assert "(no hardware" in proxy.status()
            assert proxy.read_attribute("pressure").quality == tango.AttrQuality.ATTR_INVALID
            connections, asked = running.simulator.connections, len(running.simulator.received)
            wait_until(lambda: len(running.simulator.received) > asked + 6, 30, what="more refused polls")
            assert running.simulator.connections == connections, "a refusal must not reconnect"
            assert proxy.state() == tango.DevState.ALARM
        finally:
            context.__exit__(None, None, None)


def test_pdr900_at_an_unknown_address_is_found():
    with run_in_thread(Pdr900Simulator(seed=6, address=42)) as running:
        context, proxy = _start(running, "PDR900", Address=0)
        try:
            wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="ON at the address found")
            assert "@254AD?;FF" in running.simulator.received
            assert "@042PR1?;FF" in running.simulator.received
        finally:
            context.__exit__(None, None, None)
