"""The CcdHead device against small real source devices: a Peltier channel, a gauge and a flow pen.

The sources (`ccd_sources.py`) are PyTango devices of the test's own, in one server process:
writing one of their attributes pushes a change event, as the lab's devices do when a value
moves. The heads run in a second server process and watch them by their full names
(`tango://host:port/...#dbase=no`), each test with its own head and its own three sources.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import tango
from tango import AttrQuality, DevState

from device_servers.ccd.health import Health
from tangolab.lab_config import free_port
from tangolab.scripting import wait_until

from .ccd_sources import HOST

ROOT = Path(__file__).resolve().parents[2]
HEADS = 8  # one head and its sources per test below


def head_properties(port: int, n: int, **extra: object) -> dict[str, object]:
    """A head watching sources number `n` of the source server on `port`."""
    def trl(device: str, attr: str) -> str:
        return f"tango://{HOST}:{port}/test/{device}/{n}/{attr}#dbase=no"

    return {
        "TemperatureAttribute": trl("tec", "objectTemperature"),
        "TargetAttribute": trl("tec", "targetTemperature"),
        "PeltierStateAttribute": trl("tec", "State"),
        "PressureAttribute": trl("gauge", "pressure"),
        "FlowAttribute": trl("flow", "pen1"),
        **extra,
    }


@contextmanager
def served(kind: str, port: int, what: object) -> Iterator[None]:
    """`ccd_sources.py` serving sources or heads on `port` in a process of its own, until the end."""
    argument = json.dumps(what) if kind == "heads" else str(what)
    first = f"tango://{HOST}:{port}/" + (next(iter(what)) if kind == "heads" else "test/flow/1") + "#dbase=no"
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.unit.ccd_sources", kind, str(port), argument],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )
    try:
        wait_until(lambda: server.poll() is None and tango.DeviceProxy(first).ping(), 60,
                   what=f"the {kind} server answering on port {port} (exit status {server.poll()})")
        yield
    finally:
        server.stdin.close()  # it ends when its stdin closes
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


class Bench:
    """The source server and the head server of this module."""

    def __init__(self, sources_port: int, heads_port: int) -> None:
        self.sources_port, self.heads_port = sources_port, heads_port

    def source(self, family: str, n: int) -> tango.DeviceProxy:
        return tango.DeviceProxy(f"tango://{HOST}:{self.sources_port}/test/{family}/{n}#dbase=no")

    def head(self, n: int, healthy: bool = True) -> tango.DeviceProxy:
        head = tango.DeviceProxy(f"tango://{HOST}:{self.heads_port}/test/ccd/{n}#dbase=no")
        if healthy:
            wait_until(lambda: head.health == Health.OK, 30, what=f"test/ccd/{n} OK at the start")
        return head


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    sources_port, heads_port = free_port(), free_port()
    heads = {n: head_properties(sources_port, n) for n in range(1, HEADS + 1)}
    heads[6].update(MaxSilence=2.0, CheckPeriod=0.2)
    heads[7].update(
        Interlock=True, InterlockAttribute=f"tango://{HOST}:{sources_port}/test/tec/7/outputStage#dbase=no"
    )
    heads[8].update(TemperatureAttribute="lab/tec/objectTemperature")  # a name too short
    with served("sources", sources_port, HEADS), served("heads", heads_port, {
        f"test/ccd/{n}": properties for n, properties in heads.items()
    }):
        yield Bench(sources_port, heads_port)


def health_is(head: tango.DeviceProxy, health: Health, words: str = "") -> bool:
    return head.health == health and words in head.reason


def test_a_source_server_down_at_start_is_picked_up_when_it_comes() -> None:
    bench = Bench(free_port(), free_port())
    with served("heads", bench.heads_port, {"test/ccd/1": head_properties(bench.sources_port, 1)}):
        head = bench.head(1, healthy=False)
        wait_until(lambda: health_is(head, Health.ERROR, "no coolant flow reading from"), 15, what="no source yet")
        assert head.state() == DevState.ALARM
        with served("sources", bench.sources_port, 1):
            wait_until(lambda: health_is(head, Health.OK), 40, what="OK once the sources are up")
            assert head.flow == pytest.approx(1.2) and head.peltierRunning


def test_flow_below_its_threshold_is_an_error_with_the_reason_and_clears_when_restored(bench: Bench) -> None:
    head, flow = bench.head(1), bench.source("flow", 1)
    assert head.state() == DevState.ON and head.reason == "" and head.status().startswith("OK")
    flow.pen1 = 0.1
    wait_until(lambda: health_is(head, Health.ERROR, "coolant flow below 0.4 l/min"), 10, what="flow ERROR")
    assert "/test/flow/1/pen1" in head.reason and "check the chiller and the hoses" in head.reason
    assert head.state() == DevState.ALARM and head.status() == f"ERROR: {head.reason}"
    assert head.flow == pytest.approx(0.1)
    assert head.read_attribute("health").quality == AttrQuality.ATTR_ALARM
    flow.pen1 = 1.1
    wait_until(lambda: health_is(head, Health.OK), 10, what="OK again once the flow is back")
    assert head.state() == DevState.ON and head.reason == ""


def test_health_and_reason_are_pushed_as_change_and_archive_events(bench: Bench) -> None:
    head, flow = bench.head(1), bench.source("flow", 1)
    received: dict[tuple[str, str], list] = {}
    ids = []
    for name in ("health", "reason"):
        for kind in (tango.EventType.CHANGE_EVENT, tango.EventType.ARCHIVE_EVENT):
            events = received.setdefault((name, str(kind)), [])
            ids.append(head.subscribe_event(name, kind, lambda e, events=events: events.append(e)))
    flows: list[tango.EventData] = []  # the first is the value read at subscription
    ids.append(head.subscribe_event("flow", tango.EventType.CHANGE_EVENT, flows.append))
    try:
        # an event pushed before a subscription reaches the head's ZMQ publisher is lost (ZMQ's late
        # joiner); subscriptions travel in order, so once the newer flow subscription hears a live event
        # the older ones are in place: write harmless flows, alternating, until one is heard
        harmless = itertools.cycle([1.1, 1.2])
        wait_until(lambda: flow.write_attribute("pen1", next(harmless)) or len(flows) > 1, 15, interval=0.2,
                   what="a live flow event from the head")
        flow.pen1 = 0.0
        wait_until(lambda: all(any(not e.err and e.attr_value.value == Health.ERROR for e in events)
                               for (name, _), events in received.items() if name == "health"), 10,
                   what="health ERROR as change and archive events")
        wait_until(lambda: all(any(not e.err and "coolant flow" in e.attr_value.value for e in events)
                               for (name, _), events in received.items() if name == "reason"), 10,
                   what="the reason as change and archive events")
    finally:
        for event_id in ids:
            head.unsubscribe_event(event_id)
        flow.pen1 = 1.2


def test_vacuum_lost_is_an_error(bench: Bench) -> None:
    head, gauge = bench.head(2), bench.source("gauge", 2)
    gauge.pressure = 2e-2
    wait_until(lambda: health_is(head, Health.ERROR, "vacuum lost: pressure above 8.0e-03 mbar"), 10, what="vacuum")
    assert head.pressure == pytest.approx(2e-2)
    gauge.pressure = 5e-7
    wait_until(lambda: health_is(head, Health.OK), 10, what="OK once pumped down")


def test_temperature_off_its_target_is_a_warning_shown_in_the_status_not_an_alarm(bench: Bench) -> None:
    head, tec = bench.head(3), bench.source("tec", 3)
    tec.targetTemperature = -100.0
    wait_until(lambda: health_is(head, Health.WARNING, "temperature more than 2 degC from its target"), 10,
               what="temperature WARNING")
    assert head.state() == DevState.ON and head.status().startswith("WARNING: temperature more than 2 degC")
    assert head.read_attribute("health").quality == AttrQuality.ATTR_WARNING
    assert head.target == pytest.approx(-100.0) and head.temperature == pytest.approx(-90.0)
    tec.objectTemperature = -99.0
    wait_until(lambda: health_is(head, Health.OK), 10, what="OK once at its target")


def test_a_peltier_that_stops_running_is_an_error(bench: Bench) -> None:
    head, tec = bench.head(4), bench.source("tec", 4)
    assert head.peltierRunning
    tec.outputStage = 0  # OFF: the channel leaves RUNNING
    wait_until(lambda: health_is(head, Health.ERROR, "Peltier not running"), 10, what="Peltier stopped")
    assert "/test/tec/4/State" in head.reason and not head.peltierRunning
    tec.outputStage = 3
    wait_until(lambda: health_is(head, Health.OK), 10, what="OK once running again")


def test_an_invalid_value_is_no_value_with_what_its_device_says(bench: Bench) -> None:
    head, gauge = bench.head(5), bench.source("gauge", 5)
    gauge.Invalidate("sensor status SENSOR_ERROR")
    wait_until(lambda: health_is(head, Health.ERROR, "no vacuum reading from"), 10, what="INVALID pressure")
    assert "its value is INVALID" in head.reason and "says: sensor status SENSOR_ERROR" in head.reason
    assert head.read_attribute("pressure").quality == AttrQuality.ATTR_INVALID
    gauge.pressure = 1e-6
    wait_until(lambda: health_is(head, Health.OK), 10, what="OK once the sensor reads again")


def test_a_source_that_goes_silent_is_an_error_after_the_silence_period(bench: Bench) -> None:
    head, flow = bench.head(6), bench.source("flow", 6)  # MaxSilence 2 s
    time.sleep(3.0)  # longer than MaxSilence with no events: a quiet source that reads fresh is not silent
    assert head.health == Health.OK
    flow.Hush()
    wait_until(lambda: health_is(head, Health.ERROR, "pen1 silent for more than 2 s"), 15, what="silence ERROR")
    flow.Speak()
    wait_until(lambda: health_is(head, Health.OK), 10, what="OK once it speaks again")


def test_the_interlock_switches_the_peltier_off_once_and_never_on_again(bench: Bench) -> None:
    head, tec, flow = bench.head(7), bench.source("tec", 7), bench.source("flow", 7)
    assert not head.interlockTripped
    flow.pen1 = 0.2
    wait_until(lambda: head.interlockTripped, 10, what="the interlock tripped")
    for value in (0.1, 0.0, 0.05):  # the flow stays lost: more events, no more writes
        flow.pen1 = value
    wait_until(lambda: health_is(head, Health.ERROR, "Peltier not running"), 10, what="Peltier off")
    assert "interlock switched the Peltier off" in head.reason
    assert list(tec.stageWrites) == ["OFF"]
    flow.pen1 = 1.2
    wait_until(lambda: not head.interlockTripped, 10, what="the interlock armed again once the flow is back")
    time.sleep(1.0)  # nothing may switch it back on by itself, however long we wait
    assert list(tec.stageWrites) == ["OFF"] and tec.state() == DevState.ON
    assert health_is(head, Health.ERROR, "Peltier not running")
    tec.outputStage = 3  # a person switches it on again
    wait_until(lambda: health_is(head, Health.OK), 10, what="OK once switched on by hand")


def test_a_malformed_source_name_is_fault_saying_which(bench: Bench) -> None:
    head = bench.head(8, healthy=False)
    assert head.state() == DevState.FAULT
    assert "'lab/tec/objectTemperature' is not domain/family/member/attribute" in head.status()
