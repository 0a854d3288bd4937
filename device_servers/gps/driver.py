"""Driver of a GPS receiver that streams NMEA 0183 (protocol.py): no requests, one burst of
sentences a second; `read_cycle` reads until a burst's RMC and returns what it said.

    gps = GpsDriver(SerialLink("/dev/ttyUSB1", framing=FRAMING, write_terminator=b"",
                               serial_options={"baudrate": 4800}, timeout=2.5))
    gps.link.open()
    gps.read_cycle()    # Cycle(fix=Fix(quality=1, satellites=8, ...), in_view=11, valid=True, offset=-0.04)

A receiver that goes silent is a `LinkError` (the read's time-out); a line that is no sentence,
or whose checksum disagrees, a `GarbledReply`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..core.link import Link
from .protocol import Fix, parse, parse_gga, parse_gsv, parse_rmc


@dataclass(frozen=True)
class Cycle:
    fix: Fix | None  # the burst's GGA, None if it had none
    in_view: int | None  # satellites in view (GSV)
    valid: bool  # RMC's status: A
    #: The receiver's UTC of the fix minus this host's clock when its RMC arrived, seconds (the
    #: serial transmission makes it late by some tens of ms).
    offset: float | None


class GpsDriver:
    """One NMEA receiver on a link."""

    def __init__(self, link: Link) -> None:
        self.link = link

    def read_cycle(self) -> Cycle:
        """The sentences up to the next RMC (a burst ends with it)."""
        fix, in_view = None, None
        while True:
            line = self.link.read_frame()
            arrived = time.time()
            kind, fields = parse(line)
            if kind == "GGA":
                fix = parse_gga(fields)
            elif kind == "GSV":
                in_view = parse_gsv(fields)
            elif kind == "RMC":
                valid, when = parse_rmc(fields)
                return Cycle(fix, in_view, valid, None if when is None else when.timestamp() - arrived)
