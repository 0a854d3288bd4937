"""The APT driver against the simulated KDC101 over a real socket: the bytes it sends, what it
reads back, the frames that arrive unasked, and the errors it raises."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device_servers.apt.driver import APT_FRAMING, AptStage
from device_servers.core.errors import GarbledReply, LinkError, RejectedValue
from device_servers.core.link import SerialLink
from simulators.apt import AptSimulator
from simulators.core import run_in_thread
from tangolab.scripting import wait_until

MM = 25_600


@pytest.fixture
def sim() -> AptSimulator:
    return AptSimulator(start=1.0, seed=1, speed=4.0)


@pytest.fixture
def stage(sim: AptSimulator) -> Iterator[AptStage]:
    with run_in_thread(sim) as running:
        link = SerialLink(running.url, framing=APT_FRAMING, timeout=5.0)
        link.open()
        driver = AptStage(link)
        driver.ended = []
        driver.on_motion_end = lambda name, motion: driver.ended.append((name, motion))
        yield driver
        link.close()


def test_configure_sends_no_flash_programming_then_enables_the_channel(stage, sim):
    stage.configure()
    assert stage.is_enabled()  # answered after the two that get no reply, in order
    assert sim.received[:2] == [bytes.fromhex("18 00 00 00 50 01"), bytes.fromhex("10 02 01 01 50 01")]
    info = stage.read_info()
    assert (info.model, info.channels) == ("KDC101", 1)


def test_a_move_is_the_reference_frame_and_ends_with_move_completed_unasked(stage, sim):
    stage.move_to(1 * MM)
    assert stage.read_motion().moving
    assert bytes.fromhex("53 04 06 00 d0 01 01 00 00 64 00 00") in sim.received
    wait_until(lambda: stage.link.route_waiting() or stage.ended, 10, what="MOVE_COMPLETED")
    name, final = stage.ended[-1]
    assert name == "MOT_MOVE_COMPLETED" and final.position == 1 * MM and not final.moving


def test_every_status_read_says_the_host_is_alive(stage, sim):
    for _ in range(60):  # more than the 50 the cube sends without one
        stage.read_motion()
    wait_until(lambda: sim.received[-1] == bytes.fromhex("92 04 00 00 50 01"), 5, what="MOT_ACK_DCSTATUSUPDATE")
    assert sim.received[-2] == bytes.fromhex("90 04 01 00 50 01")


def test_homing_reports_move_homed_even_inside_another_exchange(stage):
    stage.home()
    assert stage.read_motion().homing
    wait_until(lambda: stage.read_motion().homed, 10, what="homed")  # MOVE_HOMED routed during a read
    assert ("MOT_MOVE_HOMED", None) in stage.ended


def test_stop_profiled_and_immediate(stage, sim):
    stage.move_to(10 * MM)
    wait_until(lambda: stage.read_motion().position > 0.3 * MM, 10, what="under way")
    stage.stop(immediate=False)
    wait_until(lambda: sim.received[-1] == bytes.fromhex("65 04 01 02 50 01"), 5, what="profiled stop sent")
    wait_until(lambda: not stage.read_motion().moving, 10, what="stopped")
    assert stage.ended[-1][0] == "MOT_MOVE_STOPPED"
    stage.stop(immediate=True)
    wait_until(lambda: sim.received[-1] == bytes.fromhex("65 04 01 01 50 01"), 5, what="immediate stop sent")


def test_velocity_and_acceleration_are_read_back_in_counts(stage):
    assert stage.read_velocity() == pytest.approx(1 * MM, rel=1e-5)
    assert stage.read_acceleration() == pytest.approx(5 * MM, rel=1e-3)
    assert stage.set_velocity(2.5 * MM) == pytest.approx(2.5 * MM, rel=1e-5)
    assert stage.set_acceleration(2 * MM) == pytest.approx(2 * MM, rel=1e-3)
    assert stage.read_velocity() == pytest.approx(2.5 * MM, rel=1e-5)


def test_values_beyond_the_stage_are_refused_before_anything_is_sent(stage, sim):
    before = len(sim.received)
    with pytest.raises(RejectedValue, match="0 to 1.28e\\+06 counts"):
        stage.move_to(60 * MM)
    with pytest.raises(RejectedValue, match="velocity"):
        stage.set_velocity(6 * MM)
    with pytest.raises(RejectedValue, match="acceleration"):
        stage.set_acceleration(0)
    assert len(sim.received) == before


def test_a_reply_from_another_address_is_garbled(stage, sim):
    sim.faults.add("address")
    with pytest.raises(GarbledReply, match="from address 0x21"):
        stage.read_motion()


def test_a_truncated_reply_is_a_lost_link(stage, sim):
    sim.faults.add("truncate")
    stage.link.timeout = 0.5  # the fixture's 5 s leave room for a loaded machine
    with pytest.raises(LinkError, match="got .* so far"):
        stage.read_motion()


def test_garbage_is_not_taken_for_a_frame(stage, sim):
    sim.garbage = True
    with pytest.raises(LinkError):  # a GarbledReply, or a frame never complete
        stage.read_motion()
