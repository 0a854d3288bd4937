"""The Keithley 6485 and 487 simulators speak as their manuals show, byte for byte on the wire.

The 6485 exchanges open with the manual's zero-correction example (section 'Zero correct');
the 487 ones with its DDC commands, each carried out at X.
"""

from __future__ import annotations

import re
import socket

import pytest

from simulators import run_in_thread
from simulators.keithley import Keithley487, Keithley487Simulator, Keithley6485, Keithley6485Simulator

READING = re.compile(r"[+-]\d\.\d{6}E[+-]\d\d")


def test_6485_zero_correction_example_from_the_manual():
    meter = Keithley6485(seed=1)
    for line in ("*RST", "SYST:ZCH ON", "RANG 2e-9", "INIT", "SYST:ZCOR:ACQ", "SYST:ZCOR ON", "RANG:AUTO ON",
                 "SYST:ZCH OFF"):
        assert meter.handle(line) is None, line
    reading, timestamp, status = meter.handle("READ?").split(",")
    assert reading.endswith("A") and READING.fullmatch(reading[:-1])
    assert READING.fullmatch(timestamp)
    assert status == "+1.024000E+03"  # bit 10: zero correction on
    assert meter.handle("SYST:ERR?") == '0,"No error"'


def test_6485_reading_has_the_manuals_ascii_format():
    """Manual figure 'ASCII data format': +1.040564E-06A, +2.236299E+02, +1.380000E+02 (reading
    with its unit, timestamp, status), sent without the figure's spaces."""
    meter = Keithley6485(seed=1)
    sample = meter.sample
    sample.photo_current, sample.dark_current, sample.noise, sample.drift_depth = 1.040564e-6, 0.0, 0.0, 0.0
    meter.elapsed = 223.6299
    meter.handle("SYST:ZCH OFF")
    assert meter.handle("READ?") == "+1.040564E-06A,+2.236299E+02,+0.000000E+00"


def test_6485_identifies_and_reports_undefined_headers_with_the_scpi_code():
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


def test_6485_long_and_short_forms_and_joined_queries():
    meter = Keithley6485(seed=1)
    meter.handle("SENSe1:CURRent:DC:RANGe:UPPer 20e-9")
    assert meter.handle(":CURR:RANG?;:CURR:RANG:AUTO?;:SYST:ZCH?") == "2.000000E-08;0;1"
    meter.handle("CURR:RANG:AUTO:ULIM 2e-6;:CURR:RANG:AUTO:LLIM 2e-9")
    assert meter.handle("CURR:RANG:AUTO:ULIM?;LLIM?".replace(";LLIM", ";:CURR:RANG:AUTO:LLIM")) == (
        "2.000000E-06;2.000000E-09"
    )
    meter.handle("CURR:NPLC 1")
    assert meter.handle("CURR:NPLC?") == "1.000000E+00"


def test_6485_overflow_reads_9_9e37_with_the_overflow_bit():
    meter = Keithley6485(seed=1)
    meter.sample.photo_current = 5e-9
    meter.handle("SYST:ZCH OFF;:CURR:RANG 2e-9")
    reading, _, status = meter.handle("READ?").split(",")
    assert reading == "+9.900000E+37A"
    assert int(float(status)) & 1


def test_6485_a_reading_takes_its_integration_time_and_longer_when_it_ranges():
    meter = Keithley6485(seed=1, line_frequency=50)
    meter.handle("SYST:ZCH OFF;:CURR:NPLC 1;:CURR:RANG 2e-9;:CURR:RANG:AUTO ON")
    meter.handle("READ?")
    assert 0.02 <= meter.reply_time("READ?") < 0.03  # 1 PLC at 50 Hz plus processing
    meter.sample.photo_current = 1e-6  # three ranges up
    meter.handle("READ?")
    assert meter.reply_time("READ?") > 0.07


def test_487_readings_carry_the_prefix_and_overflow_and_zero_check_show_in_it():
    meter = Keithley487(seed=1)
    assert re.fullmatch(r"NDCA[+-]\d\.\d{4}E[+-]\d\d", meter.handle("B0X"))
    meter.handle("R1X")
    meter.sample.photo_current = 5e-9
    assert meter.handle("B0X").startswith("ODCA")
    meter.handle("C1X")
    assert meter.handle("B0X").startswith("ZDCA")
    assert re.fullmatch(r"[+-]\d\.\d{4}E[+-]\d\d", meter.handle("G1B0X"))


def test_487_machine_status_has_its_fixed_fields():
    meter = Keithley487(seed=1)
    assert meter.handle("U0X") == "487A0B0C0D0F0G0I0K0M000N0000O0P0R17S1T6V00Z0"
    meter.handle("C1R3X")
    meter.handle("V10,0,1X")
    status = meter.handle("U0X")
    assert status[7:9] == "C1" and status[32:35] == "R03" and status[39:42] == "V01" and status[28:30] == "O0"


def test_487_commands_wait_for_x_and_errors_show_in_u1():
    meter = Keithley487(seed=1)
    assert meter.handle("R2") is None
    assert meter.handle("U0X")[32:35] == "R02"  # R2 ran with the X that came later
    meter.handle("Q1X")
    assert meter.handle("U1X") == "4871000000000000"  # IDDC
    assert meter.handle("U1X") == "4870000000000000"  # reading the word clears it
    meter.handle("V60,0,0X")  # beyond the 50 V range's 50.5 V
    assert meter.handle("U1X") == "4870100000000000"  # IDDCO


def test_487_voltage_source_and_interlock():
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


@pytest.mark.parametrize("simulator, request_, pattern", [
    (Keithley6485Simulator, b"*IDN?\n", rb"KEITHLEY INSTRUMENTS INC\.,MODEL 6485,.*\n"),
    (Keithley487Simulator, b"B0X\n", rb"NDCA[+-]\d\.\d{4}E[+-]\d\d\r\n"),  # CR LF, its Y0
])
def test_served_directly_on_tcp_lf_terminated(simulator, request_, pattern):
    with run_in_thread(simulator(seed=2)) as running, socket.create_connection((running.host, running.port), 5) as s:
        s.sendall(request_)
        s.settimeout(5)
        reply = b""
        while not reply.endswith(b"\n"):
            reply += s.recv(256)
        assert re.fullmatch(pattern, reply)
        assert running.simulator.received[-1] == request_.decode().strip()
