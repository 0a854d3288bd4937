"""`Monochromator`: a Newport Cornerstone 130B/260B as a Tango device (`lab/mono/1`).

`wavelength` is a movable: writing it starts the drive and returns at once, MOVING with
progress until the instrument says every motion ended. Writing `grating` changes the grating
(a turret that takes seconds: RUNNING), writing `filter` turns the filter wheel (RUNNING);
both are long operations (core/operations.py) with `Stop`/`Abort` (the instrument's `ABORT`).
`shutterOpen` opens and closes the shutter. A target the grating in use cannot reach is refused
in the instrument's words ("destination position for wavelength motion not allowed") and
nothing moves.
"""

from __future__ import annotations

from typing import Any

from tango import AttrWriteType, DevState

from ..core.framing import Lines
from ..core.hardware import polled, writable
from ..core.link import Link
from ..core.operations import LongOperationDevice
from ..core.server import serve
from .driver import Cornerstone, Status
from .protocol import (
    DRIVE_RANGE,
    FILTER_CHANGE_S,
    FILTERS,
    GRATING_CHANGE_S,
    GRATINGS,
    SETTLE_S,
    SLEW_NM_PER_S,
)


class Monochromator(LongOperationDevice):
    """Newport Cornerstone 130B/260B monochromator: wavelength, grating turret, filter wheel, shutter."""

    framing = Lines(b"\n")
    write_terminator = b"\r\n"  # and 9600 baud, 8N1, no handshake: the defaults of every device

    wavelength = polled(
        dtype=float, format="%8.3f", abs_change=1e-3, access=AttrWriteType.READ_WRITE, limits=DRIVE_RANGE,
        fset=lambda device, value: device.go_to(value),
        doc="The wavelength the monochromator passes; writing it starts the drive there and returns at once",
    )
    grating = polled(
        dtype=int, min_value=GRATINGS.low, max_value=GRATINGS.high, access=AttrWriteType.READ_WRITE,
        fset=lambda device, value: device.change_grating(value),
        doc="The grating in use; writing it turns the turret (seconds) and returns at once",
    )
    gratingLines = polled(dtype=int, unit="lines/mm", doc="Groove density of the grating in use")
    gratingLabel = polled(dtype=str, doc="The label of the grating in use")
    filter = polled(
        dtype=int, min_value=FILTERS.low, max_value=FILTERS.high, access=AttrWriteType.READ_WRITE,
        fset=lambda device, value: device.change_filter(value),
        doc="The filter wheel's position; writing it turns the wheel and returns at once",
    )
    shutterOpen = writable(dtype=bool, writes=Cornerstone.set_shutter, doc="Whether the shutter lets light through")
    identity = polled(dtype=str, doc="What the instrument says it is (INFO?)")

    def init_device(self) -> None:
        self._status: Status | None = None
        super().init_device()

    def create_driver(self, link: Link) -> Cornerstone:
        return Cornerstone(link)

    def on_connect(self) -> None:
        self.driver.configure()
        self.info_stream(f"{self.driver.identity} at {self.Url}")

    def poll(self) -> dict[str, Any]:
        status = self._status = self.driver.read_status()
        return {
            "wavelength": status.wavelength, "grating": status.grating, "gratingLines": status.lines,
            "gratingLabel": status.label, "filter": status.filter, "shutterOpen": status.shutter_open,
            "identity": self.driver.identity,
        }

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        status = self._status
        where = (f"{status.wavelength:.3f} nm on grating {status.grating} ({status.lines} lines/mm, "
                 f"{status.label}), filter {status.filter}, shutter {'open' if status.shutter_open else 'closed'}")
        if status.busy and self.running is None:  # moved from the hand controller or another port
            return DevState.MOVING, f"Moving: {where}"
        return DevState.ON, f"At {where}"

    def poll_period(self) -> float:
        return min(self.PollPeriod, 0.1) if self.running is not None else self.PollPeriod

    def halt(self, immediate: bool) -> None:
        self.call_driver(self.driver.abort)

    # -- long operations ------------------------------------------------------------------------

    def go_to(self, target: float) -> None:
        name = f"moving to {target:g} nm"
        self.refuse_if_busy(name)
        start = self.cached("wavelength")[0]

        def progress() -> float | None:
            if target == start:
                return None
            return 100.0 * (self.cached("wavelength")[0] - start) / (target - start)

        self._follow(name, abs(target - start) / SLEW_NM_PER_S + SETTLE_S, self.driver.go_to, target,
                     progress=progress, motion=True)

    def change_grating(self, number: int) -> None:
        self._follow(f"changing to grating {number}", GRATING_CHANGE_S, self.driver.change_grating, number)

    def change_filter(self, number: int) -> None:
        self._follow(f"turning to filter {number}", FILTER_CHANGE_S, self.driver.change_filter, number)

    def _follow(self, name: str, expected: float, start: Any, *args: Any, progress: Any = None,
                motion: bool = False) -> None:
        self.follow_operation(name, expected, start=lambda: self.call_driver(start, *args),
                              finished=lambda: not self.driver.busy, progress=progress, motion=motion)


def main() -> None:
    serve(Monochromator)


if __name__ == "__main__":
    main()
