"""The HP 33120A simulator on the wire: the exchanges of the 33120A User's Guide (chapter 4),
literally; replies end in LF, numbers answer as `+1.000000000000E+03`, errors wait in the queue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device_servers.core.framing import BlockLines
from simulators import run_in_thread
from simulators.hp33120a import Hp33120aSimulator
from tests.wire import Wire

NO_ERROR = b'+0,"No error"\n'


@pytest.fixture
def wire() -> Iterator[Wire]:
    with run_in_thread(Hp33120aSimulator(seed=1)) as running, Wire(running.port, BlockLines(b"\n")) as connection:
        yield connection


def test_identification_and_reset(wire):
    assert wire.ask(b"*IDN?\n") == b"HEWLETT-PACKARD,33120A,0,7.0-5.0-1.0\n"
    wire.send(b"FREQ 5000\n")
    wire.send(b"*RST\n")
    wire.send(b"*CLS\n")
    assert wire.ask(b"FREQ?\n") == b"+1.000000000000E+03\n"


def test_apply_sets_function_frequency_amplitude_and_offset_at_once(wire):
    # the manual's example: APPL:SIN 5 KHZ, 3.0 VPP, -2.5 V
    wire.send(b"APPL:SIN 5.0E+3, 3.0, -2.5\n")
    assert wire.ask(b"APPL?\n") == b'"SIN +5.000000000000E+03,+3.000000000000E+00,-2.500000000000E+00"\n'
    wire.send(b"APPL:SQU 1000\n")
    assert wire.ask(b"FUNC:SHAP?\n") == b"SQU\n"
    wire.send(b"APPL:TRI\n")
    wire.send(b"APPL:RAMP\n")
    wire.send(b"APPL:NOIS\n")
    assert wire.ask(b"FUNC:SHAP?\n") == b"NOIS\n"
    wire.send(b"APPL:DC DEF, DEF, 1.5\n")
    assert wire.ask(b"VOLT:OFFS?\n") == b"+1.500000000000E+00\n"
    wire.send(b"APPL:USER\n")
    assert wire.ask(b"FUNC:USER?\n") == b"EXP_RISE\n"  # the built-in arbitrary waveform


def test_settings_one_by_one(wire):
    wire.send(b"FUNC:SHAP SQU\n")
    wire.send(b"FREQ 2500\n")
    wire.send(b"VOLT 2.5\n")
    wire.send(b"VOLT:OFFS 0.5\n")
    assert wire.ask(b"FREQ?;VOLT?;VOLT:OFFS?\n") == b"+2.500000000000E+03;+2.500000000000E+00;+5.000000000000E-01\n"
    wire.send(b"OUTP:LOAD INF\n")
    assert wire.ask(b"OUTP:LOAD?\n") == b"+9.900000000000E+37\n"
    assert wire.ask(b"VOLT?\n") == b"+2.500000000000E+00\n"
    assert wire.ask(b"SYST:ERR?\n") == NO_ERROR


def test_burst_modulation(wire):
    wire.send(b"BM:NCYC 5\n")
    wire.send(b"BM:STAT ON\n")
    assert wire.ask(b"BM:NCYC?\n") == b"+5.000000000000E+00\n"
    assert wire.ask(b"BM:STAT?\n") == b"1\n"


def test_an_arbitrary_waveform_as_a_binary_dac_block_most_significant_byte_first(wire):
    # 8 points: 0, +2047, 0, -2047, +1, -1, +10 (0x000a: a LF inside the block), 0
    wire.send(b"DATA:DAC VOLATILE, #216\x00\x00\x07\xff\x00\x00\xf8\x01\x00\x01\xff\xff\x00\x0a\x00\x00\n")
    assert wire.ask(b"SYST:ERR?\n") == NO_ERROR
    wire.send(b"FUNC:USER VOLATILE\n")
    wire.send(b"FUNC:SHAP USER\n")
    assert wire.ask(b"DATA:ATTR:POIN?\n") == b"+8\n"
    assert wire.ask(b"DATA:ATTR:PTP?\n") == b"+2.000000000000E+00\n"
    assert wire.ask(b"DATA:ATTR:AVER?\n") == b"+6.106497313141E-04\n"  # 10/2047/8


def test_an_arbitrary_waveform_as_numbers_from_minus_1_to_1(wire):
    wire.send(b"DATA VOLATILE, 1, .5, 0, -.5, -1, -.5, 0, .5\n")
    assert wire.ask(b"DATA:ATTR:PTP?;:SYST:ERR?\n") == b'+2.000000000000E+00;+0,"No error"\n'


def test_a_value_out_of_range_is_error_222_and_changes_nothing(wire):
    wire.send(b"VOLT 12\n")  # above 10 Vpp into 50 ohm
    assert wire.ask(b"VOLT?\n") == b"+1.000000000000E-01\n"
    assert wire.ask(b"SYST:ERR?\n") == b'-222,"Data out of range"\n'
    assert wire.ask(b"SYST:ERR?\n") == NO_ERROR
    wire.send(b"DATA:DAC VOLATILE, 1, 2, 3\n")  # fewer than 8 points
    assert wire.ask(b"SYST:ERR?\n") == b'-222,"Data out of range"\n'


def test_an_unknown_header_is_error_113(wire):
    wire.send(b"FOO:BAR 1\n")
    assert wire.ask(b"SYST:ERR?\n") == b'-113,"Undefined header"\n'


def test_a_load_that_no_longer_allows_the_amplitude_cuts_it_with_error_221(wire):
    wire.send(b"OUTP:LOAD INF;:VOLT 15\n")
    wire.send(b"OUTP:LOAD 50\n")
    assert wire.ask(b"VOLT?;:SYST:ERR?\n") == b'+1.000000000000E+01;-221,"Settings conflict"\n'
