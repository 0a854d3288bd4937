"""The event intake against a small device in a process of its own: events in order, a value whose
event the late joiner lost read back, losses said, attributes without events polled or refused,
a device that comes later subscribed by itself. (A server's end and restart: tests/integration/
test_archive_restart.py, with a real supervisor.)"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tango
from tango.test_context import DeviceTestContext

from tangolab.events import NOT_OFFERED, QUEUE_FULL, Feed, Intake, attribute_name, is_loss
from tangolab.lab_config import free_port
from tangolab.processes import terminate
from tangolab.scripting import wait_until

from .burst_device import Burst

ROOT = Path(__file__).resolve().parents[2]
SERVE_BURST = (  # Burst on a given port without database, as DeviceTestContext runs it
    "import sys; from tests.unit.burst_device import Burst; Burst.run_server(['Burst', 'test', '-ORBendPoint',"
    " f'giop:tcp:127.0.0.1:{sys.argv[1]}', '-nodb', '-dlist', 'test/nodb/burst'])"
)


@pytest.fixture(scope="module")
def burst() -> Iterator[tuple[tango.DeviceProxy, str]]:
    context = DeviceTestContext(Burst, process=True, timeout=30)
    with context as proxy:
        yield proxy, context.get_device_access()


@pytest.fixture(params=[False, True], ids=["queues", "callbacks"])
def intake(request: pytest.FixtureRequest) -> Iterator[Intake]:
    intake = Intake(queue_size=1000, by_callback=request.param)
    yield intake
    intake.close()


def taken(feed: Feed, until, what: str) -> list:
    """Events of `feed` until `until(all taken so far)` holds."""
    events: list = []
    wait_until(lambda: events.extend(feed.take()) or until(events), 20, interval=0.02, what=what)
    return events


def values(events: list) -> list:
    return [event.attr_value.value for event in events if not event.err]


def test_a_change_pushed_right_after_subscribing_is_not_lost(burst, intake) -> None:
    proxy, access = burst
    proxy.level = 0.0
    feed = intake.add(attribute_name(access, "level"))
    proxy.LoseLevelEvent(7.0)  # as ZMQ loses an event pushed before the subscription reaches the server
    events = taken(feed, lambda events: 7.0 in values(events), "the lost value read back")
    assert values(events) == [0.0, 7.0]
    proxy.level = 8.0  # pushed live, after it
    assert values(taken(feed, lambda events: 8.0 in values(events), "the live event")) == [8.0]
    assert feed.live and feed.received >= 2 and feed.losses == 0


def test_events_come_in_order_and_a_full_queue_is_said_where_events_were_dropped(burst) -> None:
    proxy, access = burst
    intake = Intake(queue_size=5)
    try:
        feed = intake.add(attribute_name(access, "counter"))
        wait_until(lambda: proxy.Burst(1) or feed.take() and feed.live, 20, interval=0.2, what="a live counter event")
        proxy.Burst(1)  # its event is the last before the three: every earlier one is taken with it
        first = proxy.counter
        taken(feed, lambda events: first in values(events), "the counter's latest event")
        proxy.Burst(3)
        assert values(taken(feed, lambda events: first + 3 in values(events), "3 events")) == [
            first + 1, first + 2, first + 3]
        proxy.Burst(200)  # nothing is taken meanwhile: the queue of 5 keeps the newest
        events = taken(feed, lambda events: first + 203 in values(events), "the burst's end")
    finally:
        intake.close()
    assert any(is_loss(event) and event.errors[0].reason == QUEUE_FULL for event in events)
    previous: int | None = first + 3
    for event in events:  # every gap in the counter is preceded by a loss
        if is_loss(event):
            previous = None
        else:
            assert previous is None or event.attr_value.value == previous + 1, values(events)
            previous = event.attr_value.value
    assert len(values(events)) < 200 and feed.losses >= 1


def test_an_attribute_without_events_is_refused_or_polled(burst, intake) -> None:
    _, access = burst
    with pytest.raises(tango.DevFailed) as refused:
        intake.add(attribute_name(access, "quiet"))
    assert refused.value.args[0].reason in NOT_OFFERED
    feed = intake.add(attribute_name(access, "quiet"), poll_period=0.1)
    assert feed.polled and feed.kind is None
    assert values(taken(feed, lambda events: len(values(events)) >= 3, "3 readings"))[:3] == [1.0, 1.0, 1.0]


def test_a_device_that_comes_later_is_subscribed_by_itself(intake) -> None:
    port = free_port()
    name = f"tango://127.0.0.1:{port}/test/nodb/burst/level#dbase=no"
    feed = intake.add(name, now=False)
    (error,) = taken(feed, lambda events: events, "the failure, said once")
    assert error.err and not is_loss(error) and feed.event_id is None
    server = subprocess.Popen([sys.executable, "-c", SERVE_BURST, str(port)], cwd=ROOT)  # forked: unreachable
    try:
        events = taken(feed, lambda events: 0.0 in values(events), "its value once the device is up")
    finally:
        terminate(server.pid)
    assert feed.event_id is not None and not any(e.err for e in events)
