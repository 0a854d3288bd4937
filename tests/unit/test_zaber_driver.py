"""ZaberBinaryStage against the simulator over a real socket: two slides on one daisy chain,
replies that end a motion arriving unasked between other replies, errors and faults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device_servers.core.errors import GarbledReply, InstrumentError, LinkError, RejectedValue
from device_servers.core.framing import FixedLength
from device_servers.core.link import SerialLink
from device_servers.zaber.driver import ZaberBinaryStage
from simulators import run_in_thread
from simulators.zaber import ZaberSimulator
from tangolab.scripting import wait_until


@pytest.fixture
def sim() -> Iterator:
    with run_in_thread(ZaberSimulator(devices=2, start=50_000, seed=2)) as running:
        yield running


@pytest.fixture
def link(sim) -> Iterator[SerialLink]:
    link = SerialLink(sim.url, framing=FixedLength(6), write_terminator=b"", timeout=5.0)
    yield link
    link.close()


@pytest.fixture
def slides(link) -> tuple[ZaberBinaryStage, ZaberBinaryStage]:
    first, second = ZaberBinaryStage(link, 1), ZaberBinaryStage(link, 2)
    first.connect()
    second.configure()
    for slide in (first, second):
        slide.set_velocity(300_000)
        slide.set_acceleration(3_000_000)
    return first, second


def test_configure_switches_the_knob_off_and_reads_the_travel(sim, link):
    slide = ZaberBinaryStage(link, 1)
    slide.connect()
    assert sim.simulator.received[:3] == [
        bytes.fromhex("01 35 28 00 00 00"),  # Return Setting: device mode
        bytes.fromhex("01 28 08 00 00 00"),  # Set Device Mode: knob off
        bytes.fromhex("01 35 2c 00 00 00"),  # Return Setting: maximum position
    ]
    assert (slide.travel.low, slide.travel.high) == (0, 672_255)


def test_profile_settings_read_back_in_the_devices_own_steps(slides):
    first, _ = slides
    assert first.set_velocity(100_000) == pytest.approx(10667 * 9.375)
    assert first.read_velocity() == pytest.approx(10667 * 9.375)
    assert first.set_acceleration(1_000_000) == 89 * 11250.0
    with pytest.raises(RejectedValue, match="allowed 9.375 to 307191 microsteps/s"):
        first.set_velocity(0)


def test_each_slide_hears_the_end_of_its_own_move_while_the_other_is_polled(slides):
    first, second = slides
    ends: dict[str, list[int]] = {"first": [], "second": []}
    first.on_motion_end = ends["first"].append
    second.on_motion_end = ends["second"].append
    first.move_to(400_000)
    second.move_to(10_000)
    assert first.read_motion().moving
    wait_until(lambda: not (first.read_motion().moving or second.read_motion().moving), 20, what="both still")
    assert ends == {"first": [400_000], "second": [10_000]}
    assert (first.read_position(), second.read_position()) == (400_000, 10_000)


def test_homing_sets_the_home_status_and_the_home_switch(slides):
    first, _ = slides
    assert not first.read_motion().homed
    first.home()
    assert first.read_motion().homing
    motion = wait_until(lambda: (m := first.read_motion()).homed and m, 20, what="homed")
    assert (motion.position, motion.home_switch, motion.moving) == (0, True, False)


def test_stop_ends_a_move_and_reports_where(link, slides):
    first, _ = slides
    ends: list[int] = []
    first.on_motion_end = ends.append
    first.set_velocity(50_000)
    first.move_to(600_000)
    wait_until(lambda: first.read_position() > 100_000, 20, what="under way")
    first.stop(immediate=False)
    wait_until(lambda: link.route_waiting() or ends, 5, what="the stop's reply")  # read what came unasked
    assert ends == [first.read_position()]
    assert 100_000 < ends[0] < 600_000


def test_a_target_outside_the_travel_is_refused_before_anything_is_sent(sim, slides):
    first, _ = slides
    sent = len(sim.simulator.received)
    with pytest.raises(RejectedValue, match="allowed 0 to 672255 microsteps"):
        first.move_to(700_000)
    assert len(sim.simulator.received) == sent


def test_a_move_the_device_refuses_raises_its_error_code(slides):
    first, second = slides
    second.set_max_position(100_000)  # what another program could have done
    second.travel = first.travel
    with pytest.raises(InstrumentError, match="device 2 refused to move to 200000: error 20, target position out of range"):
        second.move_to(200_000)
    assert not second.read_motion().moving


def test_a_reply_from_a_device_not_on_the_line_is_an_error_that_names_it(sim, slides):
    first, _ = slides
    sim.simulator.faults.add("address")
    with pytest.raises(GarbledReply, match="came from device 3, which is not on this line"):
        first.read_position()
    sim.simulator.clear()
    first.link.open()  # what the device's poll loop does after a transport failure
    assert first.read_position() == 50_000


def test_garbage_and_a_truncated_reply_are_link_errors(sim, link, slides):
    first, _ = slides
    sim.simulator.garbage = True
    with pytest.raises(GarbledReply):
        first.read_position()
    sim.simulator.clear()
    link.open()  # what the device's poll loop does after an error
    sim.simulator.faults.add("truncate")
    link.timeout = 0.5  # the fixture's 5 s leave room for a loaded machine
    with pytest.raises(LinkError, match="no reply"):
        first.read_position()
    assert not link.is_open
    sim.simulator.clear()
    link.open()
    assert first.read_position() == 50_000


def test_a_dropped_line_is_a_link_error_and_reopening_recovers(sim, link, slides):
    first, _ = slides
    sim.simulator.drop()
    with pytest.raises(LinkError):
        first.read_position()
        first.read_position()
    link.open()
    assert first.read_position() == 50_000
