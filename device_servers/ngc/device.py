"""`NgcCamera`: an ESO NGC CCD controller as a Tango device (`lab/camera/2`), on the same camera
vocabulary as the Archon's (device_servers/core/camera.py): `exposureTime`, `frames`, `Expose`,
`Abort`, `image`, `preview`, `frameCounter`, FITS files with the lab's state.

The poll reads the control server's online database (state, clocks, sequencer, the exposure's
status and count-down, frame and run numbers) and its read-out speed and window. `PowerOn` takes
it ONLINE with clocks and sequencer running, `PowerOff` back to STANDBY; `Online`, `Standby`,
`Off`, `Reset`, `Setup`, `StartSequencer`/`StopSequencer` are the server's own commands.
`LoadSetup` applies a whole JSON setup at once (read mode, setup parameters, header keywords,
acquisition), `AddHdu` appends a table to the last frame's FITS file (the original's `add_hdu`).

Each frame of a run is one NGC exposure (DET.NDIT 1): the frames of a run can then wait for a
nodding telescope between them. Its pixels are fetched in pieces, so `Abort` and the poll pass
between them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tango import DevState, Except
from tango.server import command, device_property

from tangolab.fits import append_table, parse_keywords

from ..core.camera import MAX_FRAMES, Camera
from ..core.errors import InstrumentError, LinkError, for_tango
from ..core.hardware import polled, writable
from ..core.operations import OperationFailed, Running
from ..core.server import serve
from .driver import FetchCut, Ngc
from .protocol import READ_MODES, REPLIES, parameter_problem

#: Seconds between two looks at the exposure while it runs.
EXPOSURE_POLL_S = 0.1
#: Expected transfer rate, bytes a second (a guess for the time left).
TRANSFER_BPS = 20e6
#: What `LoadSetup` takes.
SETUP_KEYS = ("read_mode", "setup", "header", "acquisition")
ACQUISITION_KEYS = ("exposure_time", "frames")
#: Exposure states in which the controller is busy with a frame.
BUSY = ("integrating", "reading")


class NgcCamera(Camera):
    """ESO NGC CCD controller: states, clocks, sequencer, runs of frames, the last image."""

    framing = REPLIES

    Detector = device_property(dtype=str, default_value="ESO NGC CCD", doc="The DETECTOR keyword of the files")

    controllerState = polled(dtype=str, doc="The control server's state: OFF, LOADED, STANDBY or ONLINE")
    clocks = polled(dtype=bool, doc="Whether the CCD's clock and bias voltages are enabled (cldc 0)")
    sequencer = polled(dtype=bool, doc="Whether the sequencer runs (the CCD is clocked)")
    exposureStatus = polled(dtype=str, doc="The controller's exposure status: idle, integrating, reading, success, "
                            "aborted")
    countDown = polled(dtype=float, unit="s", format="%.1f", abs_change=0.1,
                       doc="Seconds the controller's run still needs")
    runNumber = polled(dtype=int, doc="Runs the control server started since it started")
    readMode = writable(dtype=str, writes=Ngc.set_read_mode,
                        doc=f"Read-out speed: {' or '.join(READ_MODES)} (slow: less read noise)")
    width = polled(dtype=int, unit="px", doc="Frame width, overscan included (DET.WIN1.NX)")
    height = polled(dtype=int, unit="px", doc="Frame height (DET.WIN1.NY)")

    def create_driver(self, link: Any) -> Ngc:
        return Ngc(link)

    def poll(self) -> dict[str, Any]:
        summary = self.driver.summary()
        mode, width, height = self.driver.window()
        return {
            "controllerState": summary.state, "clocks": summary.clocks, "sequencer": summary.sequencer,
            "exposureStatus": summary.progress.exposure, "countDown": summary.progress.count_down,
            "runNumber": summary.run_no,
            "readMode": mode, "width": width, "height": height,
        }

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        state = values["controllerState"]
        if state != "ONLINE":
            return DevState.OFF, f"The NGC is {state}; run PowerOn"
        if values["exposureStatus"] in BUSY and self.running is None:
            return DevState.RUNNING, (f"The NGC is {values['exposureStatus']} an exposure this server did not start "
                                      "(before a restart?); run Abort to end it")
        if not values["clocks"] or not values["sequencer"]:
            stopped = "clocks disabled" if not values["clocks"] else "sequencer stopped"
            return DevState.OFF, f"The NGC is ONLINE, {stopped}; run PowerOn"
        return DevState.ON, f"ONLINE, {values['readMode']} read-out, {values['width']} x {values['height']} px"

    # -- the control server's commands -----------------------------------------------------------

    @command
    def PowerOn(self) -> None:
        """ONLINE, clocks enabled, sequencer started: ready to expose."""
        self.refuse_if_busy("PowerOn")
        self.call_driver(self._power_on)
        self._refresh()

    @command
    def PowerOff(self) -> None:
        """Sequencer stopped, clocks disabled, STANDBY (an exposure under way is aborted)."""
        if self.running is not None:
            self.Abort()
        self.call_driver(self._power_off)
        self._refresh()

    @command
    def Online(self) -> None:
        """The control server to ONLINE."""
        self._server_command("online")

    @command
    def Standby(self) -> None:
        """The control server to STANDBY (an exposure under way is aborted)."""
        self._server_command("standby")

    @command
    def Off(self) -> None:
        """The control server to LOADED: hardware off, software loaded."""
        self._server_command("off")

    @command
    def Reset(self) -> None:
        """Reset the controller: LOADED, clocks and sequencer off, the default setup."""
        self._server_command("reset")

    @command
    def StartSequencer(self) -> None:
        self.refuse_if_busy("StartSequencer")
        self.call_driver(self.driver.sequencer, True)

    @command
    def StopSequencer(self) -> None:
        self.refuse_if_busy("StopSequencer")
        self.call_driver(self.driver.sequencer, False)

    @command(dtype_in=(str,), doc_in="PAR VALUE pairs: DET.READ.CURNAME fast DET.WIN1.NX 1056")
    def Setup(self, words: list[str]) -> None:
        """Set setup parameters at once (all or none)."""
        self.refuse_if_busy("Setup")
        words = [word for line in words for word in line.split()]
        if not words or len(words) % 2:
            self._refuse("Setup", f"{' '.join(words)!r} is no list of PAR VALUE pairs")
        self._setup(dict(zip(words[::2], words[1::2])), "Setup")

    @command(dtype_in=str, doc_in='JSON: {"read_mode": "fast", "setup": {"DET.WIN1.NX": 544}, "header": '
             '{"OBJECT": "dark"}, "acquisition": {"exposure_time": 2.0, "frames": 3}}, every part optional')
    def LoadSetup(self, text: str) -> None:
        """A whole setup at once (the original's load_setup): checked whole first, nothing
        changed when any part is wrong."""
        self.refuse_if_busy("LoadSetup")
        try:
            setup, keywords, acquisition = _setup_of(text)
        except ValueError as exc:
            self._refuse("LoadSetup", str(exc))
        if setup:
            self.call_driver(self.driver.setup, setup)  # checked whole by _setup_of
        if keywords is not None:
            self._script_keywords = keywords
        if "exposure_time" in acquisition:
            self._exposure_time = acquisition["exposure_time"]
            self.get_device_attr().get_w_attr_by_name("exposureTime").set_write_value(self._exposure_time)
        if "frames" in acquisition:
            self._frames_per_run = acquisition["frames"]
            self.get_device_attr().get_w_attr_by_name("frames").set_write_value(self._frames_per_run)

    @command(dtype_in=str, doc_in='JSON: {"name": "TIMES", "columns": {"MJD": [60000.1, 60000.2], "FLAG": ["ok", '
             '"ok"]}}: columns of equal length, numbers or strings')
    def AddHdu(self, text: str) -> None:
        """Append a table to the last frame's FITS file (the original's add_hdu); the file is
        replaced whole, never left half-written."""
        if not self._last_file:
            self._refuse("AddHdu", "no frame has been written yet (lastFile is empty)")
        try:
            table = json.loads(text)
            if not isinstance(table, dict) or set(table) - {"name", "columns"} or "columns" not in table:
                raise ValueError('a table is {"name": "...", "columns": {"COLUMN": [values...]}}')
            append_table(Path(self._last_file), str(table.get("name", "TABLE")), table["columns"])
        except (ValueError, OSError) as exc:
            self._refuse("AddHdu", f"{exc}; {self._last_file} unchanged")

    def halt(self, immediate: bool) -> None:
        if self.running is not None or self.cached("exposureStatus", "")[0] in BUSY:
            self.call_driver(self.driver.command, "abort")

    # -- the camera's part -----------------------------------------------------------------------

    def exposure_refusal(self) -> str | None:
        state, clocks, sequencer = (self.cached(name, None)[0] for name in ("controllerState", "clocks", "sequencer"))
        if state != "ONLINE" or not clocks or not sequencer:
            return f"the NGC is {state or 'unknown'} (clocks {clocks}, sequencer {sequencer}); run PowerOn"
        if (exposure := self.cached("exposureStatus", "")[0]) in BUSY:
            return f"the NGC is {exposure} an exposure this server did not start; run Abort to end it"
        return None

    def frame_seconds(self) -> float:
        width, height = self.cached("width", 0)[0], self.cached("height", 0)[0]
        pixel = READ_MODES.get(self.cached("readMode", "slow")[0], max(READ_MODES.values()))
        return width * height * (pixel + 2 / TRANSFER_BPS)

    def take_frame(self, op: Running, seconds: float, opened: Callable[[], None]) -> np.ndarray | None:
        try:
            with self.link.lock:
                before = self.driver.progress().frame_count
                self.driver.setup({"DET.SEQ1.DIT": f"{seconds:g}", "DET.NDIT": 1})
                self.driver.command("start")
            opened()
            total = seconds + self.frame_seconds()
            while op.sleep(EXPOSURE_POLL_S):
                progress = self.driver.progress()
                if progress.frame_count > before:
                    break
                if progress.exposure in ("aborted", "failed") and not progress.active:
                    raise OperationFailed(f"the NGC ended the exposure: {progress.exposure}")
                op.report(90 * (total - min(progress.count_down, total)) / max(total, 1e-9), progress.count_down)
            else:
                return None  # Stop or Abort: halt() told the controller
            width, height = self.driver.geometry()
            transfer = time.perf_counter()
            image = self.driver.fetch_image(
                before + 1, width, height, keep_going=lambda: not op.stopping,
                progress=lambda done, total: op.report(90 + 10 * done / total),
            )
        except FetchCut as exc:
            raise OperationFailed(f"no image: {exc}") from None
        except InstrumentError as exc:
            raise OperationFailed(str(exc)) from None
        except LinkError as exc:
            raise OperationFailed(f"no image: the link failed: {exc}") from None
        if image is not None:
            self.transfer_rate = image.nbytes / 1e6 / max(time.perf_counter() - transfer, 1e-9)
        return image

    # -- internals -------------------------------------------------------------------------------

    def _power_on(self) -> None:
        with self.link.lock:
            self.driver.command("online")
            self.driver.clocks(True)
            self.driver.sequencer(True)

    def _power_off(self) -> None:
        with self.link.lock:
            self.driver.sequencer(False)
            self.driver.clocks(False)
            self.driver.command("standby")

    def _server_command(self, name: str) -> None:
        if name != "online" and self.running is not None:
            self.Abort()
        self.refuse_if_busy(name)
        self.call_driver(self.driver.command, name)
        self._refresh()

    def _refresh(self) -> None:
        """The controller's new state in the cache now: a script's Expose right after PowerOn is
        judged on it, not on the poll before."""
        self.publish(self.call_driver(self.poll))

    def _setup(self, values: dict[str, Any], what: str) -> None:
        problems = [problem for name, value in values.items() if (problem := parameter_problem(name, str(value)))]
        if problems:
            self._refuse(what, "; ".join(problems))
        self.call_driver(self.driver.setup, values)

    def _refuse(self, what: str, reason: str) -> None:
        Except.throw_exception("BadSetup", for_tango(f"{what} refused: {reason}; nothing changed"),
                               f"{self.get_name()} {what}")


def _setup_of(text: str) -> tuple[dict[str, Any], list | None, dict[str, Any]]:
    """`LoadSetup`'s JSON as setup parameters, header keywords (None: not given) and acquisition;
    ValueError saying what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or (unknown := set(data) - set(SETUP_KEYS)):
        raise ValueError(f"a setup is an object of {', '.join(SETUP_KEYS)}"
                         + (f", not {', '.join(sorted(unknown))}" if isinstance(data, dict) else ""))
    setup = dict(data.get("setup") or {})
    if "read_mode" in data:
        setup["DET.READ.CURNAME"] = data["read_mode"]
    problems = [problem for name, value in setup.items() if (problem := parameter_problem(name, str(value)))]
    if problems:
        raise ValueError("; ".join(problems))
    keywords = None
    if "header" in data:
        if not isinstance(data["header"], dict):
            raise ValueError('"header" is an object of KEYWORD: value')
        keywords = parse_keywords(f"{name} = {value}" for name, value in data["header"].items())
    acquisition = data.get("acquisition") or {}
    if not isinstance(acquisition, dict) or (unknown := set(acquisition) - set(ACQUISITION_KEYS)):
        raise ValueError(f'"acquisition" is an object of {", ".join(ACQUISITION_KEYS)}')
    seconds, frames = acquisition.get("exposure_time", 0.0), acquisition.get("frames", 1)
    if not isinstance(seconds, (int, float)) or not 0 <= seconds <= 3600:
        raise ValueError(f"exposure_time must be 0 to 3600 s, not {seconds!r}")
    if not isinstance(frames, int) or not 1 <= frames <= MAX_FRAMES:
        raise ValueError(f"frames must be a whole number 1 to {MAX_FRAMES}, not {frames!r}")
    return setup, keywords, acquisition


def main() -> None:
    serve(NgcCamera)


if __name__ == "__main__":
    main()
