"""NMEA 0183 as the classic examples of its documentation write it, and the GPS simulator's stream
on the wire: a burst of GGA, GSV and RMC each second, each with its checksum."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from device_servers.core.errors import GarbledReply
from device_servers.gps.protocol import FRAMING, parse, parse_gga, parse_gsv, parse_rmc
from simulators import run_in_thread
from simulators.gps import GpsSimulator
from tests.wire import Wire

GGA = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
RMC = b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n"
GSV = b"$GPGSV,2,1,08,01,40,083,46,02,17,308,41,12,07,344,39,14,22,228,45*75\r\n"


def test_gga_a_gps_fix_with_8_satellites_at_48_07_038_n_11_31_000_e():
    kind, fields = parse(GGA)
    fix = parse_gga(fields)
    assert kind == "GGA"
    assert (fix.quality, fix.satellites, fix.hdop, fix.altitude) == (1, 8, 0.9, 545.4)
    assert fix.latitude == pytest.approx(48 + 7.038 / 60) and fix.longitude == pytest.approx(11 + 31.000 / 60)


def test_rmc_valid_at_12_35_19_utc_on_23_march_1994():
    assert parse_rmc(parse(RMC)[1]) == (True, dt.datetime(1994, 3, 23, 12, 35, 19, tzinfo=dt.UTC))


def test_gsv_8_satellites_in_view():
    assert parse_gsv(parse(GSV)[1]) == 8


def test_a_wrong_checksum_or_a_line_that_is_no_sentence_is_garbage():
    with pytest.raises(GarbledReply, match="bad NMEA checksum"):
        parse(GGA.replace(b"*47", b"*48"))
    with pytest.raises(GarbledReply, match="no NMEA sentence"):
        parse(b"GPGGA,123519*47\r\n")


def test_the_simulator_streams_a_burst_each_second_unasked():
    with run_in_thread(GpsSimulator(seed=1)) as running, Wire(running.port, FRAMING, timeout=5) as wire:
        lines = [wire.receive() for _ in range(10)]  # two bursts, wherever the first one started
    start = next(i for i, line in enumerate(lines) if line.startswith(b"$GPGGA"))
    burst = lines[start: start + 5]
    assert [line[3:6] for line in burst] == [b"GGA", b"GSV", b"GSV", b"GSV", b"RMC"]
    assert re.fullmatch(rb"\$GPGGA,\d{6}\.00,2845\.3000,N,01753\.5000,W,1,08,0\.9,2267\.0,M,30\.5,M,,\*[0-9A-F]{2}\r\n",
                        burst[0])
    assert all(parse(line) for line in burst)  # every checksum right
    assert parse_gsv(parse(burst[1])[1]) == 11
    assert burst[0][7:16] == burst[4][7:16]  # GGA and RMC of one second
