"""`CcdController`: an STA Archon CCD controller as a Tango device (`lab/camera/1`).

The poll reads STATUS (power, rails, temperatures) and drains the controller's log into the
device's log. Exposures, images, previews and FITS files are every camera's
(device_servers/core/camera.py); here is what is the Archon's: a frame is exposed and read out
by its timing core into one of three buffers, watched through FRAME, and fetched in chunks of
1024-byte blocks that never hold the link for the whole frame, so that `Abort` and the status
poll pass between them. `Abort` ends an exposure at once, even during the readout or the
transfer; a transfer cut short fails the exposure: FAULT with the reason, and no image.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from tango import AttrQuality, DevState
from tango.server import attribute, command, device_property

from tangolab.fits import Keyword

from ..core.camera import Camera
from ..core.errors import LinkError
from ..core.hardware import polled
from ..core.operations import OperationFailed, Running
from ..core.server import serve
from .driver import Archon, FetchCut, Timing
from .protocol import LINES, RAILS

#: Seconds between two looks at the controller's frame buffers while an exposure runs.
FRAME_POLL_S = 0.1
#: Log lines taken per poll at most (the rest at the next poll).
LOG_LINES_PER_POLL = 10
#: Expected seconds to transfer one 1024-byte block (a guess for the time left; ~10 MB/s).
BLOCK_S = 1e-4
VALID = AttrQuality.ATTR_VALID


class CcdController(Camera):
    """STA Archon CCD controller: power, exposures as long operations, the last image."""

    framing = LINES

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

    @attribute(dtype=(str,), max_dim_x=len(RAILS), doc="Names of the supply rails of `railVoltages`")
    def railNames(self) -> list[str]:
        return list(RAILS)

    def init_device(self) -> None:
        self._timing: Timing | None = None
        super().init_device()

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

    def halt(self, immediate: bool) -> None:
        if self.running is not None:
            self.call_driver(self.driver.abort)

    # -- the camera's part -----------------------------------------------------------------------

    def exposure_refusal(self) -> str | None:
        power = self.cached("power", "")[0]
        return None if power == "ON" else f"the controller's power is {power or 'unknown'}; run PowerOn"

    def controller_keywords(self) -> list[Keyword]:
        ccd, _, quality = self.cached("ccdTemperature")
        return [Keyword("CCDTEMP", ccd, "CCD temperature, controller [degC]")] if quality == VALID else []

    def frame_seconds(self) -> float:
        """From the controller's configuration, read as each `Expose` starts: its frames use it."""
        timing = self._timing = self.call_driver(self.driver.timing)
        return timing.readout_s + BLOCK_S * timing.width * timing.height * 2 / 1024

    def take_frame(self, op: Running, seconds: float, opened: Callable[[], None]) -> np.ndarray | None:
        timing = self._timing
        try:
            before = self.driver.frame()
            self.driver.start_exposure(seconds)
        except LinkError as exc:
            raise OperationFailed(f"the exposure could not start: {exc}") from None
        opened()
        started = time.monotonic()
        number = before.write_buffer
        old_frame = before.buffers[number].frame
        readout = timing.readout_s
        while op.sleep(FRAME_POLL_S):
            buffer = self.driver.frame().buffers[number]
            if buffer.complete and buffer.frame != old_frame:
                break
            exposed = min(time.monotonic() - started, seconds)
            read = readout * buffer.lines / max(buffer.height or timing.height, 1)
            done = exposed + read
            op.report(90 * done / max(seconds + readout, 1e-9), max(seconds + readout - done, 0.0))
        else:
            return None  # Stop or Abort: halt() told the controller
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
        if image is not None:
            self.transfer_rate = image.nbytes / 1e6 / max(time.perf_counter() - transfer, 1e-9)
        return image


def main() -> None:
    serve(CcdController)


if __name__ == "__main__":
    main()
