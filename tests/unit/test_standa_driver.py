"""Standa8SMC against the simulator over a real socket: settings in steps, homing then zero,
moves to the microstep, the controller's refusals and a spoilt line. One controller for the
module: the tests run in order, each from where the one before left the stage."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device_servers.core.errors import GarbledReply, InstrumentError, LinkError, RejectedValue
from device_servers.core.link import SerialLink
from device_servers.standa.driver import Standa8SMC
from device_servers.standa.protocol import REPLY_FRAMING
from simulators import run_in_thread
from simulators.standa import StandaSimulator
from tangolab.scripting import wait_until


@pytest.fixture(scope="module")
def sim() -> Iterator:
    with run_in_thread(StandaSimulator(start=3.0, max_speed=50_000, seed=2)) as running:
        yield running


@pytest.fixture(scope="module")
def stage(sim) -> Iterator[Standa8SMC]:
    driver = Standa8SMC(SerialLink(sim.url, framing=REPLY_FRAMING, write_terminator=b"", timeout=5.0))
    driver.connect()
    yield driver
    driver.close()


def test_configure_reads_the_microstep_mode_and_the_travel(stage, sim):
    assert sim.simulator.received[:2] == [b"geng", b"gedg"]  # the first test of the module
    assert stage.microsteps == 256
    assert (stage.travel.low, stage.travel.high) == (0, 10_000)


def test_profile_settings_are_read_back_in_steps(stage):
    assert stage.set_velocity(4000.5) == 4000.5  # 4000 steps and 128 microsteps a second
    assert stage.set_acceleration(9000) == 9000.0
    assert stage.read_velocity() == 4000.5
    with pytest.raises(RejectedValue, match="allowed 1 to 65535 steps/s"):
        stage.set_acceleration(0)


def test_a_value_the_controller_refuses_is_its_errv(stage):
    before = stage.read_velocity()
    with pytest.raises(InstrumentError, match="errv, a value outside the range"):
        stage.set_velocity(80_000)  # this controller drives at most 50 000 steps/s
    assert stage.read_velocity() == before


def test_homing_ends_with_the_counter_zeroed_and_the_homed_flag(stage, sim):
    stage.set_velocity(4000)
    assert not stage.read_motion().homed
    stage.home()
    assert stage.read_motion().homing
    motion = wait_until(lambda: not (m := stage.read_motion()).moving and m, 20, what="homing's end")
    assert (motion.homed, motion.position, motion.home_switch, motion.error) == (True, 0.0, True, None)
    assert b"zero" in sim.simulator.received


def test_a_move_ends_at_the_target_to_the_microstep(stage):
    stage.set_velocity(8000)
    stage.set_acceleration(20000)
    stage.move_to(2500.25)
    assert stage.read_motion().moving
    wait_until(lambda: not stage.read_motion().moving, 20, what="the move's end")
    assert stage.read_position() == 2500.25
    with pytest.raises(RejectedValue, match="allowed 0 to 10000 steps"):
        stage.move_to(10_001)


def test_a_stall_is_a_motion_error_until_the_next_move(stage, sim):
    sim.simulator.stalled = True
    stage.move_to(3000)
    motion = wait_until(lambda: (m := stage.read_motion()).error and m, 10, what="the stall")
    assert "position control error" in motion.error and not motion.moving
    sim.simulator.clear()
    stage.move_to(100)
    assert stage.read_motion().error is None
    wait_until(lambda: not stage.read_motion().moving, 20, what="at 100 steps")


def test_a_bad_crc_garbage_and_a_cut_reply_are_link_errors(stage, sim):
    sim.simulator.faults.add("checksum")
    with pytest.raises(GarbledReply, match="bad CRC"):
        stage.read_motion()
    sim.simulator.clear()
    stage.link.open()  # what the device's poll loop does after a transport failure
    sim.simulator.garbage = True
    with pytest.raises(GarbledReply):
        stage.read_motion()
    sim.simulator.clear()
    stage.link.open()
    sim.simulator.faults.add("truncate")
    stage.link.timeout = 0.5
    with pytest.raises(LinkError, match="no reply"):
        stage.read_motion()
    sim.simulator.clear()
    stage.link.open()
    assert stage.read_position() == 100.0  # where the stall test left it
