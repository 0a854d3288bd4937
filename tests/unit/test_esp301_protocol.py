"""The ESP301 simulator speaks the controller's language byte for byte: commands `<axis><CMD><args>`
ending in CR, several per line separated by `;`, answers in one line ending in CR LF, and errors
told only when the error buffer is read (`TB?`, `TE?`)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from device_servers.core.framing import Lines
from simulators import run_in_thread
from simulators.esp301 import Esp301Simulator
from tests.wire import Wire


@pytest.fixture
def esp() -> Iterator[tuple[Wire, Esp301Simulator]]:
    """The controller with its clock held (speed 0): time passes only when a test steps it."""
    with run_in_thread(Esp301Simulator(seed=1, speed=0.0)) as running, Wire(running.port, Lines(b"\r\n")) as wire:
        yield wire, running.simulator


def settle(wire: Wire, simulator: Esp301Simulator, seconds: float) -> None:
    """Let `seconds` of simulated time pass once what was sent has been handled."""
    wire.ask(b"VE?\r")
    with simulator.lock:
        for _ in range(int(seconds / 0.005)):
            simulator.step(0.005)


# -- the manual's own exchanges ------------------------------------------------------------------

def test_manual_examples_move_ask_position_and_read_the_error_buffer(esp):
    wire, simulator = esp
    wire.send(b"1PA12.5\r")  # a command gets no answer
    reply = wire.ask(b"TB?\r")
    assert reply.startswith(b"0, ") and reply.endswith(b", NO ERROR DETECTED\r\n")
    settle(wire, simulator, 5)
    assert wire.ask(b"1TP?\r") == b"12.50000\r\n"
    assert wire.ask(b"2TP?\r") == b"0.00000\r\n"


def test_the_error_buffer_reads_like_the_manuals_example(esp):
    wire, simulator = esp
    simulator.speed = 0.0  # its clock stands still: on a loaded machine a millisecond passed before TB?
    simulator.clock_ms = 451322
    assert wire.ask(b"TB?\r") == b"0, 451322, NO ERROR DETECTED\r\n"


def test_errors_are_told_only_when_asked_oldest_first(esp):
    wire, _ = esp
    wire.send(b"1XX\r")  # no such command: silence on the wire
    wire.send(b"4PA1\r")  # no axis 4
    wire.send(b"PA1\r")  # no axis at all
    assert wire.ask(b"TE?\r") == b"6\r\n"
    assert wire.ask(b"TB?\r").endswith(b", AXIS NUMBER OUT OF RANGE\r\n")
    assert wire.ask(b"TB?\r").startswith(b"37, ")
    assert wire.ask(b"TE?\r") == b"0\r\n"


def test_axis_errors_carry_the_axis_in_the_hundreds(esp):
    wire, _ = esp
    wire.send(b"1PA30\r")  # beyond the right software limit SR (25 mm)
    assert wire.ask(b"TB?\r").endswith(b", POSITIVE SOFTWARE LIMIT DETECTED\r\n")
    wire.send(b"2VA50\r")  # beyond VU
    assert wire.ask(b"TB?\r").startswith(b"210, ")
    wire.send(b"3MF\r")
    wire.send(b"3PA1\r")
    assert re.fullmatch(rb"313, \d+, MOTOR NOT ENABLED\r\n", wire.ask(b"TB?\r"))


def test_several_commands_in_one_line_answer_in_one_line(esp):
    wire, _ = esp
    reply = wire.ask(b"1VA2.5;1VA?;1AC?;TB?\r")
    assert re.fullmatch(rb"2\.50000,50\.00000,0, \d+, NO ERROR DETECTED\r\n", reply)
    assert wire.ask(b"1sn?; 1 md?\r") == b"2,1\r\n"  # case and spaces do not matter


def test_identity_and_version(esp):
    wire, _ = esp
    assert wire.ask(b"VE?\r") == b"ESP301 Version 3.0.1 6/1/2010\r\n"
    assert wire.ask(b"1ID?\r") == b"UTS50CC.1, B10231\r\n"


#: Every command alone; one that answers nothing is followed by the query that shows it took.
EVERY_COMMAND_ALONE = [
    (b"1SN?\r", b"2\r\n"),
    (b"1SL-20\r", None),
    (b"1SL?\r", b"-20.00000\r\n"),
    (b"1VU?\r", b"10.00000\r\n"),
    (b"1AU?\r", b"100.00000\r\n"),
    (b"1AE?\r", b"200.00000\r\n"),
    (b"1VA2.5\r", None),
    (b"1VA?\r", b"2.50000\r\n"),
    (b"1AC20\r", None),
    (b"1AC?\r", b"20.00000\r\n"),
    (b"1AG25\r", None),
    (b"1AG?\r", b"25.00000\r\n"),
    (b"1KP1200\r", None),
    (b"1KP?\r", b"1200.00000\r\n"),
    (b"1KI50\r", None),
    (b"1KI?\r", b"50.00000\r\n"),
    (b"1KD3000\r", None),
    (b"1KD?\r", b"3000.00000\r\n"),
    (b"1OM2\r", None),
    (b"1OM?\r", b"2.00000\r\n"),
    (b"PH\r", b"00000000H, 07H\r\n"),  # every axis on its home switch, no limit switch
    (b"1PR1.5\r", None),
    (b"1DP?\r", b"1.50000\r\n"),  # where axis 1 is going
    (b"1TV\r", b"0.00000\r\n"),  # not moving yet: the clock is held
    (b"TS\r", b"y\r\n"),  # 0x79: bit 6, motors 1-3 on (bits 3-5), axis 1 moving (bit 0)
    (b"TE?\r", b"0\r\n"),
]


def test_every_command_alone(esp):
    wire, _ = esp
    wire.converse(EVERY_COMMAND_ALONE)


# -- motion ---------------------------------------------------------------------------------------

def test_a_move_is_not_done_until_it_arrives_and_stop_decelerates(esp):
    wire, simulator = esp
    wire.send(b"1PA20\r")
    settle(wire, simulator, 0.5)
    assert wire.ask(b"1MD?\r") == b"0\r\n"
    wire.send(b"1ST\r")
    settle(wire, simulator, 0.5)
    assert wire.ask(b"1MD?\r") == b"1\r\n"
    assert 2.0 < float(wire.ask(b"1TP?\r")) < 3.0  # 5 mm/s for 0.5 s, then 0.1 s of braking


def test_abort_stops_every_axis_and_switches_the_motors_off(esp):
    wire, simulator = esp
    wire.send(b"1PA10;2PA-10\r")
    settle(wire, simulator, 0.5)
    wire.send(b"AB\r")
    assert wire.ask(b"MD?;1MO?;2MO?;3MO?\r") == b"1,0,0,0\r\n"
    wire.send(b"1MO\r")
    assert wire.ask(b"1MO?;TB?\r").startswith(b"1,0, ")


def test_homing_to_the_home_switch_makes_it_zero(esp):
    wire, simulator = esp
    wire.send(b"1PA5\r")
    settle(wire, simulator, 3)
    wire.send(b"1DH10\r")  # the counter now says 10 where the stage is
    assert wire.ask(b"1TP\r") == b"10.00000\r\n"
    wire.send(b"1OR2\r")
    wire.send(b"1PA3\r")
    assert wire.ask(b"TB?\r").endswith(b"COMMAND NOT ALLOWED DURING HOMING\r\n")
    settle(wire, simulator, 5)
    assert wire.ask(b"1TP;1MD?;PH\r") == b"0.00000,1,00000000H, 07H\r\n"


def test_a_hardware_limit_stops_the_move_with_an_error(esp):
    wire, simulator = esp
    wire.send(b"1SR40\r")  # software limit beyond the switch at 25.5 mm
    wire.send(b"1VA10;1PA35\r")
    settle(wire, simulator, 6)
    assert wire.ask(b"1TP;PH\r") == b"25.50000,00000001H, 06H\r\n"
    assert wire.ask(b"TB?\r").startswith(b"104, ")


def test_gains_are_stored(esp):
    wire, _ = esp
    wire.send(b"2KP1200;2KI50;2KD3000\r")
    assert wire.ask(b"2KP?;2KI?;2KD?\r") == b"1200.00000,50.00000,3000.00000\r\n"


# -- faults --------------------------------------------------------------------------------------

def test_a_stalled_axis_never_finishes_and_reports_moving(esp):
    wire, simulator = esp
    assert simulator.control("stall 2 on") == "OK"
    wire.send(b"2PA1\r")
    settle(wire, simulator, 3)
    assert wire.ask(b"2MD?;2TP\r") == b"0,0.00000\r\n"
    assert simulator.control("stall 2 off") == "OK"
    settle(wire, simulator, 3)
    assert wire.ask(b"2MD?;2TP\r") == b"1,1.00000\r\n"
    assert simulator.control("stall 4 on").startswith("ERROR no axis 4")


def test_faults_the_protocol_has_no_place_for_are_refused(esp):
    _, simulator = esp
    assert simulator.control("address on").startswith("ERROR")
    assert simulator.control("checksum on").startswith("ERROR")
    assert "stall AXIS on|off" in simulator.control("help")
