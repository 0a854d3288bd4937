"""The Monochromator device in a DeviceTestContext (own process) against the Cornerstone simulator
in a thread of the test: wavelength as a movable (MOVING with progress, ends ON where the drive
is), a grating change as a long operation of its own (RUNNING with progress, ends ON), filter
wheel and shutter, refusals in the instrument's words that move nothing, Stop, and the fault
matrix (garbage, a reply cut short, silence, a dropped link, offline then back)."""

from __future__ import annotations

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.monochromator.device import Monochromator
from simulators import run_in_thread
from simulators.monochromator import CornerstoneSimulator
from tangolab.scripting import wait_until

ON = tango.DevState.ON


def sent_together(simulator, statements: list[str]) -> bool:
    """Whether the statements reached the instrument one after the other (the driver holds the line)."""
    received = simulator.simulator.received
    return any(received[i:i + len(statements)] == statements for i in range(len(received)))


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(CornerstoneSimulator(seed=3)) as running:
        yield running


@pytest.fixture(scope="module")
def device(simulator):
    properties = {"Url": simulator.url, "PollPeriod": 0.2, "Timeout": 0.5}
    with DeviceTestContext(Monochromator, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() == ON, 30, what="device connected")
        yield proxy


@pytest.fixture(autouse=True)
def healthy(simulator, device):
    simulator.simulator.clear()
    wait_until(lambda: device.state() == ON, 30, what="device idle and connected")
    yield
    simulator.simulator.clear()


def test_the_instrument_configured_and_its_state_in_words(device, simulator):
    assert {"INFO?", "UNITS NM", "*OPC"} <= set(simulator.simulator.received)
    assert device.identity == "CS260B,SN 00471,VER 1.08"
    assert device.gratingLines == 1200 and device.gratingLabel == "VIS"
    wait_until(lambda: device.status().startswith("At 500.000 nm on grating 1 (1200 lines/mm, VIS)"), 10,
               what="where it is in the status")
    config = device.get_attribute_config("wavelength")
    assert (float(config.min_value), float(config.max_value), config.unit) == (0, 2500, "nm")


def test_a_wavelength_move_is_moving_with_progress_and_ends_on_where_the_drive_is(device, simulator):
    states = []
    device.wavelength = 650.0  # 150 nm at 200 nm/s
    assert device.state() == tango.DevState.MOVING
    assert device.operation == "moving to 650 nm"
    assert sent_together(simulator, ["*ESR?", "GOWAVE 650.000", "ERROR?", "*OPC"])
    wait_until(lambda: states.append(device.progress) or device.state() == ON, 30, what="the move ended")
    assert any(0 < progress < 100 for progress in states)
    assert device.outcome == "done" and device.progress == 100
    assert device.wavelength == 650.0


def test_a_grating_change_is_running_with_progress_and_ends_on(device):
    seen = []
    device.grating = 2
    assert device.state() == tango.DevState.RUNNING and device.operation == "changing to grating 2"
    wait_until(lambda: seen.append((device.state(), device.progress)) or device.state() == ON, 30,
               what="the grating changed")
    assert any(state == tango.DevState.RUNNING and 0 < progress < 100 for state, progress in seen)
    assert (device.grating, device.gratingLines, device.gratingLabel, device.outcome) == (2, 600, "NIR", "done")


def test_a_second_operation_while_one_runs_is_refused_naming_it(device):
    device.wavelength = 900.0
    with pytest.raises(tango.DevFailed) as refused:
        device.grating = 3
    assert refused.value.args[0].reason == "Busy"
    assert "moving to 900 nm is running" in refused.value.args[0].desc
    wait_until(lambda: device.state() == ON, 30, what="the move ended")


def test_a_target_the_grating_cannot_reach_is_refused_in_the_instruments_words(device, simulator):
    before = device.wavelength
    with pytest.raises(tango.DevFailed) as refused:
        device.wavelength = 2400.0  # grating 1 reaches 1300 nm, grating 2 2000 nm
    assert refused.value.args[0].reason == "InstrumentError"
    assert "destination position for wavelength motion not allowed (error 3)" in refused.value.args[0].desc
    assert device.state() == ON and device.operation == "" and device.wavelength == before


def test_stop_ends_a_move_where_the_drive_is(device, simulator):
    device.wavelength = 1250.0
    wait_until(lambda: device.progress > 5, 30, what="the move under way")
    device.Stop()
    assert "ABORT" in simulator.simulator.received
    wait_until(lambda: device.state() == ON, 30, what="stopped")
    assert device.outcome == "stopped"
    assert device.wavelength < 1250.0


def test_filter_wheel_and_shutter(device, simulator):
    device.filter = 4
    assert device.state() == tango.DevState.RUNNING
    wait_until(lambda: device.state() == ON, 30, what="the wheel turned")
    assert device.filter == 4
    device.shutterOpen = True
    assert sent_together(simulator, ["SHUTTER O", "ERROR?", "SHUTTER?"])
    assert device.shutterOpen is True
    device.shutterOpen = False
    assert device.shutterOpen is False


@pytest.mark.parametrize(("fault", "words"), [("garbage", "GarbledReply"), ("truncate", "no reply")])
def test_garbage_or_a_reply_cut_short_makes_fault_then_recovers(device, simulator, fault, words):
    if fault == "garbage":
        simulator.simulator.garbage = True
    else:
        simulator.simulator.faults.add(fault)
    wait_until(lambda: device.state() == tango.DevState.FAULT, 20, what=f"FAULT on {fault}")
    wait_until(lambda: words in device.status(), 10, what=f"{words!r} in the status")
    assert device.read_attribute("wavelength").quality == tango.AttrQuality.ATTR_INVALID
    simulator.simulator.clear()
    wait_until(lambda: device.state() == ON, 20, what="back in operation")


def test_a_silent_instrument_makes_fault_with_the_reason(device, simulator):
    simulator.simulator.delay = 2.0
    wait_until(lambda: device.state() == tango.DevState.FAULT, 20, what="FAULT on time-out")
    wait_until(lambda: "no reply" in device.status() and simulator.url in device.status(), 10, what="why")
    simulator.simulator.delay = 0.0
    wait_until(lambda: device.state() == ON, 20, what="back in operation")


def test_a_dropped_link_and_an_instrument_offline_then_back(device, simulator):
    connections = simulator.simulator.connections
    simulator.simulator.drop()
    wait_until(lambda: simulator.simulator.connections > connections and device.state() == ON, 20,
               what="reconnected after the drop")
    simulator.simulator.set_offline(True)
    wait_until(lambda: device.state() == tango.DevState.FAULT, 20, what="FAULT while offline")
    with pytest.raises(tango.DevFailed) as failure:
        device.shutterOpen = True
    assert failure.value.args[0].reason == "LinkError"
    simulator.simulator.set_offline(False)
    wait_until(lambda: device.state() == ON, 20, what="reconnected")
