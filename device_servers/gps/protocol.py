"""NMEA 0183 as a GPS receiver sends it, shared by the driver and the simulator.

Each sentence is one line: `$`, the address (talker `GP`, `GN`... and the sentence type), the
comma-separated fields, `*`, the checksum (the XOR of every character between `$` and `*`) in
two hexadecimal digits, CR LF. A receiver sends a burst every second unasked; the ones read here:

    $GPGGA,hhmmss.ss,llll.ll,N,yyyyy.yy,W,q,nn,h.h,a.a,M,g.g,M,,*hh   fix: quality q (0 none, 1 GPS,
                                                                      2 DGPS), nn satellites in use
    $GPGSV,n,i,vv,...*hh                                              part i of n: vv satellites in view
    $GPRMC,hhmmss.ss,A,llll.ll,N,yyyyy.yy,W,s,c,ddmmyy,,*hh           time and date, A valid / V not

Latitude is degrees and minutes (`2845.300` is 28° 45.300'), longitude the same with three
digits of degrees.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable
from dataclasses import dataclass

from ..core.errors import GarbledReply, shown
from ..core.framing import Lines

FRAMING = Lines(b"\r\n", max_length=82 * 4)  # NMEA: at most 82 characters a sentence
MESSAGES = {"GGA": "GGA", "GSV": "GSV", "RMC": "RMC"}


def checksum(body: str) -> int:
    value = 0
    for character in body:
        value ^= ord(character)
    return value


def sentence(body: str) -> bytes:
    """A whole sentence from its body (`GPGGA,...`): `$`, body, `*`, checksum, CR LF."""
    return f"${body}*{checksum(body):02X}\r\n".encode("ascii")


def parse(line: bytes) -> tuple[str, list[str]]:
    """(the sentence type, its fields) of one sentence; GarbledReply for anything else."""
    text = line.decode("ascii", errors="replace").strip()
    body, star, digits = text[1:].rpartition("*")
    if not text.startswith("$") or not star or len(digits) != 2:
        raise GarbledReply(f"{shown(line)} is no NMEA sentence")
    if f"{checksum(body):02X}" != digits.upper():
        raise GarbledReply(f"bad NMEA checksum in {shown(line)}: the sentence's is {checksum(body):02X}")
    address, *fields = body.split(",")
    return address[2:], fields


def message_id(frame: bytes) -> Hashable | None:
    try:
        kind = parse(frame)[0]
    except GarbledReply:
        return None
    return kind if kind in MESSAGES else None


@dataclass(frozen=True)
class Fix:
    """What GGA says."""

    quality: int  # 0 no fix, 1 GPS, 2 DGPS...
    satellites: int  # in use
    latitude: float | None  # degrees, north positive
    longitude: float | None  # degrees, east positive
    altitude: float | None  # m above mean sea level
    hdop: float | None


def _angle(value: str, hemisphere: str) -> float | None:
    if not value:
        return None
    degrees_digits = value.index(".") - 2
    angle = int(value[:degrees_digits]) + float(value[degrees_digits:]) / 60
    return -angle if hemisphere in ("S", "W") else angle


def _number(value: str) -> float | None:
    return float(value) if value else None


def parse_gga(fields: list[str]) -> Fix:
    return Fix(int(fields[5] or 0), int(fields[6] or 0), _angle(fields[1], fields[2]), _angle(fields[3], fields[4]),
               _number(fields[8]), _number(fields[7]))


def parse_gsv(fields: list[str]) -> int:
    """Satellites in view."""
    return int(fields[2])


def parse_rmc(fields: list[str]) -> tuple[bool, dt.datetime | None]:
    """(valid, the UTC time of the fix)."""
    clock, status, date = fields[0], fields[1], fields[8]
    if not (clock and date):
        return False, None
    when = dt.datetime.strptime(date + clock.split(".")[0], "%d%m%y%H%M%S").replace(tzinfo=dt.UTC)
    fraction = float("0." + clock.split(".")[1]) if "." in clock else 0.0
    return status == "A", when + dt.timedelta(seconds=fraction)
