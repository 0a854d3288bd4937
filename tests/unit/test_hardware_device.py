"""What every hardware device gets from the core, shown on made-up instruments (no protocol):
cache and events for declared, spectrum and run-time attributes, declarative writes with their
limits, read-back after a write, unasked values published at once, FAULT and recovery; and the
stage vocabulary with its state rules."""

from __future__ import annotations

import itertools
import time

import pytest
import tango
from tango.test_context import DeviceTestContext

from tangolab.scripting import wait_until
from tests.unit.fake_instruments import AmplifierDevice, SlideDevice


@pytest.fixture(scope="module")
def amplifier():
    properties = {"Url": "memory://amplifier", "PollPeriod": 10.0}  # slow: events must not wait for a poll
    with DeviceTestContext(AmplifierDevice, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="amplifier ON")
        yield proxy


def test_declared_limits_are_the_attribute_range_and_a_write_runs_the_named_operation(amplifier):
    config = amplifier.get_attribute_config("gain")
    assert (float(config.min_value), float(config.max_value), config.unit) == (0, 10, "V/V")
    assert amplifier.read_attribute("gain").w_value == 2.0  # the write value is what the instrument holds
    amplifier.write_attribute("gain", 3.14)
    assert amplifier.read_attribute("gain").value == 3.1  # read back at once, as the instrument keeps it
    with pytest.raises(tango.DevFailed):
        amplifier.write_attribute("gain", 11.0)
    assert amplifier.read_attribute("gain").value == 3.1


def test_a_spectrum_is_polled_like_a_scalar(amplifier):
    trace = amplifier.read_attribute("trace")
    assert trace.quality == tango.AttrQuality.ATTR_VALID
    assert list(trace.value) == [0.0, 3.1, 6.2, 6.2 * 1.5]


def test_an_attribute_added_at_run_time_publishes_an_unasked_value_at_once(amplifier):
    assert "overload" in amplifier.get_attribute_list()
    assert amplifier.get_attribute_config("overload").unit == "V"
    levels: list[float] = []
    heard: list[tango.EventData] = []  # every event; the first is the value read at subscription

    def on_event(event: tango.EventData) -> None:
        heard.append(event)
        if not event.err and event.attr_value.quality == tango.AttrQuality.ATTR_VALID:
            levels.append(event.attr_value.value)

    subscription = amplifier.subscribe_event("overload", tango.EventType.CHANGE_EVENT, on_event)
    try:
        # an event pushed before the subscription reaches the device's ZMQ publisher is lost (ZMQ's late
        # joiner): report harmless levels, alternating so each is a change, until one is heard live
        harmless = itertools.cycle([1.0, 2.0])
        wait_until(lambda: amplifier.command_inout("Overload", next(harmless)) or len(heard) > 1, 15,
                   interval=0.2, what="a live overload event")
        polls = amplifier.read_attribute("polls").value
        amplifier.command_inout("Overload", 4.5)
        wait_until(lambda: levels[-1] == 4.5, 15, what="an event for the unasked value")
        assert amplifier.read_attribute("polls").value == polls  # published without waiting for a poll
    finally:
        amplifier.unsubscribe_event(subscription)


def test_a_lost_link_is_fault_with_the_reason_and_it_recovers_alone(amplifier):
    amplifier.command_inout("Unplug", True)
    with pytest.raises(tango.DevFailed) as failure:
        amplifier.write_attribute("gain", 2.0)
    assert failure.value.args[0].reason == "LinkError"
    assert "set_gain(1, 2.0)" in failure.value.args[0].origin
    wait_until(lambda: amplifier.state() == tango.DevState.FAULT, 20, what="FAULT")
    assert "unplugged" in amplifier.status() or "not connected" in amplifier.status()
    assert amplifier.read_attribute("trace").quality == tango.AttrQuality.ATTR_INVALID
    amplifier.command_inout("Unplug", False)
    wait_until(lambda: amplifier.state() == tango.DevState.ON, 30, what="ON again")
    assert amplifier.read_attribute("trace").quality == tango.AttrQuality.ATTR_VALID


