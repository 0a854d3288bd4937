"""`ZaberStage`: a Zaber stage in the Binary protocol as a Tango motor (the focal-plane slide).

Several Zaber devices on one daisy chain share one serial line: each Tango device names its own
`DeviceNumber`, and devices of one server with the same `Url` share one line (core/line.py). The reply that ends
a move (or a homing, or a stop) arrives unasked; it wakes the poll at once, so the final
`Position` is published within one round trip instead of at the next poll.
"""

from __future__ import annotations

from tango.server import device_property

from ..core.link import Link
from ..core.server import serve
from ..core.stage import Stage
from .driver import ZaberBinaryStage
from .protocol import FRAMING

#: Microsteps per millimetre of a T-LSM-class lead-screw slide: 0.047625 µm per microstep.
MICROSTEPS_PER_MM = 1 / 0.000047625


class ZaberStage(Stage):
    """A Zaber stage (T-Series, Binary protocol) on a daisy chain."""

    framing = FRAMING
    write_terminator = b""

    BaudRate = device_property(dtype=int, default_value=9600, doc="Serial links: bits per second (Zaber Binary: 9600)")
    Step_per_unit = device_property(
        dtype=float, default_value=MICROSTEPS_PER_MM,
        doc="Microsteps per mm: Position = microsteps / Step_per_unit (T-LSM: 0.047625 µm per microstep)",
    )
    DeviceNumber = device_property(
        dtype=int, default_value=1, doc="The stage's number on the daisy chain (1 is nearest the computer)"
    )

    def create_driver(self, link: Link) -> ZaberBinaryStage:
        driver = ZaberBinaryStage(link, self.DeviceNumber)
        driver.on_motion_end = self._motion_ended
        return driver

    def on_connect(self) -> None:
        self.driver.configure()

    def _motion_ended(self, position: int) -> None:
        """Runs under the link's lock: a push here could wait for the device's monitor while a
        client's command holding it waits for the link. Wake the poll, which publishes it."""
        self._wake.set()


def main() -> None:
    serve(ZaberStage)


if __name__ == "__main__":
    main()
