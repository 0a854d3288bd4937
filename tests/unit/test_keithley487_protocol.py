"""The Keithley 487 simulator speaks its device-dependent commands (DDC) byte for byte on the wire:
commands carried out at X, requests ending in LF, replies in CR LF (its power-on terminator),
errors told by the U1X error word."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from device_servers.core.framing import Lines
from simulators import run_in_thread
from simulators.keithley import Keithley487, Keithley487Simulator
from tests.wire import Wire


@pytest.fixture
def wire() -> Iterator[Wire]:
    with run_in_thread(Keithley487Simulator(seed=1)) as running, Wire(running.port, Lines(b"\r\n")) as connection:
        yield connection


#: Every command alone; only B and U answer, so the next reply is the query's.
EVERY_COMMAND_ALONE = [
    (b"U0X\n", rb"487A0B0C0D0F0G0I0K0M000N0000O0P0R17S1T6V00Z0\r\n"),  # power-on machine status
    (b"G0X\n", None),
    (b"S1X\n", None),
    (b"B0X\n", rb"NDCA[+-]\d\.\d{4}E[+-]\d\d\r\n"),
    (b"R3X\n", None),
    (b"C1X\n", None),
    (b"V10,0,1X\n", None),
    (b"O1X\n", None),
    (b"U0X\n", rb"487A0B0C1D0F0G0I0K0M000N0000O1P0R03S1T6V01Z0\r\n"),
    (b"U8X\n", rb"VS=\+1\.0000E\+01V\r\n"),
    (b"U9X\n", rb"48700\r\n"),
    (b"U1X\n", rb"4870000000000000\r\n"),
]


def test_every_command_alone(wire):
    wire.converse((request, reply and re.compile(reply)) for request, reply in EVERY_COMMAND_ALONE)


def test_an_unknown_command_sets_iddc_and_reading_the_word_clears_it(wire):
    wire.send(b"Q1X\n")
    assert wire.ask(b"U1X\n") == b"4871000000000000\r\n"
    assert wire.ask(b"U1X\n") == b"4870000000000000\r\n"
    wire.send(b"V60,0,0X\n")  # beyond the 50 V range's 50.5 V
    assert wire.ask(b"U1X\n") == b"4870100000000000\r\n"  # IDDCO


def test_operating_the_500_volt_range_with_the_interlock_open_is_refused_in_the_error_word():
    with run_in_thread(Keithley487Simulator(seed=1, interlock="open")) as running, Wire(
        running.port, Lines(b"\r\n")
    ) as wire:
        wire.send(b"V100,1,0X\n")
        wire.send(b"O1X\n")
        assert wire.ask(b"U1X\n") == b"4870000000000001\r\n"  # interlock
        assert wire.ask(b"U9X\n") == b"48710\r\n"
        assert wire.ask(b"U0X\n")[28:30] == b"O0"  # still in standby


def test_readings_carry_the_prefix_and_overflow_and_zero_check_show_in_it():
    meter = Keithley487(seed=1)
    assert re.fullmatch(r"NDCA[+-]\d\.\d{4}E[+-]\d\d", meter.handle("B0X"))
    meter.handle("R1X")
    meter.sample.photo_current = 5e-9
    assert meter.handle("B0X").startswith("ODCA")
    meter.handle("C1X")
    assert meter.handle("B0X").startswith("ZDCA")
    assert re.fullmatch(r"[+-]\d\.\d{4}E[+-]\d\d", meter.handle("G1B0X"))


def test_machine_status_has_its_fixed_fields():
    meter = Keithley487(seed=1)
    assert meter.handle("U0X") == "487A0B0C0D0F0G0I0K0M000N0000O0P0R17S1T6V00Z0"
    meter.handle("C1R3X")
    meter.handle("V10,0,1X")
    status = meter.handle("U0X")
    assert status[7:9] == "C1" and status[32:35] == "R03" and status[39:42] == "V01" and status[28:30] == "O0"


def test_commands_wait_for_x_and_errors_show_in_u1():
    meter = Keithley487(seed=1)
    assert meter.handle("R2") is None
    assert meter.handle("U0X")[32:35] == "R02"  # R2 ran with the X that came later
    meter.handle("Q1X")
    assert meter.handle("U1X") == "4871000000000000"  # IDDC
    assert meter.handle("U1X") == "4870000000000000"  # reading the word clears it
    meter.handle("V60,0,0X")  # beyond the 50 V range's 50.5 V
    assert meter.handle("U1X") == "4870100000000000"  # IDDCO


def test_voltage_source_and_interlock():
    meter = Keithley487(seed=1)
    meter.handle("V10,0,0X")
    assert meter.handle("U8X") == "VS=+0.0000E+00V"  # standby
    meter.handle("O1X")
    assert meter.handle("U8X") == "VS=+1.0000E+01V"
    assert meter.handle("U9X") == "48700"
    meter.interlock_closed = False
    meter.handle("O0X")
    meter.handle("V100,1,0X")
    meter.handle("O1X")  # 500 V range with the interlock open: stays in standby
    assert meter.handle("U0X")[28:30] == "O0"
    assert meter.handle("U9X") == "48710"
    assert meter.handle("U1X") == "4870000000000001"  # interlock
