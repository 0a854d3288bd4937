"""`ThorlabsStage` in its own server process against the simulated KDC101, driven by a DeviceProxy
as a lab client would: limit switch, homing, moves with events, Stop, refusals, and faults with
recovery. The tests run in order on one device and one simulator."""

from __future__ import annotations

import time

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.apt.device import ThorlabsStage
from simulators.apt import AptSimulator
from simulators.core import run_in_thread
from tangolab.lab_config import free_port
from tangolab.scripting import wait_until

MM = 25_600
MOVE_ABSOLUTE = bytes.fromhex("53 04")


@pytest.fixture(scope="module")
def sim() -> AptSimulator:
    # switched on 0.4 mm below the forward limit switch: the counter reads 0 there, not homed
    return AptSimulator(start=50.6, seed=1)


@pytest.fixture(scope="module")
def stage(sim):
    # the server process is forked before the simulator's thread starts: a fork beside a running
    # asyncio thread made the new server unreachable in most runs (DeviceTestContext's first ping)
    port = free_port()
    properties = {"Url": f"socket://127.0.0.1:{port}", "PollPeriod": 0.2, "Timeout": 0.5, "MoveTimeMargin": 1.0}
    with (
        DeviceTestContext(ThorlabsStage, properties=properties, process=True, timeout=30) as proxy,
        run_in_thread(sim, port=port),
    ):
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="stage ON")
        yield proxy


def test_it_connects_with_the_stage_settings(stage):
    assert stage.read_attribute("Homed").value is False
    assert stage.read_attribute("Velocity").value == pytest.approx(1.0, rel=1e-5)
    assert stage.read_attribute("Acceleration").value == pytest.approx(5.0, rel=1e-3)
    assert stage.get_attribute_config("Position").unit == "mm"
    assert stage.status() == "Stopped at 0.0000 mm"
    stage.command_inout("Identify")


def test_running_into_a_limit_switch_is_alarm_saying_which(stage):
    stage.write_attribute("Position", 1.0)  # not homed: allowed, as on the cube; the switch is 0.4 mm on
    wait_until(lambda: stage.state() == tango.DevState.ALARM, 20, what="ALARM on the switch")
    assert "upper limit" in stage.status()
    assert list(stage.read_attribute("Limit_switches").value) == [False, True, False]
    assert stage.read_attribute("Position").value == pytest.approx(0.4, abs=1e-3)


def test_home_finds_the_switch_and_the_stage_is_homed(stage, sim):
    sim.speed = 20.0  # 51 mm at the homing speed of 2 mm/s: a second and a half, not half a minute
    try:
        stage.command_inout("Home")
        assert stage.state() == tango.DevState.MOVING
        with pytest.raises(tango.DevFailed, match="MOVING"):
            stage.write_attribute("Position", 5.0)  # no move while homing
        wait_until(lambda: stage.read_attribute("Homed").value, 30, what="homed")
        wait_until(lambda: stage.state() == tango.DevState.ON, 10, what="ON after homing")
    finally:
        sim.speed = 1.0
    assert stage.read_attribute("Position").value == 0.0
    assert list(stage.read_attribute("Limit_switches").value) == [False, False, False]


def test_a_move_sends_position_events_to_completion(stage, sim):
    events: list[tuple[float, float]] = []

    def on_event(event: tango.EventData) -> None:
        if not event.err:
            events.append((time.monotonic(), event.attr_value.value))

    subscription = stage.subscribe_event("Position", tango.EventType.CHANGE_EVENT, on_event)
    try:
        stage.write_attribute("Position", 2.0)  # 2 mm at 1 mm/s, 0.2 s ramps: 2.2 s
        assert stage.state() == tango.DevState.MOVING  # from the moment the move is accepted
        wait_until(lambda: stage.state() == tango.DevState.ON, 20, what="settled")
        wait_until(lambda: events and events[-1][1] == 2.0, 30, what="the final Position event")
    finally:
        stage.unsubscribe_event(subscription)
    assert MOVE_ABSOLUTE + bytes.fromhex("06 00 d0 01 01 00 00 c8 00 00") in sim.received  # 51 200 counts
    during = [when for when, value in events if 0.0 < value < 2.0]
    assert len(during) >= 10, events  # at least ten a second over the two seconds of motion
    assert stage.read_attribute("Position").value == 2.0
    assert stage.status() == "Stopped at 2.0000 mm"


