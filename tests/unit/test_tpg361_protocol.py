"""The Pfeiffer TPG 361 simulator on the wire: bytes sent, bytes received.

The exchanges are those of Pfeiffer's "TPG 361, TPG 362 Mnemonics and Pfeiffer Vacuum Protocol"
(BG 5510 BEN, section 1): a mnemonic ended by CR [LF], answered ACK CR LF or NAK CR LF; then ENQ,
one byte, answered with the data and CR LF.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from device_servers.core.framing import Lines
from device_servers.gauge.tpg361_protocol import TpgRequests
from simulators import run_in_thread
from simulators.tpg361 import Tpg361Simulator
from simulators.vacuum import VacuumSimulator
from tests.wire import Wire

REPLIES = Lines(b"\r\n")


@pytest.fixture
def sim() -> Tpg361Simulator:
    """A gauge at 1.0000E-03 mbar, its reading held there."""
    simulator = Tpg361Simulator(seed=1, pressure=1e-3)
    simulator.freeze("pressure")
    return simulator


@pytest.fixture
def wire(sim: Tpg361Simulator) -> Iterator[Wire]:
    with run_in_thread(sim) as running, Wire(running.port, REPLIES) as connection:
        yield connection


# -- the manual's exchanges ------------------------------------------------------------------------


def test_pressure_request_is_acknowledged_then_enquired(wire):
    assert wire.ask(b"PR1\r\n") == b"\x06\r\n"
    assert wire.ask(b"\x05") == b"0,1.0000E-03\r\n"


def test_a_bad_mnemonic_is_not_acknowledged_and_the_error_word_says_syntax(wire):
    assert wire.ask(b"XYZ\r\n") == b"\x15\r\n"
    assert wire.ask(b"ERR\r\n") == b"\x06\r\n"
    assert wire.ask(b"\x05") == b"0001\r\n"
    assert wire.ask(b"ERR\r\n") == b"\x06\r\n"
    assert wire.ask(b"\x05") == b"0000\r\n", "the error word is cleared when read"


def test_the_single_gauge_has_no_second_gauge(wire):
    assert wire.ask(b"PR2\r\n") == b"\x15\r\n"
    wire.ask(b"ERR\r\n")
    assert wire.ask(b"\x05") == b"0100\r\n"


def test_units_mbar_torr_pascal(wire):
    assert wire.ask(b"UNI,1\r\n") == b"\x06\r\n"
    assert wire.ask(b"\x05") == b"1\r\n"
    wire.ask(b"PR1\r\n")
    assert wire.ask(b"\x05") == b"0,7.5006E-04\r\n"
    wire.ask(b"UNI,2\r\n")
    wire.ask(b"PR1\r\n")
    assert wire.ask(b"\x05") == b"0,1.0000E-01\r\n"
    assert wire.ask(b"UNI,9\r\n") == b"\x15\r\n"
    wire.ask(b"ERR\r\n")
    assert wire.ask(b"\x05") == b"0010\r\n"
    wire.ask(b"UNI\r\n")
    assert wire.ask(b"\x05") == b"2\r\n", "a refused unit leaves the unit as it was"


def test_gauge_identification(wire):
    assert wire.ask(b"TID\r\n") == b"\x06\r\n"
    assert wire.ask(b"\x05") == b"PKR\r\n"


def test_are_you_there_answers_type_part_serial_and_versions(wire):
    assert wire.ask(b"AYT\r\n") == b"\x06\r\n"
    assert wire.ask(b"\x05") == b"TPG361,PTG28040,44998061,010100,010100\r\n"


def test_each_enq_answers_the_last_mnemonic_again(wire, sim):
    wire.ask(b"PR1\r\n")
    assert wire.ask(b"\x05") == b"0,1.0000E-03\r\n"
    sim.unfreeze("pressure")
    sim.pressure = 2e-3
    assert wire.ask(b"\x05").startswith(b"0,2.00")


def test_enq_with_nothing_acknowledged_is_not_acknowledged(wire):
    assert wire.ask(b"\x05") == b"\x15\r\n"


def test_line_feed_is_optional_and_etx_clears_a_started_mnemonic(wire):
    assert wire.ask(b"PR1\r") == b"\x06\r\n"
    wire.send(b"\n")
    assert wire.ask(b"\x05") == b"0,1.0000E-03\r\n"
    assert wire.ask(b"XY\x03TID\r\n") == b"\x06\r\n"
    assert wire.ask(b"\x05") == b"PKR\r\n"


# -- sensor status: a code, never a pressure -------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "answer"),
    [("sensor error", rb"3,"), ("sensor off", rb"4,"), ("no sensor", rb"5,2\.0000E-02")],
)
def test_sensor_faults_are_status_codes(wire, sim, fault, answer):
    assert sim.control(fault) == "OK"
    wire.ask(b"PR1\r\n")
    assert re.fullmatch(answer + rb".*\r\n", wire.ask(b"\x05"))
    sim.control("sensor ok")
    assert wire.ask(b"\x05") == b"0,1.0000E-03\r\n"


def test_below_a_pirani_gauge_range_is_underrange():
    sim = Tpg361Simulator(seed=1, gauge="TPR", pressure=1e-6)
    with run_in_thread(sim) as running, Wire(running.port, REPLIES) as wire:
        wire.ask(b"PR1\r\n")
        assert wire.ask(b"\x05") == b"1,5.0000E-04\r\n"
        wire.ask(b"TID\r\n")
        assert wire.ask(b"\x05") == b"TPR\r\n"


# -- continuous output -----------------------------------------------------------------------------


def test_continuous_output_streams_until_the_host_sends_again(wire):
    assert wire.ask(b"COM,0\r\n") == b"\x06\r\n"
    lines = [wire.receive() for _ in range(3)]
    assert lines == [b"0,1.0000E-03\r\n"] * 3
    wire.send(b"\x03")
    wire.silent(0.3)  # what was on its way
    wire.pending = b""
    assert wire.silent(0.5), "streaming ended"


# -- faults ------------------------------------------------------------------------------------------


def test_truncated_acknowledgement_and_garbage(wire, sim):
    sim.faults.add("truncate")
    wire.send(b"PR1\r\n")
    assert wire.socket.recv(10) == b"\x06"
    sim.clear()
    wire.send(b"\x03")
    sim.garbage = True
    assert wire.ask(b"PR1\r\n").endswith(b"\r\n")
    sim.clear()


def test_framing_cuts_control_bytes_as_frames_of_their_own():
    framing = TpgRequests()
    assert framing.split(b"\x05PR1\r\n") == (b"\x05", b"PR1\r\n")
    assert framing.split(b"PR1\r\n\x05") == (b"PR1\r\n", b"\x05")
    assert framing.split(b"PR1\r") == (b"PR1\r", b"")
    assert framing.split(b"PR") is None
    assert framing.split(b"PR\x031") == (b"PR\x03", b"1")


# -- the vacuum ------------------------------------------------------------------------------------


def _run(sim: VacuumSimulator, seconds: float) -> None:
    for _ in range(round(seconds / 0.1)):
        sim.step(0.1)


def test_pumps_down_from_atmosphere_over_minutes_and_a_leak_lets_it_rise():
    sim = Tpg361Simulator(seed=3)
    assert sim.pressure == 1000.0
    _run(sim, 60)
    assert 1 < sim.pressure < 100, "a minute in: still on the fast exponential"
    _run(sim, 540)
    assert 1e-5 < sim.pressure < 1e-4, "ten minutes in: the slow outgassing tail"
    _run(sim, 3000)
    assert sim.pressure < 1e-5
    low = sim.pressure
    sim.control("leak on")
    _run(sim, 10)
    assert sim.pressure > 8e-3 > low
    sim.control("leak off")
    _run(sim, 300)
    assert sim.pressure < 1e-4


def test_same_seed_same_readings():
    first, second = Tpg361Simulator(seed=9), Tpg361Simulator(seed=9)
    assert [first.measurement() for _ in range(5)] == [second.measurement() for _ in range(5)]
