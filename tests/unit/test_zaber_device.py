"""The ZaberStage device in a DeviceTestContext against the simulator over a real socket: a
DeviceProxy client homes, moves and stops the focal-plane slide; faults end FAULT and recover.

The device runs in a process of its own; the simulator in a thread of the test, so the tests
inject faults and see every frame the device sent."""

from __future__ import annotations

import pytest
import tango
from tango.test_context import DeviceTestContext, MultiDeviceTestContext

from device_servers.zaber.device import MICROSTEPS_PER_MM, ZaberStage
from simulators import run_in_thread
from simulators.zaber import ZaberSimulator
from tangolab.scripting import wait_until

START_MM = 100_000 / MICROSTEPS_PER_MM


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(ZaberSimulator(devices=1, start=100_000, seed=4)) as running:
        yield running


@pytest.fixture(scope="module")
def slide(simulator):
    properties = {"Url": simulator.url, "PollPeriod": 0.2, "Timeout": 0.5, "MoveTimeMargin": 5.0}
    with DeviceTestContext(ZaberStage, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="slide ON")
        yield proxy


@pytest.fixture(autouse=True)
def healthy(simulator, slide):
    simulator.simulator.clear()
    wait_until(lambda: slide.state() == tango.DevState.ON, 30, what="slide back ON")
    yield
    simulator.simulator.clear()


def moves_sent(simulator) -> list[bytes]:
    return [frame for frame in simulator.simulator.received if frame[1] in (20, 21)]


def test_1_connects_knob_off_unhomed_with_the_slides_travel(slide, simulator):
    assert bytes.fromhex("01 28 08 00 00 00") in simulator.simulator.received  # knob off
    assert slide.read_attribute("Homed").value is False
    assert slide.read_attribute("Position").value == pytest.approx(START_MM)
    assert "Not homed" in slide.status()
    slide.write_attribute("Velocity", 10.0)  # mm/s: the device takes multiples of 9.375 µsteps/s
    slide.write_attribute("Acceleration", 100.0)
    assert slide.read_attribute("Velocity").value == pytest.approx(10.0, abs=1e-3)


def test_2_a_move_before_homing_is_refused_and_nothing_is_sent(slide, simulator):
    with pytest.raises(tango.DevFailed) as failure:
        slide.write_attribute("Position", 10.0)
    assert failure.value.args[0].reason == "NotHomed"
    assert not moves_sent(simulator)


def test_3_home_finds_the_switch(slide):
    slide.command_inout("Home")
    assert slide.state() == tango.DevState.MOVING
    wait_until(lambda: slide.read_attribute("Homed").value, 30, what="homed")
    wait_until(lambda: slide.state() == tango.DevState.ON, 30, what="ON after homing")
    assert slide.read_attribute("Position").value == 0.0
    assert list(slide.read_attribute("Limit_switches").value) == [True, False, False]


def test_4_a_client_moves_the_slide_with_position_events_to_completion(slide):
    positions: list[float] = []
    subscription = slide.subscribe_event(
        "Position", tango.EventType.CHANGE_EVENT,
        lambda event: positions.append(event.attr_value.value) if not event.err else None,
    )
    try:
        slide.write_attribute("Position", 10.0)  # about 1 s at 10 mm/s
        assert slide.state() == tango.DevState.MOVING
        wait_until(lambda: slide.state() == tango.DevState.ON, 30, what="settled")
        wait_until(lambda: positions and positions[-1] == pytest.approx(10.0, abs=1e-4), 10, what="final event")
    finally:
        slide.unsubscribe_event(subscription)
    assert slide.read_attribute("Position").value == pytest.approx(10.0, abs=1e-4)
    assert len([p for p in positions if 0.0 < p < 10.0]) >= 5, positions