def test_stop_during_a_move_brakes_within_the_profile(stage, sim):
    changes: list[tuple[float, float]] = []
    subscription = stage.subscribe_event(
        "Position", tango.EventType.CHANGE_EVENT,
        lambda event: changes.append((time.monotonic(), event.attr_value.value)) if not event.err else None,
    )
    try:
        stage.write_attribute("Position", 10.0)
        wait_until(lambda: stage.read_attribute("Position").value > 3.0, 20, what="at full speed")
        stage.command_inout("Stop")
        stopped_at = time.monotonic()
        wait_until(lambda: stage.state() == tango.DevState.ON, 10, what="stopped")
    finally:
        stage.unsubscribe_event(subscription)
    final = stage.read_attribute("Position").value
    # from full speed (1 mm/s) at 5 mm/s² the braking takes 0.2 s over v²/2a = 0.1 mm, no more
    assert final - sim.stopped_from / MM == pytest.approx(0.1, abs=0.002)
    assert 3.0 < final < 10.0
    last_change = max(when for when, _ in changes)
    print(f"position last changed {last_change - stopped_at:.3f} s after Stop returned")


def test_a_target_beyond_the_travel_is_refused_with_the_range_and_nothing_moves(stage, sim):
    before = stage.read_attribute("Position").value
    sent = len(sim.received)
    with pytest.raises(tango.DevFailed) as failure:
        stage.write_attribute("Position", 60.0)
    assert failure.value.args[0].reason == "API_WAttrOutsideLimit"  # beyond Position's min/max: the travel
    config = stage.get_attribute_config("Position")
    assert (float(config.min_value), float(config.max_value)) == (0.0, 50.0)
    assert not any(frame.startswith(MOVE_ABSOLUTE) for frame in sim.received[sent:])
    assert stage.state() == tango.DevState.ON
    assert stage.read_attribute("Position").value == before


def test_a_velocity_beyond_the_stage_is_refused(stage):
    with pytest.raises(tango.DevFailed) as failure:
        stage.write_attribute("Velocity", 8.0)
    assert failure.value.args[0].reason == "ValueRejected"
    assert "counts/s" in failure.value.args[0].desc
    stage.write_attribute("Velocity", 2.0)
    assert stage.read_attribute("Velocity").value == pytest.approx(2.0, rel=1e-5)
    stage.write_attribute("Velocity", 1.0)


def test_a_stalled_move_ends_fault_with_the_reason_until_the_next_move(stage, sim):
    sim.control("stall on")
    try:
        stage.write_attribute("Position", 3.0)
        wait_until(lambda: stage.state() == tango.DevState.FAULT, 20, what="FAULT on a stall")
        assert "Motion error" in stage.status() and "could not follow" in stage.status()
    finally:
        sim.control("stall off")
    cleared = time.time()
    wait_until(lambda: stage.read_attribute("Position").time.totime() > cleared + 0.5, 20, what="polls after the stall")
    # a stage does not know it could move again until it tries
    assert stage.state() == tango.DevState.FAULT and stage.status().endswith("the next move or Home clears it")
    stage.write_attribute("Position", 2.5)
    wait_until(lambda: stage.state() == tango.DevState.ON, 20, what="ON after the next move")


def fault_then_recovery(stage, sim, fault_on, fault_off, reason: str) -> None:
    fault_on()
    try:
        wait_until(lambda: stage.state() == tango.DevState.FAULT, 20, what=f"FAULT on {reason}")
        assert reason in stage.status(), stage.status()
        assert stage.read_attribute("Position").quality == tango.AttrQuality.ATTR_INVALID
    finally:
        fault_off()
    wait_until(lambda: stage.state() == tango.DevState.ON, 30, what="ON again")
    assert stage.read_attribute("Position").quality == tango.AttrQuality.ATTR_VALID


def test_a_dropped_link_is_fault_then_recovers(stage, sim):
    fault_then_recovery(stage, sim, lambda: sim.set_offline(True), lambda: sim.set_offline(False), "LinkError")


def test_garbage_is_fault_then_recovers(stage, sim):
    def garbage(on: bool) -> None:
        sim.garbage = on

    fault_then_recovery(stage, sim, lambda: garbage(True), lambda: garbage(False), "Error")


def test_a_truncated_frame_is_fault_then_recovers(stage, sim):
    fault_then_recovery(
        stage, sim, lambda: sim.faults.add("truncate"), lambda: sim.faults.discard("truncate"), "so far"
    )


def test_a_reply_from_another_address_is_fault_then_recovers(stage, sim):
    fault_then_recovery(
        stage, sim, lambda: sim.faults.add("address"), lambda: sim.faults.discard("address"), "from address 0x21"
    )

