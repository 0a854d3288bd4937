"""Cameras, once: what every CCD controller device shows, whatever the make (the Archon's
`CcdController`, the NGC's `NgcCamera`), so that a script takes a series on either without
knowing which.

`Expose` is a long operation (operations.py): it returns at once and takes `frames` frames of
`exposureTime` seconds, a run; the device is RUNNING with progress and time left through each
exposure, readout and transfer, and `Abort` (or `Stop`) ends it at once. Each frame becomes

- `image`: an IMAGE of uint16, announced by a data-ready event carrying the frame counter (read
  it on that event);
- `preview`: binned to at most `PreviewSize` pixels a side, with change events (what screens draw);
- `frameCounter`, and, when `FitsFolder` is set, a FITS file (tangolab/fits.py: `run0001.fits`,
  ... numbered after the highest already there, complete or absent, so a camera server killed
  mid-frame leaves no half file and, restarted, goes on after the last complete one) whose header
  holds the exposure's keywords, the lab's state as the shutter opened (`FitsKeywords`) and the
  keywords a script set with `SetKeywords`.

Nodding: with `Telescope` set and that telescope nodding, each frame waits, before its shutter
opens, until the telescope says it stands in position for that frame (`nodReadyFrame`), so that
the frames of a run alternate between the pattern's offsets.

A camera class provides `exposure_refusal` (why an exposure cannot start now), `controller_keywords`
(its own readings for the header), `frame_seconds` (how long one frame takes beyond its exposure)
and `take_frame` (open the shutter, wait, read out, fetch the image; None once the operation was
asked to stop), and sets `transfer_rate` after each fetch. Images are never archived (the archiver
refuses IMAGE attributes); the FITS files keep them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import tango
from astropy.io import fits
from tango import AttrQuality, AttrWriteType, Except
from tango.server import attribute, command, device_property

from tangolab.fits import Keyword, lab_keywords, parse_keywords, parse_sources, write_frame
from tangolab.images import binned

from .errors import for_tango
from .operations import LongOperationDevice, OperationFailed, Running

MAX_SIDE = 8192
MAX_FRAMES = 10_000
MAX_CARDS = 1000
#: How long a frame waits at most for a nodding telescope to stand in position, seconds.
NOD_WAIT_S = 120.0
#: Seconds between two looks at the telescope while a frame waits for it.
NOD_LOOK_S = 0.1
VALID, INVALID = AttrQuality.ATTR_VALID, AttrQuality.ATTR_INVALID


class Camera(LongOperationDevice):
    """A CCD controller (abstract): exposures as long operations, the last image, FITS files."""

    PreviewSize = device_property(dtype=int, default_value=256, doc="Longest side of `preview`, pixels")
    FitsFolder = device_property(dtype=str, default_value="",
                                 doc="Folder each frame is written to as runNNNN.fits (relative: to the server's "
                                 "working folder, a lab's run folder); empty: no files")
    FitsKeywords = device_property(
        dtype=(str,), default_value=[],
        doc="FITS keywords read from the lab as the shutter opens, one `KEYWORD = domain/family/member/attribute` "
        "a line (CCDTEMP = lab/tec/1/objectTemperature); a configured keyword replaces the device's own",
    )
    Detector = device_property(dtype=str, default_value="CCD", doc="The DETECTOR keyword of the files")
    Telescope = device_property(
        dtype=str, default_value="",
        doc="A telescope device (lab/telescope/1) whose nodding each frame waits for: while it nods, a frame's "
        "shutter opens only once the telescope stands in position for it; empty: no waiting",
    )

    frameCounter = attribute(
        dtype=int, fget=lambda device: device._frames, change_event_implemented=True, change_event_detect=False,
        doc="Frames this device has received since it started (its own count: valid while the link is down)",
    )
    transferRate = attribute(
        dtype=float, unit="MB/s", format="%.1f", fget=lambda device: device.transfer_rate,
        doc="How fast the last frame came from the controller (its bytes over the time of its transfer)",
    )
    lastFile = attribute(
        dtype=str, fget=lambda device: device._last_file, change_event_implemented=True, change_event_detect=False,
        doc="The FITS file of the last frame (empty before the first)",
    )
    lastHeader = attribute(
        dtype=(str,), max_dim_x=MAX_CARDS, fget=lambda device: device._last_header, change_event_implemented=True,
        change_event_detect=False, doc="The header of the last FITS file, one 80-character card a line, as written",
    )
    image = attribute(
        dtype=((np.uint16,),), max_dim_x=MAX_SIDE, max_dim_y=MAX_SIDE, unit="ADU",
        fget=lambda device: device._image_reading("image"),
        doc="The last complete frame, ADU; each new one is announced by a data-ready event (its counter)",
    )
    preview = attribute(
        dtype=((np.float32,),), max_dim_x=MAX_SIDE, max_dim_y=MAX_SIDE, unit="ADU",
        fget=lambda device: device._image_reading("preview"), change_event_implemented=True,
        change_event_detect=False, doc="The last frame averaged in bins, `PreviewSize` pixels a side at most",
    )

    @attribute(dtype=float, access=AttrWriteType.READ_WRITE, unit="s", format="%.3f", min_value=0,
               max_value=3600, doc="Exposure time of each frame of the next `Expose`")
    def exposureTime(self) -> float:
        return self._exposure_time

    @exposureTime.write
    def exposureTime(self, seconds: float) -> None:
        self._exposure_time = seconds

    @attribute(dtype=int, access=AttrWriteType.READ_WRITE, min_value=1, max_value=MAX_FRAMES,
               doc="Frames the next `Expose` takes, one after the other (a run); each is a file of its own")
    def frames(self) -> int:
        return self._frames_per_run

    @frames.write
    def frames(self, count: int) -> None:
        self._frames_per_run = count

    @attribute(dtype=(str,), max_dim_x=256, doc="The keywords `SetKeywords` set for the following frames")
    def keywords(self) -> list[str]:
        return [f"{card.name} = {card.value}" for card in self._script_keywords]

    # -- what a camera class provides ------------------------------------------------------------

    def exposure_refusal(self) -> str | None:
        """Why an exposure cannot start now (the power is off), or None."""
        return None

    def controller_keywords(self) -> list[Keyword]:
        """The controller's own readings for each frame's header (its CCD temperature)."""
        return []

    def frame_seconds(self) -> float:
        """Seconds one frame takes beyond its exposure: readout and transfer (an estimate); asked
        once by each `Expose`, as it starts."""
        return 0.0

    def take_frame(self, op: Running, seconds: float, opened: Callable[[], None]) -> np.ndarray | None:
        """Expose one frame of `seconds` (calling `opened()` as the shutter opens), read it out
        and fetch it; None when `op` was asked to stop; OperationFailed saying why there is none."""
        raise NotImplementedError

    # -- life cycle ------------------------------------------------------------------------------

    def init_device(self) -> None:
        self._exposure_time = 1.0
        self._frames_per_run = 1
        self._frames = 0
        self._last_file = ""
        self._last_header: list[str] = []
        self.transfer_rate = 0.0
        self._script_keywords: list[Keyword] = []
        self._images: dict[str, tuple[np.ndarray, float]] = {}
        super().init_device()
        for name, value in (("exposureTime", self._exposure_time), ("frames", self._frames_per_run)):
            self.get_device_attr().get_w_attr_by_name(name).set_write_value(value)
        self.set_data_ready_event("image", True)

    # -- commands --------------------------------------------------------------------------------

    @command
    def Expose(self) -> None:
        """Take `frames` frames of `exposureTime` seconds; returns at once (RUNNING until the last
        image is here)."""
        self.refuse_if_busy("Expose")
        if (reason := self.exposure_refusal()) is not None:
            Except.throw_exception("NotReady", for_tango(f"Expose refused: {reason}"), f"{self.get_name()} Expose")
        try:
            sources = parse_sources(self.FitsKeywords)
        except ValueError as exc:
            Except.throw_exception("BadFitsKeywords", for_tango(f"Expose refused: FitsKeywords {exc}"),
                                   f"{self.get_name()} Expose")
        seconds, count = self._exposure_time, self._frames_per_run
        own = [Keyword("EXPTIME", seconds, "exposure time [s]"), Keyword("DETECTOR", self.Detector),
               *self._script_keywords]
        name = f"exposing {seconds:g} s" if count == 1 else f"exposing {count} frames of {seconds:g} s"
        frame = seconds + self.frame_seconds()
        self.run_operation(name, lambda op: self._run(op, seconds, frame, count, own, sources), count * frame)

    @command(dtype_in=(str,), doc_in="`KEYWORD = value` lines; none: clear them")
    def SetKeywords(self, lines: list[str]) -> None:
        """Keywords written into every following frame's file until set again (a script's own:
        OBJECT = dark, SERIES = 3)."""
        try:
            self._script_keywords = parse_keywords(lines)
        except ValueError as exc:
            Except.throw_exception("BadKeywords", for_tango(f"SetKeywords refused: {exc}; nothing changed"),
                                   f"{self.get_name()} SetKeywords")

    def time_margin(self) -> float:
        """A nodding telescope may keep each frame waiting for its move."""
        return super().time_margin() + (NOD_WAIT_S * self._frames_per_run if self.Telescope else 0.0)

    # -- a run's work ----------------------------------------------------------------------------

    def _run(
        self, op: Running, seconds: float, frame: float, count: int, own: list[Keyword], sources: dict[str, str],
    ) -> None:
        """`count` frames of `seconds` exposure, each taking `frame` seconds in all."""
        telescope = self._telescope() if self.Telescope else None
        for index in range(count):
            share, after = 100.0 / count, (count - index - 1) * frame
            if telescope is not None and not self._wait_for_telescope(op, telescope):
                return
            shutter = _Shutter(sources if self.FitsFolder else {}, f"lab state for {self.get_name()}")
            image = self.take_frame(_Share(op, index * share, share, after), seconds, shutter.opened)
            if image is None:
                return
            started = shutter.opened_at or time.time()
            self._frames += 1
            self._images = {"image": (image, started), "preview": (binned(image, self.PreviewSize), started)}
            self.push_change_event("frameCounter", self._frames)
            self.push_change_event("preview", *self._images["preview"], VALID)
            self.push_data_ready_event("image", self._frames)
            if self.FitsFolder:
                date = datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds").removesuffix("+00:00")
                cards = [Keyword("DATE-OBS", date, "UTC of the shutter opening"), *own, *self.controller_keywords(),
                         Keyword("FRAMENUM", self._frames, "frame counter of the device")]
                if count > 1:
                    cards.append(Keyword("RUNFRAME", index + 1, f"frame of this run of {count}"))
                self._save(image, cards, shutter.lab())

    def _telescope(self) -> tango.DeviceProxy:
        try:
            proxy = tango.DeviceProxy(self.Telescope)
            proxy.set_timeout_millis(3000)
            return proxy
        except tango.DevFailed as exc:
            raise OperationFailed(f"the telescope {self.Telescope} cannot be reached: {exc.args[0].desc}") from None

    def _wait_for_telescope(self, op: Running, telescope: tango.DeviceProxy) -> bool:
        """Wait until a nodding telescope stands in position for the next frame; True to go on."""
        wanted = self._frames + 1
        deadline = time.monotonic() + NOD_WAIT_S
        while True:
            try:
                nodding, ready, in_position = (
                    reading.value for reading in telescope.read_attributes(["nodding", "nodReadyFrame", "inPosition"])
                )
            except tango.DevFailed as exc:
                raise OperationFailed(f"the telescope {self.Telescope} cannot be read: {exc.args[0].desc}") from None
            if not nodding or (ready >= wanted and in_position):
                return True
            if time.monotonic() > deadline:
                raise OperationFailed(f"the telescope {self.Telescope} was not in position for frame {wanted} "
                                      f"within {NOD_WAIT_S:g} s (it is ready for frame {ready})")
            if not op.sleep(NOD_LOOK_S):
                return False

    def _save(self, image: np.ndarray, own: list[Keyword], lab: list[Keyword]) -> None:
        configured = {card.name for card in lab}
        cards = [card for card in own if card.name not in configured] + lab
        try:
            path = write_frame(Path(self.FitsFolder).resolve(), image, cards)  # lastFile says where, whatever the cwd
        except OSError as exc:
            raise OperationFailed(f"frame {self._frames} taken but not saved in {self.FitsFolder}: {exc}") from None
        self._last_file = str(path)
        self._last_header = [card.image.rstrip() for card in fits.getheader(path).cards][:MAX_CARDS]
        self.push_change_event("lastFile", self._last_file)
        self.push_change_event("lastHeader", self._last_header)

    def _image_reading(self, name: str) -> tuple[np.ndarray, float, AttrQuality]:
        if name not in self._images:
            return np.zeros((0, 0), np.uint16 if name == "image" else np.float32), time.time(), INVALID
        value, when = self._images[name]
        return value, when, VALID


class _Shutter:
    """The moment a frame's shutter opens, and the lab's state read then, beside the exposure:
    a slow device never delays an Abort."""

    def __init__(self, sources: dict[str, str], name: str) -> None:
        self.opened_at: float | None = None
        self._cards: list[Keyword] = []
        self._reader = threading.Thread(target=lambda: self._cards.extend(lab_keywords(sources)), daemon=True,
                                        name=name) if sources else None

    def opened(self) -> None:
        self.opened_at = time.time()
        if self._reader is not None:
            self._reader.start()

    def lab(self) -> list[Keyword]:
        if self._reader is not None and self._reader.ident is not None:
            self._reader.join()  # bounded by the reads' time-outs
        return self._cards


class _Share:
    """One frame's view of a run's operation: its progress in the frame's share of the run, its
    time left with the frames after it."""

    def __init__(self, op: Running, start: float, share: float, after: float) -> None:
        self._op, self._start, self._share, self._after = op, start, share, after

    def __getattr__(self, name: str) -> Any:
        return getattr(self._op, name)

    def report(self, percent: float, time_left: float | None = None) -> None:
        self._op.report(self._start + self._share * percent / 100.0,
                        None if time_left is None else time_left + self._after)
