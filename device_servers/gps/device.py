"""`GpsReceiver`: a GPS receiver's NMEA stream as a Tango device (`lab/gps/1`), as HiPERCAM's
rack watched its clock's receiver: fix, satellites in use and in view, position, and how far the
receiver's UTC is from this host's clock.

State: ON with a fix, ALARM without one (saying how many satellites are in view), FAULT when
the stream stops or is garbled.
"""

from __future__ import annotations

from typing import Any

from tango import DevState
from tango.server import device_property

from ..core.hardware import HardwareDevice, polled
from ..core.link import Link
from ..core.server import serve
from .driver import GpsDriver
from .protocol import FRAMING


class GpsReceiver(HardwareDevice):
    """A GPS receiver streaming NMEA 0183 (GGA, GSV, RMC) on a serial line."""

    framing = FRAMING
    write_terminator = b"\r\n"

    BaudRate = device_property(dtype=int, default_value=4800, doc="Serial links: bits per second (NMEA 0183: 4800)")
    Timeout = device_property(
        dtype=float, default_value=2.5, doc="Seconds without a sentence before the receiver counts as silent"
    )
    PollPeriod = device_property(dtype=float, default_value=0.1, doc="Seconds between two reads of a burst")

    fix = polled(dtype=bool, doc="Whether the receiver has a position fix (GGA quality above 0, RMC valid)")
    fixQuality = polled(dtype=int, doc="GGA fix quality: 0 none, 1 GPS, 2 DGPS, 4 RTK...")
    satellitesInUse = polled(dtype=int, doc="Satellites used in the fix (GGA)")
    satellitesInView = polled(dtype=int, doc="Satellites in view (GSV)")
    latitude = polled(dtype=float, unit="deg", format="%10.6f", abs_change=1e-6, doc="North positive")
    longitude = polled(dtype=float, unit="deg", format="%11.6f", abs_change=1e-6, doc="East positive")
    altitude = polled(dtype=float, unit="m", format="%7.1f", abs_change=0.1, doc="Above mean sea level")
    timeOffset = polled(
        dtype=float, unit="s", format="%8.3f", abs_change=0.001,
        doc="The receiver's UTC minus this host's clock as its RMC arrived (late by the transmission)",
    )

    def create_driver(self, link: Link) -> GpsDriver:
        return GpsDriver(link)

    def poll(self) -> dict[str, Any]:
        cycle = self.driver.read_cycle()
        fix = cycle.fix
        return {
            "fix": bool(fix and fix.quality > 0 and cycle.valid),
            "fixQuality": fix.quality if fix else None,
            "satellitesInUse": fix.satellites if fix else None,
            "satellitesInView": cycle.in_view,
            "latitude": fix.latitude if fix else None,
            "longitude": fix.longitude if fix else None,
            "altitude": fix.altitude if fix else None,
            "timeOffset": cycle.offset,
        }

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        in_view = values["satellitesInView"]
        if not values["fix"]:
            return DevState.ALARM, f"No fix ({in_view if in_view is not None else 'no'} satellites in view)"
        return DevState.ON, (f"Fix with {values['satellitesInUse']} of {in_view} satellites; "
                             f"UTC {values['timeOffset']:+.3f} s from this host")


def main() -> None:
    serve(GpsReceiver)


if __name__ == "__main__":
    main()