@pytest.fixture(scope="module")
def slide():
    properties = {"Url": "memory://slide", "PollPeriod": 0.5, "Step_per_unit": 1000.0, "MoveTimeMargin": 1.0}
    with DeviceTestContext(SlideDevice, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="slide ON")
        yield proxy


def test_a_stage_refuses_to_move_before_homing(slide):
    assert slide.read_attribute("Homed").value is False
    with pytest.raises(tango.DevFailed) as failure:
        slide.write_attribute("Position", 10.0)
    assert failure.value.args[0].reason == "NotHomed"
    assert "Home" in failure.value.args[0].desc


def test_homing_refuses_a_move_then_the_stage_is_homed(slide):
    slide.command_inout("Home")
    assert slide.state() == tango.DevState.MOVING
    with pytest.raises(tango.DevFailed) as failure:
        slide.command_inout("Home")
    assert "MOVING" in failure.value.args[0].desc
    wait_until(lambda: slide.read_attribute("Homed").value, 20, what="homed")
    wait_until(lambda: slide.state() == tango.DevState.ON, 20, what="ON after homing")
    assert list(slide.read_attribute("Limit_switches").value) == [True, False, False]


def test_a_move_is_moving_with_position_events_until_it_settles(slide):
    positions: list[float] = []
    subscription = slide.subscribe_event(
        "Position", tango.EventType.CHANGE_EVENT,
        lambda event: positions.append(event.attr_value.value) if not event.err else None,
    )
    try:
        slide.write_attribute("Position", 5.0)  # 1 s at 5 mm/s
        assert slide.state() == tango.DevState.MOVING  # from the moment the move is accepted
        wait_until(lambda: slide.state() == tango.DevState.ON, 20, what="settled")
    finally:
        slide.unsubscribe_event(subscription)
    assert slide.read_attribute("Position").value == pytest.approx(5.0)
    between = [p for p in positions if 0.0 < p < 5.0]
    assert len(between) >= 5, positions  # at least ten a second during the move


def test_a_target_outside_the_travel_is_refused_with_the_range_and_nothing_moves(slide):
    before = slide.read_attribute("Position").value
    with pytest.raises(tango.DevFailed) as failure:
        slide.write_attribute("Position", 60.0)
    assert failure.value.args[0].reason == "API_WAttrOutsideLimit"  # beyond Position's min/max: the travel
    config = slide.get_attribute_config("Position")
    assert (float(config.min_value), float(config.max_value)) == (0.0, 50.0)
    assert slide.state() == tango.DevState.ON
    assert slide.read_attribute("Position").value == before


def test_stop_ends_a_move_where_it_is(slide):
    slide.write_attribute("Position", 45.0)
    wait_until(lambda: slide.read_attribute("Position").value > 10.0, 20, what="under way")
    slide.command_inout("Stop")
    wait_until(lambda: slide.state() == tango.DevState.ON, 5, what="stopped")
    stopped = slide.read_attribute("Position").value
    assert 10.0 < stopped < 45.0
    time.sleep(0.3)  # the position must stay put: nothing to wait for but time
    assert slide.read_attribute("Position").value == pytest.approx(stopped)


def test_a_move_that_overruns_its_time_ends_fault_with_the_reason(slide):
    slide.command_inout("Stall", True)
    try:
        slide.write_attribute("Position", 20.0)
        wait_until(lambda: slide.state() == tango.DevState.FAULT, 30, what="FAULT on a stalled move")
        assert "did not finish in time" in slide.status()
    finally:
        slide.command_inout("Stall", False)
    slide.write_attribute("Position", 1.0)  # a new move clears it
    wait_until(lambda: slide.state() == tango.DevState.ON, 30, what="ON after the next move")
