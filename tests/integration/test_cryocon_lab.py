"""The demo lab end to end: real database, real simulator and device server processes, free ports."""

from __future__ import annotations

import signal
import threading

import pytest
import tango

from tangolab.scripting import wait_until

DEVICE = "lab/cryocon/1"


@pytest.fixture(scope="module")
def cryocon(lab):
    proxy = lab.proxy(DEVICE)
    wait_until(lambda: proxy.state() in (tango.DevState.ON, tango.DevState.RUNNING), 60, what="cryocon ON")
    return proxy


def test_every_device_of_the_lab_file_is_up(lab, cryocon):
    rows = {row["device"]: row for row in lab.table()}
    assert rows[DEVICE]["class"] == "TemperatureController"
    assert rows[DEVICE]["state"] in ("ON", "RUNNING")
    assert rows[DEVICE]["url"].startswith("socket://localhost:")


def test_temperatures_carry_units_and_valid_readings(cryocon):
    reading = cryocon.read_attribute("temperatureA")
    assert reading.quality == tango.AttrQuality.ATTR_VALID
    assert 1.0 < reading.value < 400.0
    assert cryocon.get_attribute_config("temperatureA").unit == "K"


def test_input_without_sensor_reads_invalid(cryocon):
    assert cryocon.read_attribute("temperatureD").quality == tango.AttrQuality.ATTR_INVALID


def test_a_read_right_after_a_write_returns_the_value_read_back(cryocon):
    cryocon.write_attribute("setpoint1", 77.5)
    assert cryocon.read_attribute("setpoint1").value == pytest.approx(77.5)  # not the last poll's
    cryocon.write_attribute("loopType2", 2)  # PID
    assert cryocon.read_attribute("loopType2").value == 2


def test_write_widgets_show_what_the_instrument_holds(cryocon):
    for name in ("setpoint2", "loopType2", "heaterRange2", "rampRate2", "control"):
        reading = cryocon.read_attribute(name)
        assert reading.w_value == reading.value, f"{name}: write value {reading.w_value}, read {reading.value}"


def test_the_setpoint_range_reaches_the_labs_clients(cryocon):
    config = cryocon.get_attribute_config("setpoint1")
    assert (float(config.min_value), float(config.max_value), config.unit) == (0, 1000, "K")  # Jive, Taurus


def test_change_events_follow_the_cool_down(cryocon):
    values: list[float] = []
    seen = threading.Event()

    def on_event(event: tango.EventData) -> None:
        if not event.err and event.attr_value.quality == tango.AttrQuality.ATTR_VALID:
            values.append(event.attr_value.value)
            if len(values) >= 6:
                seen.set()

    subscription = cryocon.subscribe_event("temperatureA", tango.EventType.CHANGE_EVENT, on_event)
    try:
        assert seen.wait(60), f"only {len(values)} change events in 60 s"
    finally:
        cryocon.unsubscribe_event(subscription)
    assert values[-1] < values[0], f"temperatureA did not cool down: {values}"


def test_control_starts_and_stops(cryocon):
    cryocon.command_inout("StartControl")
    wait_until(lambda: cryocon.state() == tango.DevState.RUNNING, 10, what="RUNNING after StartControl")
    assert cryocon.read_attribute("control").value is True
    cryocon.command_inout("StopControl")
    wait_until(lambda: cryocon.state() == tango.DevState.ON, 10, what="ON after StopControl")


def test_lost_instrument_makes_fault_and_the_device_recovers_alone(lab, cryocon):
    lab.kill("simulator/cryocon", sig=signal.SIGKILL)
    wait_until(lambda: cryocon.state() == tango.DevState.FAULT, 30, what="FAULT after the simulator died")
    status = cryocon.status()
    assert "socket://localhost:" in status and "failing since" in status, status
    assert cryocon.read_attribute("temperatureA").quality == tango.AttrQuality.ATTR_INVALID

    lab.start_program("simulator/cryocon")
    wait_until(lambda: cryocon.state() == tango.DevState.ON, 30, what="ON again after the simulator restarted")
    assert cryocon.read_attribute("temperatureA").quality == tango.AttrQuality.ATTR_VALID
