"""The ESP301 driver against the simulator over a real socket: the bytes it sends, every command
checked with TB? in the same line, errors in the controller's words, values refused before
sending, and errors of one axis kept for it when another axis reads them."""

from __future__ import annotations

import pytest

from device_servers.core.errors import GarbledReply, InstrumentError, LinkError, RejectedValue
from device_servers.core.framing import Lines
from device_servers.core.link import SerialLink
from device_servers.esp301.driver import Esp301
from simulators import run_in_thread
from simulators.esp301 import Esp301Simulator
from tangolab.scripting import wait_until


@pytest.fixture
def rig():
    with run_in_thread(Esp301Simulator(seed=2)) as running:
        link = SerialLink(running.url, framing=Lines(b"\r\n"), write_terminator=b"\r", timeout=2.0)
        link.open()
        try:
            controller = Esp301.on(link)
            for number in (1, 2):
                controller.axis(number).configure()
            yield controller, running.simulator
        finally:
            link.close()


def test_a_move_is_one_line_with_its_check(rig):
    controller, simulator = rig
    controller.axis(1).move_to(12.5)
    assert simulator.received[-1] == "1PA12.5;TB?"
    wait_until(lambda: not controller.axis(1).read_motion().moving, 10, what="arrived")
    assert controller.axis(1).read_motion().position == 12.5
    assert simulator.received[-1] == "1TP?;TB?;1MD?;TB?;1MO?;TB?;PH;TB?"


def test_configure_reads_the_travel_and_maxima_and_switches_the_motor_on(rig):
    controller, simulator = rig
    arm = controller.axis(2)
    assert (arm.travel.low, arm.travel.high, arm.max_velocity) == (-25.0, 25.0, 10.0)
    assert arm.model == "UTS50CC.2,B10232"
    assert simulator.axes[2].motor_on and arm.motor_on
    assert controller.identify() == "ESP301 Version 3.0.1 6/1/2010"


def test_values_out_of_range_are_refused_before_sending(rig):
    controller, simulator = rig
    sent = len(simulator.received)
    with pytest.raises(RejectedValue, match="allowed -25 to 25 mm"):
        controller.axis(1).move_to(30.0)
    with pytest.raises(RejectedValue, match="allowed 0 to 10 mm/s"):
        controller.axis(1).set_velocity(12.0)
    with pytest.raises(RejectedValue, match="axes 1, 2 and 3"):
        controller.axis(4)
    assert len(simulator.received) == sent


def test_settings_are_read_back(rig):
    controller, simulator = rig
    assert controller.axis(1).set_velocity(2.5) == 2.5
    assert controller.axis(1).set_acceleration(20.0) == 20.0
    assert simulator.received[-1] == "1AC20;TB?;1AG20;TB?;1AC?;TB?"
    assert simulator.axes[1].deceleration == 20.0


def test_a_refused_command_raises_in_the_controllers_words(rig):
    controller, _ = rig
    controller.axis(1).set_motor(False)
    with pytest.raises(InstrumentError, match=r"refused 1PA1: axis 1: MOTOR NOT ENABLED \(error 113\)"):
        controller.axis(1).move_to(1.0)


def test_an_immediate_stop_stops_its_own_axis_only(rig):
    controller, simulator = rig
    controller.axis(1).move_to(20.0)
    controller.axis(2).move_to(-20.0)
    controller.axis(1).stop(immediate=True)
    assert simulator.received[-1] == "1ST;TB?"
    wait_until(lambda: not controller.axis(1).read_motion().moving, 10, what="axis 1 stopped")
    assert controller.axis(2).read_motion().moving and controller.axis(1).motor_on


def test_the_controllers_abort_stops_every_axis_and_their_motors_go_off(rig):
    controller, simulator = rig
    controller.axis(1).move_to(20.0)
    controller.axis(2).move_to(-20.0)
    controller.abort()
    assert simulator.received[-1] == "AB;TB?"
    for number in (1, 2):
        motion = controller.axis(number).read_motion()
        assert not motion.moving and not controller.axis(number).motor_on


def test_an_axis_error_read_by_another_axis_is_kept_for_its_axis(rig):
    controller, simulator = rig
    with simulator.lock:
        simulator.axes[2].right_limit = 40.0  # let axis 2 run into its limit switch
    controller.axis(2).configure()  # reads the new travel
    controller.axis(2).set_velocity(10.0)
    controller.axis(2).move_to(30.0)
    wait_until(lambda: simulator.errors, 10, what="axis 2 on its limit switch")
    assert controller.axis(1).read_motion().error is None  # axis 1 reads the buffer: not its error
    motion = controller.axis(2).read_motion()
    assert motion.error == "axis 2: POSITIVE HARDWARE LIMIT DETECTED (error 204)"
    assert motion.upper_limit and not motion.moving
    controller.axis(2).move_to(0.0)  # a new move clears it
    assert controller.axis(2).read_motion().error is None


def test_homing_is_reported_until_the_switch_is_found(rig):
    controller, _ = rig
    arm = controller.axis(1)
    arm.move_to(3.0)
    wait_until(lambda: not arm.read_motion().moving, 10, what="at 3 mm")
    arm.home()
    assert arm.read_motion().homing
    motion = wait_until(lambda: (m := arm.read_motion()) and not m.homing and m, 10, what="homed")
    assert motion.homed and motion.home_switch and motion.position == 0.0


def test_garbage_is_a_garbled_reply_and_silence_a_link_error(rig):
    controller, simulator = rig
    simulator.garbage = True
    with pytest.raises(GarbledReply):
        controller.axis(1).read_motion()
    simulator.garbage = False
    simulator.delay = 3.0
    with pytest.raises(LinkError, match="no reply"):  # within the link's 2 s deadline
        controller.axis(1).read_motion()
