"""The Keithley 6485 simulator speaks SCPI as the Model 6485 Instruction Manual shows it, byte for
byte on the wire: one message a line (LF), replies ending in LF, errors in the queue SYST:ERR? empties.

The conversation opens with the manual's zero-correction example (section 'Zero correct').
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from simulators import run_in_thread
from simulators.keithley import Keithley6485, Keithley6485Simulator
from tests.wire import Wire

READING = re.compile(r"[+-]\d\.\d{6}E[+-]\d\d")
AMPS = rb"[+-]\d\.\d{6}E[+-]\d\dA\n"


@pytest.fixture
def wire() -> Iterator[Wire]:
    with run_in_thread(Keithley6485Simulator(seed=1)) as running, Wire(running.port) as connection:
        yield connection


def test_zero_correction_example_from_the_manual(wire):
    # manual, 'Zero correct': every command gets no answer; READ? answers the reading
    for line in (b"*RST\n", b"SYST:ZCH ON\n", b"RANG 2e-9\n", b"INIT\n", b"SYST:ZCOR:ACQ\n", b"SYST:ZCOR ON\n",
                 b"RANG:AUTO ON\n", b"SYST:ZCH OFF\n"):
        wire.send(line)
    reading, timestamp, status = wire.ask(b"READ?\n").removesuffix(b"\n").decode().split(",")
    assert reading.endswith("A") and READING.fullmatch(reading[:-1])
    assert READING.fullmatch(timestamp)
    assert status == "+1.024000E+03"  # bit 10: zero correction on
    assert wire.ask(b"SYST:ERR?\n") == b'0,"No error"\n'


#: Every command of the table alone; a setting gets no answer, so the next reply is the query's.
EVERY_COMMAND_ALONE = [
    (b"*RST\n", None),
    (b"*CLS\n", None),
    (b"*IDN?\n", rb"KEITHLEY INSTRUMENTS INC\.,MODEL 6485,1234567,.*\n"),
    (b"*OPC?\n", rb"1\n"),
    (b"FORM:ELEM READ,UNIT\n", None),
    (b"FORM:ELEM?\n", rb"READ,UNIT\n"),
    (b"SYST:ZCH ON\n", None),
    (b"SYST:ZCH?\n", rb"1\n"),
    (b"CURR:RANG 2e-9\n", None),
    (b"CURR:RANG?\n", rb"2\.000000E-09\n"),
    (b"INIT\n", None),
    (b"FETCH?\n", AMPS),
    (b"SYST:ZCOR:ACQ\n", None),
    (b"SYST:ZCOR ON\n", None),
    (b"SYST:ZCOR?\n", rb"1\n"),
    (b"CURR:RANG:AUTO:ULIM 2e-6\n", None),
    (b"CURR:RANG:AUTO:ULIM?\n", rb"2\.000000E-06\n"),
    (b"CURR:RANG:AUTO:LLIM 2e-9\n", None),
    (b"CURR:RANG:AUTO:LLIM?\n", rb"2\.000000E-09\n"),
    (b"CURR:RANG:AUTO ON\n", None),
    (b"CURR:RANG:AUTO?\n", rb"1\n"),
    (b"RANG 20e-9\n", None),  # the manual's short forms, as in its examples
    (b"RANG:AUTO OFF\n", None),
    (b"CURR:RANG?\n", rb"2\.000000E-08\n"),
    (b"CURR:NPLC 1\n", None),
    (b"CURR:NPLC?\n", rb"1\.000000E\+00\n"),
    (b"SYST:ZCH OFF\n", None),
    (b"READ?\n", AMPS),
    (b"MEAS?\n", AMPS),
    (b"SYST:ERR:COUN?\n", rb"0\n"),
    (b"SYST:ERR?\n", rb'0,"No error"\n'),
    (b"SYST:ERR:ALL?\n", rb'0,"No error"\n'),
    (b"SYST:TIME:RES\n", None),
    (b"SYST:LFR?\n", rb"50\n"),
]


def test_every_command_alone(wire):
    wire.converse((request, reply and re.compile(reply)) for request, reply in EVERY_COMMAND_ALONE)


def test_an_undefined_header_answers_nothing_and_queues_its_error(wire):
    wire.send(b":SYST:ZCHK ON\n")
    assert wire.ask(b":SYST:ERR:COUN?\n") == b"1\n"
    assert wire.ask(b":SYST:ERR?\n") == b'-113,"Undefined header"\n'
    assert wire.ask(b":SYST:ERR?\n") == b'0,"No error"\n'


def test_a_setting_followed_by_its_query_and_the_error_query_answers_in_one_line(wire):
    # how the driver writes a setting: set, read back, error queue, one message
    assert wire.ask(b":SENS:CURR:RANG 2e-07;:SENS:CURR:RANG?;:SYST:ERR?\n") == b'2.000000E-07;0,"No error"\n'
    assert wire.ask(b":SENS:CURR:RANG 1;:SENS:CURR:RANG?;:SYST:ERR?\n") == (
        b'2.000000E-07;-222,"Parameter data out of range"\n'
    )


def test_reading_has_the_manuals_ascii_format():
    """Manual figure 'ASCII data format': +1.040564E-06A, +2.236299E+02, +1.380000E+02 (reading
    with its unit, timestamp, status), sent without the figure's spaces."""
    meter = Keithley6485(seed=1)
    sample = meter.sample
    sample.photo_current, sample.dark_current, sample.noise, sample.drift_depth = 1.040564e-6, 0.0, 0.0, 0.0
    meter.elapsed = 223.6299
    meter.handle("SYST:ZCH OFF")
    assert meter.handle("READ?") == "+1.040564E-06A,+2.236299E+02,+0.000000E+00"


