"""The Aim-TTi simulator on the wire: the exchanges of the MX100QP / PL-P programmer's manual,
literally (settings get no answer, queries answer in the manual's formats, LF-terminated)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulators import run_in_thread
from simulators.tti import TtiSimulator
from tests.wire import Wire


@pytest.fixture
def sim() -> TtiSimulator:
    return TtiSimulator(load=100.0, noise=0.0, seed=1)  # read-backs exact, as the manual prints them


@pytest.fixture
def wire(sim) -> Iterator[Wire]:
    with run_in_thread(sim) as running, Wire(running.port) as connection:
        yield connection


def test_identification(wire):
    # *IDN? -> <NAME>, <model>, <serial>, <version>
    assert wire.ask(b"*IDN?\n") == b"THURLBY THANDAR, MX100QP, 527193, 1.11-2.01-1.05\n"


def test_voltage_setpoint_and_readback_as_the_manual_shows(wire):
    # V1 12.0 sets; V1? -> "V1 12.000"; with the output on, V1O? -> "12.000V"
    wire.send(b"V1 12.0\n")
    assert wire.ask(b"V1?\n") == b"V1 12.000\n"
    wire.send(b"I1 0.2\n")
    assert wire.ask(b"I1?\n") == b"I1 0.200\n"
    wire.send(b"OP1 1\n")
    assert wire.ask(b"OP1?\n") == b"1\n"
    assert wire.ask(b"V1O?\n") == b"12.000V\n"


def test_current_readback_follows_the_load(wire):
    # I1O? -> "0.100A": 10 V across the 100 ohm load
    wire.send(b"V1 10\n")
    wire.send(b"I1 1\n")
    wire.send(b"OP1 1\n")
    assert wire.ask(b"I1O?\n") == b"0.100A\n"


def test_output_off_reads_zero(wire):
    wire.send(b"V2 5\n")
    assert wire.ask(b"OP2?\n") == b"0\n"
    assert wire.ask(b"V2O?\n") == b"0.000V\n"
    assert wire.ask(b"I2O?\n") == b"0.000A\n"


def test_protection_levels(wire):
    # OVP<n>? -> "VP<n> <NR2>", OCP<n>? -> "CP<n> <NR2>"
    wire.send(b"OVP1 13.2\n")
    assert wire.ask(b"OVP1?\n") == b"VP1 13.20\n"
    wire.send(b"OCP1 1.5\n")
    assert wire.ask(b"OCP1?\n") == b"CP1 1.500\n"


def test_queries_in_one_message_answer_in_one_line(wire):
    assert wire.ask(b"V1?;I1?;OP1?\n") == b"V1 0.000;I1 0.100;0\n"


def test_a_value_out_of_range_is_an_execution_error_and_changes_nothing(wire):
    wire.send(b"V1 50\n")
    assert wire.ask(b"V1?\n") == b"V1 0.000\n"
    assert wire.ask(b"EER?\n") == b"100\n"
    assert wire.ask(b"EER?\n") == b"0\n"  # cleared by reading
    assert wire.ask(b"QER?\n") == b"0\n"


def test_an_unknown_command_gets_no_answer(wire):
    wire.send(b"FOO1 2\n")
    assert wire.ask(b"CONFIG?\n") == b"2\n"


def test_over_voltage_trip_in_the_limit_status_register(wire):
    # LSR<n>?: bit 2 (4) over-voltage trip; the register is cleared when read
    wire.send(b"OVP1 5\n")
    wire.send(b"V1 6\n")
    wire.send(b"OP1 1\n")
    assert wire.ask(b"OP1?\n") == b"0\n"
    assert int(wire.ask(b"LSR1?\n")) & 0x04
    assert wire.ask(b"LSR1?\n") == b"0\n"


def test_overload_trips_over_current_and_triprst_clears(wire, sim):
    wire.send(b"V3 5\n")
    wire.send(b"OP3 1\n")
    assert int(wire.ask(b"LSR3?\n")) == 0x01  # entered constant voltage
    assert sim.control("overload 3 on") == "OK"
    assert wire.ask(b"OP3?\n") == b"0\n"
    assert int(wire.ask(b"LSR3?\n")) & 0x08  # bit 3: over-current trip
    wire.send(b"TRIPRST\n")
    assert wire.ask(b"OP3?\n") == b"0\n"  # TRIPRST leaves the output off
    assert sim.outputs[3].tripped == 0
    assert sim.control("overload 3 off") == "OK"
    wire.send(b"OP3 1\n")
    assert wire.ask(b"OP3?\n") == b"1\n"


def test_constant_current_when_the_load_wants_more_than_the_limit(wire):
    wire.send(b"V4 20\n")  # 0.2 A into 100 ohm, limit 0.1 A
    wire.send(b"I4 0.1\n")
    wire.send(b"OP4 1\n")
    assert wire.ask(b"I4O?\n") == b"0.100A\n"
    assert wire.ask(b"V4O?\n") == b"10.000V\n"
    assert int(wire.ask(b"LSR4?\n")) & 0x02


def test_reset_switches_every_output_off_at_its_defaults(wire):
    wire.send(b"V1 5\n")
    wire.send(b"OP1 1\n")
    wire.send(b"*RST\n")
    assert wire.ask(b"V1?;I1?;OP1?\n") == b"V1 0.000;I1 0.100;0\n"


def test_readbacks_carry_noise_by_default():
    sim = TtiSimulator(seed=5)
    sim.handle_line("V1 5")
    sim.handle_line("OP1 1")
    readings = {sim.handle_line("V1O?") for _ in range(20)}
    assert len(readings) > 1 and all(abs(float(r[:-1]) - 5) < 0.005 for r in readings)
