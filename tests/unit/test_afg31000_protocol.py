"""The Tektronix AFG31000 simulator on the wire: the Programmer Manual's commands literally, two
channels under SOURce<n>: and OUTPut<n>:, replies ending in LF, errors in the queue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device_servers.core.framing import BlockLines
from simulators import run_in_thread
from simulators.afg31000 import Afg31000Simulator
from tests.wire import Wire

NO_ERROR = b'0,"No error"\n'


@pytest.fixture
def wire() -> Iterator[Wire]:
    with run_in_thread(Afg31000Simulator(seed=1)) as running, Wire(running.port, BlockLines(b"\n")) as connection:
        yield connection


def test_identification_reset_and_clear(wire):
    assert wire.ask(b"*IDN?\n") == b"TEKTRONIX,AFG31022,C000001,SCPI:99.0 FV:1.5.2\n"
    wire.send(b"SOURce2:FREQuency 5000\n")
    wire.send(b"*RST\n")
    wire.send(b"*CLS\n")
    assert wire.ask(b"SOUR2:FREQ?\n") == b"1.000000E+06\n"


def test_each_channel_has_its_own_function_frequency_amplitude_and_offset(wire):
    wire.send(b"SOURce1:FUNCtion:SHAPe SQUare\n")
    wire.send(b"SOURce2:FREQuency:CW 2500\n")
    wire.send(b"SOURce2:VOLTage:LEVel:IMMediate:AMPLitude 2.5\n")
    wire.send(b"SOURce2:VOLTage:LEVel:IMMediate:OFFSet 0.5\n")
    assert wire.ask(b"SOUR1:FUNC:SHAP?\n") == b"SQU\n"
    assert wire.ask(b"SOUR2:FUNC?\n") == b"SIN\n"
    assert wire.ask(b"SOUR2:FREQ?;:SOUR2:VOLT?;:SOUR2:VOLT:OFFS?\n") == b"2.500000E+03;2.500000E+00;5.000000E-01\n"
    assert wire.ask(b"SOURce1:VOLTage?\n") == b"1.000000E+00\n"
    assert wire.ask(b"SOURce2:VOLTage:OFFSet?\n") == b"5.000000E-01\n"


def test_outputs_switch_and_their_load_impedance(wire):
    assert wire.ask(b"OUTPut1:STATe?\n") == b"0\n"  # off at power-up
    wire.send(b"OUTPut1:STATe ON\n")
    wire.send(b"OUTPut2:IMPedance INFinity\n")
    assert wire.ask(b"OUTP1?;:OUTP2?\n") == b"1;0\n"
    assert wire.ask(b"OUTPut2:IMPedance?\n") == b"9.9E+37\n"
    wire.send(b"OUTP2:IMP 75\n")
    assert wire.ask(b"OUTP2:IMP?\n") == b"7.500000E+01\n"


def test_burst(wire):
    wire.send(b"SOURce1:BURSt:NCYCles 10\n")
    wire.send(b"SOURce1:BURSt:STATe ON\n")
    assert wire.ask(b"SOURce1:BURSt:NCYCles?\n") == b"1.000000E+01\n"
    assert wire.ask(b"SOURce1:BURSt:STATe?\n") == b"1\n"


def test_an_edit_memory_takes_a_binary_block_of_14_bit_points_and_gives_it_back(wire):
    # 4 points, most significant byte first: 0, 8191, 16383, 10 (0x000a: a LF inside the block)
    wire.send(b"DATA:DATA EMEMory1,#18\x00\x00\x1f\xff\x3f\xff\x00\x0a\n")
    assert wire.ask(b"SYSTem:ERRor?\n") == NO_ERROR
    assert wire.ask(b"DATA:POINts? EMEMory1\n") == b"4\n"
    assert wire.ask(b"DATA:DATA? EMEMory1\n") == b"#18\x00\x00\x1f\xff\x3f\xff\x00\x0a\n"
    wire.send(b"SOURce1:FUNCtion:SHAPe EMEMory1\n")
    assert wire.ask(b"SOUR1:FUNC?\n") == b"EMEM1\n"


def test_a_value_out_of_range_is_error_222_and_changes_nothing(wire):
    wire.send(b"SOURce1:VOLTage 12\n")  # above 10 Vpp into 50 ohm
    assert wire.ask(b"SOUR1:VOLT?\n") == b"1.000000E+00\n"
    assert wire.ask(b"SYST:ERR?\n") == b'-222,"Data out of range"\n'
    assert wire.ask(b"SYST:ERR?\n") == NO_ERROR
    wire.send(b"DATA:DATA EMEMory2,#14\x7f\xff\x00\x00\n")  # 32767 is beyond 14 bits
    assert wire.ask(b"SYST:ERR?\n") == b'-222,"Data out of range"\n'


def test_an_unknown_header_is_error_113(wire):
    wire.send(b"SOURce3:FREQuency 1\n")  # a third channel
    assert wire.ask(b"SYST:ERR?\n") == b'-113,"Undefined header"\n'
