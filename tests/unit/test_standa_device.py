"""The StandaStage device in a DeviceTestContext (its own process) against the 8SMC simulator in a
thread of the test: the stage behaviour every tangolab stage has (homing, moves with Position
events, travel, Stop and Abort, limit switch, stall) and the fault matrix (the link dropped and
offline until back, garbage, a bad CRC)."""

from __future__ import annotations

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.standa.device import STEPS_PER_MM, StandaStage
from simulators import run_in_thread
from simulators.standa import RIGHT_SWITCH, StandaSimulator
from tangolab.scripting import wait_until


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(StandaSimulator(start=3.0, seed=4)) as running:
        yield running


@pytest.fixture(scope="module")
def stage(simulator):
    properties = {"Url": simulator.url, "PollPeriod": 0.2, "Timeout": 0.5, "MoveTimeMargin": 5.0}
    with DeviceTestContext(StandaStage, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="stage ON")
        yield proxy


@pytest.fixture(autouse=True)
def healthy(simulator, stage):
    simulator.simulator.clear()
    wait_until(lambda: stage.state() in (tango.DevState.ON, tango.DevState.FAULT), 30, what="stage settled")
    yield
    simulator.simulator.clear()


def moves_sent(simulator) -> list[bytes]:
    return [frame for frame in simulator.simulator.received if frame[:4] in (b"move", b"movr")]


def test_1_connects_unhomed_with_the_stages_travel(stage):
    assert stage.read_attribute("Homed").value is False
    assert stage.read_attribute("Position").value == 0.0  # the counter starts at 0 where the stage is
    assert "Not homed" in stage.status()
    stage.write_attribute("Velocity", 10.0)  # mm/s: 4000 steps/s
    stage.write_attribute("Acceleration", 50.0)
    assert stage.read_attribute("Velocity").value == pytest.approx(10.0)
    assert stage.get_attribute_config("Position").unit == "mm"


def test_2_a_move_before_homing_is_refused_and_nothing_is_sent(stage, simulator):
    with pytest.raises(tango.DevFailed) as failure:
        stage.write_attribute("Position", 5.0)
    assert failure.value.args[0].reason == "NotHomed"
    assert not moves_sent(simulator)


def test_3_home_finds_home_and_zeroes_there(stage, simulator):
    stage.command_inout("Home")
    assert stage.state() == tango.DevState.MOVING
    wait_until(lambda: stage.read_attribute("Homed").value, 30, what="homed")
    wait_until(lambda: stage.state() == tango.DevState.ON, 30, what="ON after homing")
    assert stage.read_attribute("Position").value == 0.0
    assert list(stage.read_attribute("Limit_switches").value) == [True, False, False]
    assert b"zero" in simulator.simulator.received


def test_4_a_move_sends_position_events_to_completion(stage):
    positions: list[float] = []
    subscription = stage.subscribe_event(
        "Position", tango.EventType.CHANGE_EVENT,
        lambda event: positions.append(event.attr_value.value) if not event.err else None,
    )
    try:
        stage.write_attribute("Position", 7.3456)  # about 0.8 s at 10 mm/s
        assert stage.state() == tango.DevState.MOVING
        wait_until(lambda: stage.state() == tango.DevState.ON, 30, what="settled")
        wait_until(lambda: positions and positions[-1] == pytest.approx(7.3456, abs=1 / 256 / STEPS_PER_MM),
                   10, what="final event")
    finally:
        stage.unsubscribe_event(subscription)
    assert len([p for p in positions if 0.0 < p < 7.3]) >= 5, positions


def test_5_a_target_beyond_the_travel_is_refused_by_position_limits_and_nothing_moves(stage, simulator):
    sent = len(moves_sent(simulator))
    with pytest.raises(tango.DevFailed) as failure:
        stage.write_attribute("Position", 26.0)
    assert failure.value.args[0].reason == "API_WAttrOutsideLimit"  # beyond Position's min/max: the travel
    config = stage.get_attribute_config("Position")
    assert (float(config.min_value), float(config.max_value)) == (0.0, 25.0)
    assert len(moves_sent(simulator)) == sent


@pytest.mark.parametrize(("command", "letters"), [("Stop", b"sstp"), ("Abort", b"stop")])
def test_6_stop_decelerates_and_abort_halts_mid_move(stage, simulator, command, letters):
    start = stage.read_attribute("Position").value
    target = 24.0 if start < 12.0 else 0.5  # the far end, from wherever the stage is
    stage.write_attribute("Position", target)
    wait_until(lambda: abs(stage.read_attribute("Position").value - start) > 3.0, 30, what="under way")
    stage.command_inout(command)
    assert letters in simulator.simulator.received
    wait_until(lambda: stage.state() == tango.DevState.ON, 10, what="stopped")
    assert abs(stage.read_attribute("Position").value - start) > 3.0
    assert abs(stage.read_attribute("Position").value - target) > 1.0
    assert simulator.simulator.mode == "idle"


def test_7_a_stall_is_fault_with_the_reason_until_the_next_move(stage, simulator):
    simulator.simulator.stalled = True
    stage.write_attribute("Position", 2.0)
    wait_until(lambda: stage.state() == tango.DevState.FAULT, 30, what="FAULT on the stall")
    assert "position control error" in stage.status() and "next move or Home" in stage.status()
    simulator.simulator.clear()
    stage.write_attribute("Position", 2.0)
    wait_until(lambda: stage.state() == tango.DevState.ON, 30, what="ON after the next move")


def test_8_on_a_limit_switch_the_stage_is_alarm_saying_which(stage, simulator):
    with simulator.simulator.lock:
        simulator.simulator.x = RIGHT_SWITCH  # pushed there by hand
    wait_until(lambda: stage.state() == tango.DevState.ALARM, 30, what="ALARM on the switch")
    assert "upper limit" in stage.status()
    assert list(stage.read_attribute("Limit_switches").value) == [False, True, False]
    stage.write_attribute("Position", 20.0)
    wait_until(lambda: stage.state() == tango.DevState.ON, 30, what="off the switch")


@pytest.mark.parametrize(
    ("fault", "says"),
    [("offline", "LinkError"), ("garbage", "begins no XIMC message"), ("checksum", "bad CRC")],
)
def test_9_a_fault_is_fault_with_the_reason_then_the_stage_recovers_alone(stage, simulator, fault, says):
    instrument = simulator.simulator
    if fault == "offline":  # the connection dropped, and refused until the instrument is back
        instrument.set_offline(True)
    elif fault == "garbage":
        instrument.garbage = True
    else:
        instrument.faults.add(fault)
    wait_until(lambda: stage.state() == tango.DevState.FAULT, 30, what=f"FAULT on {fault}")
    wait_until(lambda: says in stage.status(), 10, what=f"{says!r} in the status")
    assert stage.read_attribute("Position").quality == tango.AttrQuality.ATTR_INVALID
    instrument.clear()
    wait_until(lambda: stage.state() == tango.DevState.ON, 30, what=f"ON again after {fault}")
    assert stage.read_attribute("Position").quality == tango.AttrQuality.ATTR_VALID
