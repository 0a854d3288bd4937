"""The spy against a small device: every event as a record, unwatchable attributes said, losses said."""

from __future__ import annotations

import pytest
from tango.test_context import DeviceTestContext

from tangolab.scripting import wait_until
from tangolab.spy import Spy

from .burst_device import Burst


@pytest.fixture(scope="module")
def burst():
    with DeviceTestContext(Burst, process=True, timeout=30) as proxy:
        yield proxy


def collect(spy: Spy, until, what: str) -> list[dict]:
    seen: list[dict] = []

    def done():
        seen.extend(spy.poll())
        return until(seen)

    wait_until(done, 20, interval=0.05, what=what)
    return seen


def heard_live(spy: Spy, trigger, attribute: str) -> None:
    """Push `attribute` until the spy hears it live, then drop what it heard. Events pushed before a
    new subscription reaches the device's ZMQ publisher are lost (ZMQ's late joiner), and the spy's
    subscriptions travel in order: a live event of the newest means all are in place."""
    spy.poll()  # the values read at subscription
    wait_until(lambda: trigger() or any(r["attribute"] == attribute for r in spy.poll()), 20, interval=0.2,
               what=f"a live {attribute} event")


def test_spy_reports_every_event_with_state_and_what_it_cannot_watch(burst):
    spy = Spy(devices=[burst.name()], queue_size=1000)
    try:
        started = spy.start()
        assert {"counter", "level", "State"} <= {s.attribute for s in spy.subscriptions}
        unwatched = [r for r in started if r["kind"] == "unwatched"]
        assert unwatched and "quiet" in unwatched[0]["attributes"] and "no change events" in unwatched[0]["reason"]
        assert spy.subscriptions[-1].attribute == "State"  # the newest subscription
        heard_live(spy, lambda: burst.SetState("ON"), "State")
        first = burst.counter
        burst.Burst(50)
        burst.SetState("ALARM")
        records = collect(
            spy, lambda seen: any(r["attribute"] == "State" and r["value"] == "ALARM" for r in seen)
            and any(r["attribute"] == "counter" and r["value"] == first + 50 for r in seen), "the burst and ALARM",
        )
        counted = [r["value"] for r in records if r["attribute"] == "counter" and r["kind"] == "event"]
        assert counted[-50:] == list(range(first + 1, first + 51))  # none lost, in order
        assert not [r for r in records if r["kind"] == "lost"]
        event = next(r for r in records if r["attribute"] == "counter")
        assert set(event) == {"kind", "time", "device", "attribute", "value", "quality", "error"}
        assert event["quality"] == "VALID" and event["error"] is None
    finally:
        burst.SetState("ON")
        spy.stop()


def test_a_flood_faster_than_the_spy_drains_is_reported_as_lost(burst):
    spy = Spy(devices=[burst.name()], pattern="counter", queue_size=5)
    try:
        spy.start()
        heard_live(spy, lambda: burst.Burst(1), "counter")
        burst.Burst(1)  # its event is the last before the flood: every earlier one is taken with it
        first = burst.counter
        collect(spy, lambda seen: any(r.get("value") == first for r in seen), "the counter's latest event")
        burst.Burst(200)  # the spy takes nothing while they arrive: its queue of 5 overflows
        records = collect(spy, lambda seen: any(r.get("value") == first + 200 for r in seen), "the burst's end")
        lost = [r for r in records if r["kind"] == "lost"]
        assert lost and lost[0]["attribute"] == "counter" and "dropped" in lost[0]["lost"]
        previous = first
        for record in records:  # every gap in the counter is preceded by a line that says so
            if record["kind"] == "lost":
                previous = None
            elif record["kind"] == "event":
                assert previous is None or record["value"] == previous + 1, records
                previous = record["value"]
        assert len([r for r in records if r["kind"] == "event"]) < 200
    finally:
        spy.stop()