def test_identifies_and_reports_undefined_headers_with_the_scpi_code():
    meter = Keithley6485(seed=1)
    assert meter.handle("*IDN?").startswith("KEITHLEY INSTRUMENTS INC.,MODEL 6485,")
    assert meter.handle(":SYST:ZCHK ON") is None
    assert meter.handle(":SYST:ERR:COUN?") == "1"
    assert meter.handle(":SYST:ERR?") == '-113,"Undefined header"'
    assert meter.handle(":SYST:ERR?") == '0,"No error"'
    assert meter.handle(":SENS:CURR:RANG 1") is None
    assert meter.handle("SYSTem:ERRor?") == '-222,"Parameter data out of range"'
    assert meter.handle("FORM:ELEM READ;:FETCH?") is None  # no reading since power on
    assert meter.handle("SYST:ERR?") == '-230,"Data corrupt or stale"'


def test_long_and_short_forms_and_joined_queries():
    meter = Keithley6485(seed=1)
    meter.handle("SENSe1:CURRent:DC:RANGe:UPPer 20e-9")
    assert meter.handle(":CURR:RANG?;:CURR:RANG:AUTO?;:SYST:ZCH?") == "2.000000E-08;0;1"
    meter.handle("CURR:RANG:AUTO:ULIM 2e-6;:CURR:RANG:AUTO:LLIM 2e-9")
    assert meter.handle("CURR:RANG:AUTO:ULIM?;LLIM?".replace(";LLIM", ";:CURR:RANG:AUTO:LLIM")) == (
        "2.000000E-06;2.000000E-09"
    )
    meter.handle("CURR:NPLC 1")
    assert meter.handle("CURR:NPLC?") == "1.000000E+00"


def test_overflow_reads_9_9e37_with_the_overflow_bit():
    meter = Keithley6485(seed=1)
    meter.sample.photo_current = 5e-9
    meter.handle("SYST:ZCH OFF;:CURR:RANG 2e-9")
    reading, _, status = meter.handle("READ?").split(",")
    assert reading == "+9.900000E+37A"
    assert int(float(status)) & 1


def test_a_reading_takes_its_integration_time_and_longer_when_it_ranges():
    meter = Keithley6485(seed=1, line_frequency=50)
    meter.handle("SYST:ZCH OFF;:CURR:NPLC 1;:CURR:RANG 2e-9;:CURR:RANG:AUTO ON")
    meter.handle("READ?")
    assert 0.02 <= meter.reply_time("READ?") < 0.03  # 1 PLC at 50 Hz plus processing
    meter.sample.photo_current = 1e-6  # three ranges up
    meter.handle("READ?")
    assert meter.reply_time("READ?") > 0.07
