"""wait_for, ramp against a small device: ends on the event that makes the condition true, says why not."""

from __future__ import annotations

import threading
import time

import pytest
import tango
from tango.test_context import DeviceTestContext

from tangolab.scripting import ConditionTimeout, ramp, wait_for, wait_until

from .burst_device import Burst

TRL = ""  # the device's tango://host:port/test/nodb/burst#dbase=no


@pytest.fixture(scope="module")
def device():
    global TRL
    context = DeviceTestContext(Burst, process=True, timeout=30)
    with context as proxy:
        TRL = context.get_device_access()
        yield proxy


def name(device, attribute: str) -> str:
    device_name, hash_sign, options = TRL.partition("#")
    return f"{device_name}/{attribute}{hash_sign}{options}"


def test_wait_for_returns_on_the_event_that_makes_the_condition_true(device):
    device.level = 0.0
    writer = tango.DeviceProxy(device.name())
    steps = threading.Event()

    def write_steps():
        steps.wait(20)
        for value in range(1, 11):
            writer.level = float(value)
            time.sleep(0.1)

    thread = threading.Thread(target=write_steps)
    thread.start()
    try:  # the steps begin once wait_for has its first value, read at subscription
        assert wait_for(name(device, "level"), lambda v: steps.set() or v >= 5, timeout=20) == 5.0  # that event
    finally:
        thread.join()


def test_wait_for_sees_a_change_whose_event_was_lost(device):
    """An event pushed while a new subscription is still on its way to the server is lost (ZMQ's
    late joiner): a value no event brought is read once the attribute has been quiet a poll period."""
    device.level = 0.0
    writer = tango.DeviceProxy(device.name())

    def change_after_the_first_value(value: float) -> bool:
        if value == 0.0:  # the value read at subscription: now change it, without an event
            writer.LoseLevelEvent(7.0)
        return value == 7.0

    assert wait_for(name(device, "level"), change_after_the_first_value, timeout=20, poll_period=0.2) == 7.0


def test_wait_for_stable_holds_for_the_time_asked(device):
    device.level = 3.0
    began = time.monotonic()
    assert wait_for(name(device, "level"), lambda v: v == 3.0, timeout=20, stable_for=0.3) == 3.0
    assert time.monotonic() - began >= 0.3


def test_wait_for_time_out_says_the_last_value_and_how_long_it_held(device):
    device.level = 2.0
    with pytest.raises(ConditionTimeout) as failure:
        wait_for(name(device, "level"), lambda v: v > 1, timeout=0.5, stable_for=60, what="level above 1")
    assert failure.value.last_value == 2.0 and failure.value.held_for > 0
    assert "level above 1 did not hold for 60 s within 0.5 s; last value 2.0, holding for" in str(failure.value)
    with pytest.raises(ConditionTimeout) as never:
        wait_for(name(device, "level"), lambda v: v > 5, timeout=0.3)
    assert never.value.held_for == 0 and "not holding" in str(never.value)


def test_wait_for_reads_an_attribute_without_events(device):
    assert wait_for(name(device, "quiet"), lambda v: v == 1.0, timeout=10, poll_period=0.1) == 1.0


def test_ramp_writes_steps_in_order_up_to_the_target(device):
    device.level = 0.0
    written: list[float] = []
    event_id = device.subscribe_event("level", tango.EventType.CHANGE_EVENT, tango.constants.ALL_EVENTS)
    try:
        # until a pushed event arrives: one pushed before the subscription reaches the device is lost
        heard: list = []
        wait_until(lambda: device.write_attribute("level", 0.0) or heard.extend(device.get_events(event_id))
                   or len(heard) > 1, 20, interval=0.2, what="a live level event")
        assert ramp(name(device, "level"), 2.0, rate=10.0, step_period=0.05) == 2.0
        events: list = []
        wait_until(lambda: events.extend(device.get_events(event_id)) or events[-1].attr_value.value == 2.0, 10,
                   what="the event of the last step")
        written = [e.attr_value.value for e in events if not e.err and e.attr_value.value != 0.0]  # not 0.0 above
    finally:
        device.unsubscribe_event(event_id)
    assert written[-1] == 2.0 and len(written) >= 3
    assert written == sorted(written) and all(0.0 < v <= 2.0 for v in written)
    with pytest.raises(ValueError, match="rate must be positive"):
        ramp(name(device, "level"), 1.0, rate=0)
