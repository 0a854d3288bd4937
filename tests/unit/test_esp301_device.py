"""Three NewportAxis devices (the lens arms) in one server process on one ESP301 and one line,
driven by DeviceProxy clients: moves with Position events to completion, Stop, travel refused
with the range, two axes moving at once, and faults (drop, garbage, a stalled move) ending in
FAULT with the reason and recovering by themselves.

MultiDeviceTestContext resolves no short names through a database: the proxies come from
`context.get_device`, which gives the full TRL.
"""

from __future__ import annotations

import time

import pytest
import tango

from device_servers.esp301.device import NewportAxis
from simulators import run_in_thread
from simulators.esp301 import Esp301Simulator
from tangolab.scripting import wait_until
from tests.unit.esp301_axes import three_axes


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(Esp301Simulator(seed=5)) as running:
        yield running


@pytest.fixture(scope="module")
def arms(simulator):
    with three_axes(simulator.url, poll_period=0.3) as proxies:
        yield proxies


@pytest.fixture(autouse=True)
def healthy(simulator, arms):
    simulator.simulator.clear()
    for arm in arms:
        wait_until(lambda a=arm: a.state() in (tango.DevState.ON, tango.DevState.OFF), 30, what="axis back")
        if arm.state() == tango.DevState.OFF:
            arm.write_attribute("motorOn", True)
        wait_until(lambda a=arm: a.state() == tango.DevState.ON, 30, what="axis ON")
    yield
    simulator.simulator.clear()


def test_a_move_sends_pa_and_gives_position_events_to_completion(arms, simulator):
    arm = arms[0]
    positions: list[float] = []
    subscription = arm.subscribe_event(
        "Position", tango.EventType.CHANGE_EVENT,
        lambda event: positions.append(event.attr_value.value) if not event.err else None,
    )
    try:
        start = arm.read_attribute("Position").value
        target = 5.0 if start < 2.5 else 0.0
        arm.write_attribute("Position", target)
        assert arm.state() == tango.DevState.MOVING
        assert f"1PA{target:g};TB?" in simulator.simulator.received
        wait_until(lambda: arm.state() == tango.DevState.ON, 20, what="settled")
        wait_until(lambda: positions and positions[-1] == pytest.approx(target), 5, what="last event at target")
    finally:
        arm.unsubscribe_event(subscription)
    assert len([p for p in positions if min(start, target) < p < max(start, target)]) >= 5


def test_the_attributes_say_their_units_and_the_line_defaults_are_the_controllers(arms):
    arm = arms[1]
    assert arm.get_attribute_config("Position").unit == "mm"
    assert arm.read_attribute("motorOn").value is True
    assert arm.read_attribute("Velocity").value == pytest.approx(5.0)
    assert (NewportAxis.BaudRate.default_value, NewportAxis.Handshake.default_value) == (19200, "rtscts")


def test_out_of_travel_is_refused_with_the_range_and_nothing_moves(arms, simulator):
    arm = arms[2]
    before = arm.read_attribute("Position").value
    sent = len(simulator.simulator.received)
    with pytest.raises(tango.DevFailed) as failure:
        arm.write_attribute("Position", 60.0)
    assert failure.value.args[0].reason == "API_WAttrOutsideLimit"  # beyond Position's min/max: the travel
    config = arm.get_attribute_config("Position")
    assert (float(config.min_value), float(config.max_value)) == (-25.0, 25.0)
    assert not any("PA" in line for line in simulator.simulator.received[sent:])
    assert arm.state() == tango.DevState.ON
    assert arm.read_attribute("Position").value == before


def test_stop_during_a_move_stops_it(arms, simulator):
    arm = arms[0]
    arm.write_attribute("Position", -20.0)
    wait_until(lambda: arm.read_attribute("Position").value < -2.0, 20, what="under way")
    stopped_at = time.monotonic()
    arm.command_inout("Stop")
    wait_until(lambda: arm.state() == tango.DevState.ON, 5, what="stopped")
    print(f"Stop to ON: {time.monotonic() - stopped_at:.3f} s")
    position = arm.read_attribute("Position").value
    assert -20.0 < position < -2.0
    assert not simulator.simulator.axes[1].moving


def test_two_axes_moving_at_once_each_get_their_own_replies(arms, simulator):
    one, two = arms[0], arms[1]
    one.write_attribute("Position", 3.0)
    two.write_attribute("Position", -4.0)
    wait_until(lambda: one.state() == tango.DevState.ON and two.state() == tango.DevState.ON, 30,
               what="both settled")
    assert one.read_attribute("Position").value == pytest.approx(3.0)
    assert two.read_attribute("Position").value == pytest.approx(-4.0)
    assert simulator.simulator.axes[1].position == pytest.approx(3.0)
    assert simulator.simulator.axes[2].position == pytest.approx(-4.0)


def test_a_move_refused_by_the_controller_says_why_in_its_words(arms):
    arm = arms[2]
    arm.write_attribute("motorOn", False)
    wait_until(lambda: arm.state() == tango.DevState.OFF, 10, what="OFF with the motor off")
    assert "motorOn" in arm.status()
    with pytest.raises(tango.DevFailed) as failure:
        arm.write_attribute("Position", 1.0)
    assert failure.value.args[0].reason == "InstrumentError"
    assert "MOTOR NOT ENABLED (error 313)" in failure.value.args[0].desc
    arm.write_attribute("motorOn", True)


def test_a_dropped_link_is_fault_with_the_reason_then_recovers(arms, simulator):
    simulator.simulator.set_offline(True)
    try:
        for arm in arms:
            wait_until(lambda a=arm: a.state() == tango.DevState.FAULT, 20, what="FAULT")
        assert "LinkError" in arms[0].status()
    finally:
        simulator.simulator.set_offline(False)
    for arm in arms:
        wait_until(lambda a=arm: a.state() == tango.DevState.ON, 30, what="ON again")


def test_garbage_is_fault_then_recovers(arms, simulator):
    simulator.simulator.garbage = True
    try:
        wait_until(lambda: arms[1].state() == tango.DevState.FAULT, 20, what="FAULT on garbage")
        assert "GarbledReply" in arms[1].status() or "LinkError" in arms[1].status()
    finally:
        simulator.simulator.garbage = False
    wait_until(lambda: arms[1].state() == tango.DevState.ON, 30, what="ON again")


def test_a_stalled_move_ends_fault_with_the_reason_then_recovers(arms, simulator):
    arm = arms[1]
    simulator.simulator.stall(2)
    target = 2.0 if arm.read_attribute("Position").value < 1.0 else 0.0
    arm.write_attribute("Position", target)
    wait_until(lambda: arm.state() == tango.DevState.FAULT, 30, what="FAULT on a stalled move")
    assert "did not finish in time" in arm.status()
    simulator.simulator.stall(2, False)
    assert arms[0].read_attribute("motorOn").value  # the overrun stopped this arm only
    arm.write_attribute("Position", target)
    wait_until(lambda: arm.state() == tango.DevState.ON, 30, what="ON after the next move")
    assert arm.read_attribute("Position").value == pytest.approx(target)
