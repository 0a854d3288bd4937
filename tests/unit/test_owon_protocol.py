"""The OWON ODP6033 simulator on the wire: its SCPI as the ODP programming manual and the original
lab's daemon use it (`:APP:VOLT?`, `CHAN:OUTP:ALL?`, `INST:NSEL`), LF-terminated."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulators import run_in_thread
from simulators.owon import OwonSimulator
from tests.wire import Wire

NO_ERROR = b'0,"No error"\n'


@pytest.fixture
def sim() -> OwonSimulator:
    return OwonSimulator(load=100.0, seed=1)


@pytest.fixture
def wire(sim) -> Iterator[Wire]:
    sim.random.gauss = lambda mu, sigma: 0.0  # measurements exact, as the manual prints them
    with run_in_thread(sim) as running, Wire(running.port) as connection:
        yield connection


def test_identification_reset_and_clear(wire):
    assert wire.ask(b"*IDN?\n") == b"OWON,ODP6033,2104117,FV:V3.9.0\n"
    wire.send(b"*RST\n")
    wire.send(b"*CLS\n")
    assert wire.ask(b"SYST:ERR?\n") == NO_ERROR


def test_the_selected_output_takes_the_settings(wire):
    wire.send(b"INST:NSEL 2\n")
    assert wire.ask(b"INST:NSEL?\n") == b"2\n"
    wire.send(b"VOLT 12\n")
    wire.send(b"CURR 0.5\n")
    wire.send(b"VOLT:LIM 20\n")
    wire.send(b"CURR:LIM 1\n")
    assert wire.ask(b"VOLT?;CURR?;VOLT:LIM?;CURR:LIM?\n") == b"12.000;0.500;20.000;1.000\n"
    assert wire.ask(b"CURR?\n") == b"0.500\n"
    assert wire.ask(b"VOLT:LIM?\n") == b"20.000\n"
    assert wire.ask(b"CURR:LIM?\n") == b"1.000\n"
    # the three outputs at once, as the original lab's daemon polled them
    assert wire.ask(b":APP:VOLT?\n") == b"0.000,12.000,0.000\n"
    assert wire.ask(b":APP:CURR?\n") == b"0.100,0.500,0.100\n"


def test_outputs_switch_and_measure_through_the_load(wire):
    wire.send(b"INST:NSEL 1\n")
    wire.send(b"VOLT 10\n")
    wire.send(b"OUTP ON\n")
    assert wire.ask(b"OUTP?\n") == b"1\n"
    assert wire.ask(b"MEAS:VOLT?\n") == b"10.000\n"
    assert wire.ask(b"MEAS:CURR?\n") == b"0.100\n"  # 10 V across 100 ohm
    wire.send(b"CHAN:OUTP:ALL 0,1,1\n")
    assert wire.ask(b"CHAN:OUTP:ALL?\n") == b"0,1,1\n"


def test_a_value_out_of_the_outputs_range_is_error_222_and_changes_nothing(wire):
    wire.send(b"INST:NSEL 3\n")
    wire.send(b"VOLT 12\n")  # output 3 gives 6 V at most
    assert wire.ask(b"VOLT?\n") == b"0.000\n"
    assert wire.ask(b"SYST:ERR?\n") == b'-222,"Data out of range"\n'
    assert wire.ask(b"SYST:ERR?\n") == NO_ERROR
    wire.send(b"FOO 1\n")
    assert wire.ask(b"SYST:ERR?\n") == b'-113,"Undefined header"\n'


def test_over_voltage_and_over_current_trips_and_their_clearing(wire, sim):
    wire.send(b"INST:NSEL 1;:VOLT 12;:OUTP ON\n")
    wire.send(b"VOLT:LIM 10\n")  # below the set-point: over-voltage protection
    assert wire.ask(b"OUTP?\n") == b"0\n"
    assert wire.ask(b"OUTP:PROT:ALL?\n") == b"1,0,0\n"
    wire.send(b"OUTP:PROT:CLE\n")
    assert wire.ask(b"OUTP:PROT:ALL?\n") == b"0,0,0\n"
    wire.send(b"INST:NSEL 2;:VOLT 5;:OUTP ON\n")
    assert sim.control("overload 2 on") == "OK"
    assert wire.ask(b"OUTP:PROT:ALL?\n") == b"0,2,0\n"
