"""`Telescope`: a telescope's offsets, focus and dome weather as a Tango device (`lab/telescope/1`),
and nodding between the frames of a camera's run.

`Offset([ra, dec])` moves to offsets from the pointing (arcsec) and returns at once; the device
is MOVING until the telescope says it is in position. `focus` is written through.

Nodding (the original's gtc machine: idle -> waiting for a frame -> nodding): `StartNodding`
goes to the first offset of `nodPattern` and then, each time the camera named by `Camera`
counts a new frame (its `frameCounter`, looked at every poll), to the next offset, around the
pattern. `nodReadyFrame` says which of the camera's frames the telescope stands in position for:
a camera whose `Telescope` property names this device opens its shutter for frame N only once
`nodReadyFrame` is N, so each frame of a run is taken at its own offset, still.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import tango
from tango import AttrWriteType, DevState, Except
from tango.server import attribute, command, device_property

from ..core.errors import for_tango
from ..core.hardware import HardwareDevice, polled, writable
from ..core.link import Link
from ..core.server import serve
from .driver import Position, TelescopeLink
from .protocol import FOCUS_RANGE, OFFSET_RANGE

#: Offsets closer than this are the same place, arcsec (the link carries thousandths).
SAME_ARCSEC = 0.002
#: How long a look at the camera's frame counter may take, ms.
CAMERA_TIMEOUT_MS = 1000
#: The dome's air is too wet above this humidity, or with the dew point this close to the air.
HUMIDITY_LIMIT = 90.0
DEW_MARGIN_C = 2.0
MAX_PATTERN = 100


@dataclass
class Nodding:
    """Where a nodding run stands."""

    pattern: list[tuple[float, float]]
    index: int
    target: tuple[float, float] | None  # the offset being moved to (None: standing at the pattern's)
    target_frame: int  # the camera's frame the move is for
    ready_frame: int = 0  # the camera's frame the telescope stands in position for


class Telescope(HardwareDevice):
    """A telescope: offsets, in-position, focus, humidity and dew point; nodding on a camera's frames."""

    Camera = device_property(dtype=str, default_value="",
                             doc="The camera whose frames nodding follows (lab/camera/2): its frameCounter")
    NodPattern = device_property(dtype=(float,), default_value=[],
                                 doc="The nod pattern's offsets, arcsec: ra1, dec1, ra2, dec2, ...")

    raOffset = polled(dtype=float, unit="arcsec", format="%.3f", abs_change=0.001,
                      doc="Offset from the pointing in right ascension, where the telescope is now")
    decOffset = polled(dtype=float, unit="arcsec", format="%.3f", abs_change=0.001,
                       doc="Offset from the pointing in declination, where the telescope is now")
    inPosition = polled(dtype=bool, doc="Arrived and settled at the offsets asked for")
    focus = writable(dtype=float, writes=TelescopeLink.set_focus, limits=FOCUS_RANGE, format="%.3f", abs_change=0.001,
                     doc="Focus position of the secondary mirror")
    humidity = polled(dtype=float, unit="%", format="%.1f", abs_change=0.1, max_alarm=HUMIDITY_LIMIT,
                      doc="Relative humidity at the dome")
    dewPoint = polled(dtype=float, unit="degC", format="%.2f", abs_change=0.01, doc="Dew point at the dome")
    airTemperature = polled(dtype=float, unit="degC", format="%.1f", abs_change=0.1, doc="Air temperature at the dome")
    nodding = polled(dtype=bool, doc="Whether the telescope nods on the camera's frames")
    nodIndex = polled(dtype=int, doc="The pattern's offset the telescope stands at or moves to (from 0)")
    nodReadyFrame = polled(dtype=int, doc="The camera's frame the telescope stands in position for (0: none yet)")

    @attribute(dtype=(float,), max_dim_x=2 * MAX_PATTERN, access=AttrWriteType.READ_WRITE, unit="arcsec",
               doc="Nod pattern: ra1, dec1, ra2, dec2, ... (offsets from the pointing); the next StartNodding's")
    def nodPattern(self) -> list[float]:
        return [value for pair in self._pattern for value in pair]

    @nodPattern.write
    def nodPattern(self, values: list[float]) -> None:
        self._pattern = self._pattern_of(list(values), "nodPattern")

    def init_device(self) -> None:
        self._nod_lock = threading.Lock()
        self._nod: Nodding | None = None
        self._camera: tango.DeviceProxy | None = None
        self._camera_problem = ""
        self._pattern: list[tuple[float, float]] = []
        super().init_device()
        self._pattern = self._pattern_of(list(self.NodPattern), "NodPattern")

    def create_driver(self, link: Link) -> TelescopeLink:
        return TelescopeLink(link)

    def poll(self) -> dict[str, Any]:
        position, weather = self.driver.position(), self.driver.weather()
        with self._nod_lock:
            if self._nod is not None:
                self._nod_step(self._nod, position)
            nod = self._nod
        return {
            "raOffset": position.ra, "decOffset": position.dec, "inPosition": position.in_position,
            "focus": position.focus, "humidity": weather.humidity, "dewPoint": weather.dew_point,
            "airTemperature": weather.air, **self._nod_values(nod),
        }

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        where = f"offsets {values['raOffset']:.2f}, {values['decOffset']:.2f} arcsec"
        nod = self._nod
        nodding = ""
        if nod is not None:
            nodding = (f"; nodding: offset {nod.index + 1} of {len(nod.pattern)}, "
                       + (f"ready for frame {nod.ready_frame}" if nod.target is None
                          else f"moving there for frame {nod.target_frame}"))
            if self._camera_problem:
                return DevState.ALARM, f"Nodding, but the camera {self.Camera} cannot be read: {self._camera_problem}"
        if values["humidity"] > HUMIDITY_LIMIT or values["airTemperature"] - values["dewPoint"] < DEW_MARGIN_C:
            return DevState.ALARM, (f"Risk of condensation: humidity {values['humidity']:.1f} %, dew point "
                                    f"{values['dewPoint']:.1f} degC, air {values['airTemperature']:.1f} degC; "
                                    f"{where}{nodding}")
        if not values["inPosition"]:
            return DevState.MOVING, f"Moving; {where}{nodding}"
        return DevState.ON, f"In position at {where}{nodding}"

    # -- commands ------------------------------------------------------------------------------

    @command(dtype_in=(float,), doc_in="[ra, dec]: offsets from the pointing, arcsec")
    def Offset(self, offsets: list[float]) -> None:
        """Move to these offsets from the pointing; returns at once (MOVING until in position)."""
        if self._nod is not None:
            self._refuse("Offset", "the telescope is nodding; run StopNodding first")
        if len(offsets) != 2:
            self._refuse("Offset", f"give two offsets, [ra, dec] in arcsec, not {len(offsets)} numbers")
        self.call_driver(self.driver.offset, *offsets)

    @command
    def StartNodding(self) -> None:
        """Go to the pattern's first offset, then to the next at each new frame of the camera."""
        if not self._pattern:
            self._refuse("StartNodding", "the nod pattern is empty; write nodPattern (ra1, dec1, ra2, dec2, ...)")
        if not self.Camera:
            self._refuse("StartNodding", "no Camera property names the camera whose frames to follow")
        try:
            frames = self._camera_frames()
        except tango.DevFailed as exc:
            self._refuse("StartNodding", f"the camera {self.Camera} cannot be read: {exc.args[0].desc.strip()}")
        first = self._pattern[0]
        self.call_driver(self.driver.offset, *first)
        with self._nod_lock:
            self._nod = Nodding(list(self._pattern), 0, first, frames + 1)
            values = self._nod_values(self._nod)
        self.info_stream(f"nodding on the frames of {self.Camera} over {len(self._pattern)} offsets")
        self.publish(values)

    @command
    def StopNodding(self) -> None:
        """Stay where the telescope is; frames no longer wait for it."""
        with self._nod_lock:
            self._nod = None
            values = self._nod_values(None)
        self.publish(values)

    # -- nodding -------------------------------------------------------------------------------

    def _nod_step(self, nod: Nodding, position: Position) -> None:
        """Once a move has arrived, stand ready for its frame; once the camera has that frame,
        move on to the next offset. (The poll thread's, under the nod lock.)"""
        try:
            frames = self._camera_frames()
            self._camera_problem = ""
        except tango.DevFailed as exc:
            self._camera_problem = exc.args[0].desc.strip()
            self._camera = None
            return
        if nod.target is not None:
            if position.in_position and _same((position.ra, position.dec), nod.target):
                nod.ready_frame, nod.target = nod.target_frame, None
            return
        if frames < nod.ready_frame - 1:  # the camera restarted and counts anew: here is for its next frame
            nod.ready_frame = frames + 1
        elif frames >= nod.ready_frame:
            nod.index = (nod.index + 1) % len(nod.pattern)
            nod.target, nod.target_frame = nod.pattern[nod.index], frames + 1
            self.driver.offset(*nod.target)

    def _camera_frames(self) -> int:
        if self._camera is None:
            camera = tango.DeviceProxy(self.Camera)
            camera.set_timeout_millis(CAMERA_TIMEOUT_MS)
            self._camera = camera
        return int(self._camera.read_attribute("frameCounter").value)

    @staticmethod
    def _nod_values(nod: Nodding | None) -> dict[str, Any]:
        if nod is None:
            return {"nodding": False, "nodIndex": 0, "nodReadyFrame": 0}
        return {"nodding": True, "nodIndex": nod.index, "nodReadyFrame": nod.ready_frame}

    def _pattern_of(self, values: list[float], what: str) -> list[tuple[float, float]]:
        if len(values) % 2 or len(values) > 2 * MAX_PATTERN:
            self._refuse(what, f"a pattern is pairs of offsets (ra, dec), at most {MAX_PATTERN}; "
                         f"{len(values)} numbers given")
        for value in values:
            if not OFFSET_RANGE.low <= value <= OFFSET_RANGE.high:
                self._refuse(what, f"offset {value:g} is out of range: allowed {OFFSET_RANGE}")
        return list(zip(values[::2], values[1::2]))

    def _refuse(self, what: str, reason: str) -> None:
        Except.throw_exception("Refused", for_tango(f"{what} refused: {reason}; nothing changed"),
                               f"{self.get_name()} {what}")


def _same(here: tuple[float, float], there: tuple[float, float]) -> bool:
    return all(abs(a - b) < SAME_ARCSEC for a, b in zip(here, there))


def main() -> None:
    serve(Telescope)


if __name__ == "__main__":
    main()
