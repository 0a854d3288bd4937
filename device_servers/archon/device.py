"""`CcdController`: an STA Archon CCD controller as a Tango device (`lab/camera/1`).

The poll reads STATUS (power, rails, temperatures) and drains the controller's log into the
device's log. `Expose` is a long operation (device_servers/core/operations.py): it returns at
once, the device is RUNNING with progress and time left through the exposure, the readout and
the transfer, and `Abort` ends it at once, even during the readout or the transfer (`Stop` too:
an exposure cannot wind down gently; its outcome is then "stopped").

A finished frame becomes `image` (an IMAGE of uint16, announced by a data-ready event carrying
the frame counter; read it on that event), `preview` (binned to at most `PreviewSize` pixels a
side, with change events: what screens draw) and `frameCounter`; and, when `FitsFolder` is set,
a FITS file (`tangolab/fits.py`: `run0001.fits`, ..., complete or absent) whose header holds
the exposure's keywords, the lab's state as the shutter opened (`FitsKeywords`: `KEYWORD =
device/attribute` lines, read from the live devices) and the keywords a script set with
`SetKeywords`. A transfer cut short fails the exposure: FAULT with the reason, and no image.

Images are never archived (the archiver refuses IMAGE attributes); the FITS writer keeps them.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tango import AttrQuality, AttrWriteType, DevState, Except
from tango.server import attribute, command, device_property

from tangolab.fits import Keyword, lab_keywords, parse_keywords, parse_sources, write_frame
from tangolab.images import binned

from ..core.errors import LinkError, for_tango
from ..core.hardware import polled
from ..core.operations import LongOperationDevice, OperationFailed, Running
from ..core.server import serve
from .driver import Archon, FetchCut, Timing
from .protocol import LINES, RAILS

#: Seconds between two looks at the controller's frame buffers while an exposure runs.
FRAME_POLL_S = 0.1
#: Log lines taken per poll at most (the rest at the next poll).
LOG_LINES_PER_POLL = 10
#: Expected seconds to transfer one 1024-byte block (a guess for the time left; ~10 MB/s).
BLOCK_S = 1e-4
MAX_SIDE = 8192
VALID, INVALID = AttrQuality.ATTR_VALID, AttrQuality.ATTR_INVALID


class CcdController(LongOperationDevice):
    """STA Archon CCD controller: power, exposures as long operations, the last image."""

    framing = LINES

    PreviewSize = device_property(dtype=int, default_value=256, doc="Longest side of `preview`, pixels")
    FitsFolder = device_property(dtype=str, default_value="",
                                 doc="Folder each frame is written to as runNNNN.fits (relative: to the server's "
                                 "working folder, a lab's run folder); empty: no files")
    FitsKeywords = device_property(
        dtype=(str,), default_value=[],
        doc="FITS keywords read from the lab as the shutter opens, one `KEYWORD = domain/family/member/attribute` "
        "a line (CCDTEMP = lab/tec/1/objectTemperature); a configured keyword replaces the device's own",
    )
    Detector = device_property(dtype=str, default_value="STA Archon CCD", doc="The DETECTOR keyword of the files")

    power = polled(dtype=str, doc="The controller's power: ON, OFF, STANDBY, NOT_CONFIGURED, ...")
    powerGood = polled(dtype=bool, doc="Whether every supply rail is within its range while the power is on")
    overheat = polled(dtype=bool, doc="The controller reports an overheating backplane")
    backplaneTemperature = polled(dtype=float, unit="degC", format="%.1f", abs_change=0.1,
                                  doc="Temperature of the controller's backplane")
    ccdTemperature = polled(dtype=float, unit="degC", format="%.2f", abs_change=0.01,
                            doc="The CCD's temperature as the controller's heater module reads it")
    railVoltages = polled(dtype=(float,), max_dim_x=len(RAILS), unit="V", format="%.3f", abs_change=0.01,
                          doc="Supply rail voltages, in the order of `railNames`")
    lastLog = polled(dtype=str, doc="The controller's latest log line")
    frameCounter = attribute(
        dtype=int, fget=lambda device: device._frames, change_event_implemented=True, change_event_detect=False,
        doc="Frames this device has received since it started (its own count: valid while the link is down)",
    )

    transferRate = attribute(
        dtype=float, unit="MB/s", format="%.1f", fget=lambda device: device._transfer_rate,
        doc="How fast the last frame came from the controller (its bytes over the time of its transfer)",
    )
    lastFile = attribute(
        dtype=str, fget=lambda device: device._last_file, change_event_implemented=True, change_event_detect=False,
        doc="The FITS file of the last frame (empty before the first)",
    )

    @attribute(dtype=(str,), max_dim_x=len(RAILS), doc="Names of the supply rails of `railVoltages`")
    def railNames(self) -> list[str]:
        return list(RAILS)

    @attribute(dtype=float, access=AttrWriteType.READ_WRITE, unit="s", format="%.3f", min_value=0,
               max_value=3600, doc="Exposure time of the next `Expose`")
    def exposureTime(self) -> float:
        return self._exposure_time

    @exposureTime.write
    def exposureTime(self, seconds: float) -> None:
        self._exposure_time = seconds

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

    def init_device(self) -> None:
        self._exposure_time = 1.0
        self._frames = 0
        self._last_file = ""
        self._transfer_rate = 0.0
        self._script_keywords: list[Keyword] = []
        self._images: dict[str, tuple[np.ndarray, float]] = {}
        super().init_device()
        self.get_device_attr().get_w_attr_by_name("exposureTime").set_write_value(self._exposure_time)
        self.set_data_ready_event("image", True)

    def create_driver(self, link: Any) -> Archon:
        return Archon(link)

    def poll(self) -> dict[str, Any]:
        status = self.driver.status()
        values: dict[str, Any] = {
            "power": status.power, "powerGood": status.power_good, "overheat": status.overheat,
            "backplaneTemperature": status.backplane_temperature, "ccdTemperature": status.ccd_temperature,
            "railVoltages": list(status.rails.values()),
        }
        for _ in range(min(status.log_lines, LOG_LINES_PER_POLL)):
            if (line := self.driver.fetch_log()) is None:
                break
            self.info_stream(f"Archon log: {line}")
            values["lastLog"] = line
        return values

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        ccd = values["ccdTemperature"]
        temperature = f"CCD {ccd:.1f} degC" if ccd is not None else "no CCD temperature"
        if values["overheat"]:
            return DevState.ALARM, (f"The controller overheats (backplane {values['backplaneTemperature']:.1f} degC);"
                                    " power it off and check its cooling")
        if values["power"] != "ON":
            return DevState.OFF, f"Power {values['power']}; {temperature}; run PowerOn"
        if not values["powerGood"]:
            rails = ", ".join(f"{name} {volts:.2f} V" for name, volts in zip(RAILS, values["railVoltages"]))
            return DevState.FAULT, f"Power not good: a supply rail is out of range ({rails}); run PowerOff"
        return DevState.ON, f"Power on; {temperature}"

    # -- commands ----------------------------------------------------------------------------

    @command
    def PowerOn(self) -> None:
        """Switch the CCD's supplies and clocks on."""
        self.refuse_if_busy("PowerOn")
        self.call_driver(self.driver.power_on)

    @command
    def PowerOff(self) -> None:
        """Switch the CCD's supplies off (an exposure under way ends)."""
        if self.running is not None:
            self.Abort()
        self.call_driver(self.driver.power_off)

    @command
    def Expose(self) -> None:
        """Take one frame of `exposureTime` seconds; returns at once (RUNNING until the image is here)."""
        self.refuse_if_busy("Expose")
        power = self.cached("power", "")[0]
        if power != "ON":
            Except.throw_exception(
                "PowerOff", for_tango(f"Expose refused: the controller's power is {power or 'unknown'}; run PowerOn"),
                f"{self.get_name()} Expose",
            )
        try:
            sources = parse_sources(self.FitsKeywords)
        except ValueError as exc:
            Except.throw_exception("BadFitsKeywords", for_tango(f"Expose refused: FitsKeywords {exc}"),
                                   f"{self.get_name()} Expose")
        seconds = self._exposure_time
        own = [Keyword("EXPTIME", seconds, "exposure time [s]"), Keyword("DETECTOR", self.Detector),
               *self._script_keywords]
        ccd, _, quality = self.cached("ccdTemperature")
        if quality == VALID:
            own.append(Keyword("CCDTEMP", ccd, "CCD temperature, controller [degC]"))
        timing: Timing = self.call_driver(self.driver.timing)
        before = self.call_driver(self.driver.frame)
        started = time.time()
        self.call_driver(self.driver.start_exposure, seconds)
        date = datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds").removesuffix("+00:00")
        own.insert(0, Keyword("DATE-OBS", date, "UTC of the shutter opening"))
        expected = seconds + timing.readout_s + BLOCK_S * timing.width * timing.height * 2 / 1024
        self.run_operation(
            f"exposing {seconds:g} s",
            lambda op: self._expose(op, seconds, timing, before, started, own, sources), expected,
        )

    @command(dtype_in=(str,), doc_in="`KEYWORD = value` lines; none: clear them")
    def SetKeywords(self, lines: list[str]) -> None:
        """Keywords written into every following frame's file until set again (a script's own:
        OBJECT = dark, SERIES = 3)."""
        try:
            self._script_keywords = parse_keywords(lines)
        except ValueError as exc:
            Except.throw_exception("BadKeywords", for_tango(f"SetKeywords refused: {exc}; nothing changed"),
                                   f"{self.get_name()} SetKeywords")

    @attribute(dtype=(str,), max_dim_x=256, doc="The keywords `SetKeywords` set for the following frames")
    def keywords(self) -> list[str]:
        return [f"{card.name} = {card.value}" for card in self._script_keywords]

    def halt(self, immediate: bool) -> None:
        if self.running is not None:
            self.call_driver(self.driver.abort)

    # -- the exposure's work -------------------------------------------------------------------

    def _expose(
        self, op: Running, seconds: float, timing: Timing, before: Any, started: float, own: list[Keyword],
        sources: dict[str, str],
    ) -> None:
        # the lab's state as the shutter opens, read beside the exposure: a slow device never delays an Abort
        lab: list[Keyword] = []
        reader = threading.Thread(target=lambda: lab.extend(lab_keywords(sources)), daemon=True,
                                  name=f"lab state for {self.get_name()}")
        if self.FitsFolder:
            reader.start()
        number = before.write_buffer
        old_frame = before.buffers[number].frame
        readout = timing.readout_s
        while op.sleep(FRAME_POLL_S):
            buffer = self.driver.frame().buffers[number]
            if buffer.complete and buffer.frame != old_frame:
                break
            exposed = min(op.elapsed, seconds)
            read = readout * buffer.lines / max(buffer.height or timing.height, 1)
            done = exposed + read
            op.report(90 * done / max(seconds + readout, 1e-9), max(seconds + readout - done, 0.0))
        else:
            return  # Stop or Abort: halt() told the controller
        transfer = time.perf_counter()
        try:
            image = self.driver.fetch_image(
                number, buffer.width, buffer.height, keep_going=lambda: not op.stopping,
                progress=lambda done, total: op.report(90 + 10 * done / total),
            )
        except FetchCut as exc:
            raise OperationFailed(f"no image: {exc}") from None
        except LinkError as exc:
            raise OperationFailed(f"no image: the link failed during the transfer: {exc}") from None
        if image is None:
            return
        self._transfer_rate = image.nbytes / 1e6 / max(time.perf_counter() - transfer, 1e-9)
        self._frames += 1
        self._images = {"image": (image, started), "preview": (binned(image, self.PreviewSize), started)}
        self.push_change_event("frameCounter", self._frames)
        self.push_change_event("preview", *self._images["preview"], VALID)
        self.push_data_ready_event("image", self._frames)
        if self.FitsFolder:
            reader.join()  # bounded by the reads' time-outs
            self._save(image, [*own, Keyword("FRAMENUM", self._frames, "frame counter of the device")], lab)

    def _save(self, image: np.ndarray, own: list[Keyword], lab: list[Keyword]) -> None:
        configured = {card.name for card in lab}
        cards = [card for card in own if card.name not in configured] + lab
        try:
            path = write_frame(Path(self.FitsFolder).resolve(), image, cards)  # lastFile says where, whatever the cwd
        except OSError as exc:
            raise OperationFailed(f"frame {self._frames} taken but not saved in {self.FitsFolder}: {exc}") from None
        self._last_file = str(path)
        self.push_change_event("lastFile", self._last_file)

    def _image_reading(self, name: str) -> tuple[np.ndarray, float, AttrQuality]:
        if name not in self._images:
            return np.zeros((0, 0), np.uint16 if name == "image" else np.float32), time.time(), INVALID
        value, when = self._images[name]
        return value, when, VALID


def main() -> None:
    serve(CcdController)


if __name__ == "__main__":
    main()