def test_5_a_target_beyond_the_travel_is_refused_with_the_range_and_nothing_moves(slide, simulator):
    before, sent = slide.read_attribute("Position").value, len(moves_sent(simulator))
    with pytest.raises(tango.DevFailed) as failure:
        slide.write_attribute("Position", 40.0)
    assert failure.value.args[0].reason == "API_WAttrOutsideLimit"  # beyond Position's min/max: the travel
    config = slide.get_attribute_config("Position")
    assert (float(config.min_value), float(config.max_value)) == (0.0, pytest.approx(672_255 / MICROSTEPS_PER_MM))
    assert len(moves_sent(simulator)) == sent
    assert slide.state() == tango.DevState.ON
    assert slide.read_attribute("Position").value == before


def test_6_stop_ends_a_move_where_it_is(slide, simulator):
    slide.write_attribute("Position", 30.0)
    wait_until(lambda: slide.read_attribute("Position").value > 12.0, 30, what="under way")
    slide.command_inout("Stop")
    stop = bytes.fromhex("01 17 00 00 00 00")
    wait_until(lambda: stop in simulator.simulator.received, 10, what="the stop frame on the wire")
    wait_until(lambda: slide.state() == tango.DevState.ON, 10, what="stopped")
    stopped = slide.read_attribute("Position").value
    assert 12.0 < stopped < 30.0
    assert simulator.simulator.slides[1].target is None  # the carriage is still, not merely unpolled


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("drop", "LinkError"),
        ("garbage", "GarbledReply"),
        ("truncate", "no reply"),
        ("address", "not on this line"),
    ],
)
def test_7_a_fault_is_fault_with_the_reason_then_the_slide_recovers_alone(slide, simulator, fault, says):
    instrument = simulator.simulator
    if fault == "drop":
        instrument.set_offline(True)
    elif fault == "garbage":
        instrument.garbage = True
    else:
        instrument.faults.add(fault)
    wait_until(lambda: slide.state() == tango.DevState.FAULT, 30, what=f"FAULT on {fault}")
    assert says in slide.status()
    assert slide.read_attribute("Position").quality == tango.AttrQuality.ATTR_INVALID
    instrument.clear()
    wait_until(lambda: slide.state() == tango.DevState.ON, 30, what=f"ON again after {fault}")
    assert slide.read_attribute("Position").quality == tango.AttrQuality.ATTR_VALID


def test_8_two_slides_on_one_daisy_chain_share_one_line_and_each_hears_its_own_replies():
    with run_in_thread(ZaberSimulator(devices=2, start=50_000, seed=5)) as chain:
        common = {"Url": chain.url, "PollPeriod": 0.2, "Timeout": 0.5, "MoveTimeMargin": 5.0}
        devices = [
            {"name": f"lab/zaber/{n}", "properties": {**common, "DeviceNumber": n}} for n in (1, 2)
        ]
        config = [{"class": ZaberStage, "devices": devices}]
        with MultiDeviceTestContext(config, process=True, timeout=30) as context:
            first, second = (tango.DeviceProxy(context.get_device_access(f"lab/zaber/{n}")) for n in (1, 2))
            for slide in (first, second):
                wait_until(lambda s=slide: s.state() == tango.DevState.ON, 30, what="both ON")
                slide.write_attribute("Velocity", 10.0)
                slide.command_inout("Home")
            wait_until(lambda: first.read_attribute("Homed").value and second.read_attribute("Homed").value, 30,
                       what="both homed")
            wait_until(lambda: first.state() == second.state() == tango.DevState.ON, 30, what="both ON")
            first.write_attribute("Position", 8.0)
            second.write_attribute("Position", 3.0)
            wait_until(lambda: first.state() == second.state() == tango.DevState.ON, 30, what="both settled")
            assert first.read_attribute("Position").value == pytest.approx(8.0, abs=1e-4)
            assert second.read_attribute("Position").value == pytest.approx(3.0, abs=1e-4)
            assert len(chain.simulator._clients) == 1  # one serial line (one connection) for the chain
