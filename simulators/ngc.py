"""ESO NGC CCD controller simulator: its control server's commands and online database
(device_servers/ngc/protocol.py), runs of frames timed by DIT, NDIT and the read-out speed,
and the same CCD as the Archon's (simulators/ccd.py): its dark level follows the CCD
temperature, read from the Peltier controller that cools it when one is named.

A run (`start`) exposes DET.NDIT frames of DET.SEQ1.DIT seconds, each read out at the speed of
DET.READ.CURNAME; `exposure.countDown` counts the run's seconds down, `exposure.frameCount`
numbers every frame read out since the server started, and the last `FRAMES_HELD` frames can
be fetched. `stop` ends the integration under way early and reads it out; `abort` drops it.

Control port, beyond the common faults:

    light E_PER_S      the light source's flux on each pixel, electrons a second (0: dark)
    temperature DEGC   the CCD temperature when no attribute gives it
    fetchcut on|off    a fetch sends only half of what it announces
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from device_servers.core.framing import definite_length_block
from device_servers.ngc.protocol import FETCH_MAX, PARAMETERS, READ_MODES, parameter_problem

from .ccd import CcdTemperature, make_image
from .core import _reply_fault

#: Frames the server keeps for fetching, the newest last.
FRAMES_HELD = 3
DEFAULTS = {"DET.SEQ1.DIT": "1.0", "DET.NDIT": "1", "DET.READ.CURNAME": "fast", "DET.WIN1.NX": "544",
            "DET.WIN1.NY": "512", "DET.WIN1.OVSCX": "32"}


def _goes_to(state: str) -> Callable[..., str]:
    """The command that takes the control server to `state` (a run under way is aborted)."""

    def command(self: NgcSimulator, *arguments: str) -> str:
        if arguments:
            return f"NOK {state.lower()} takes no arguments"
        if self.exposure in ("integrating", "reading"):
            self._end_run("aborted")
        self.state = state
        return ""

    return command


class NgcSimulator(CcdTemperature):
    """ESO NGC CCD controller (control server commands, online database, runs of frames)."""

    kind = "ngc"
    default_port = 8080
    garbage_end = b"\n"

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self.state = "LOADED"
        self.clocks = False
        self.sequencer = False
        self.setup = dict(DEFAULTS)
        self.exposure = "idle"
        self.phase_time = 0.0
        self.frame_no = 0  # frames of the run read out
        self.frame_count = 0  # frames read out since the start
        self.run_no = 0
        self.held: dict[int, bytes] = {}
        self._run: tuple[float, int, float] = (0.0, 0, 0.0)  # DIT, NDIT, seconds a readout takes
        self._integrated = 0.0  # seconds the frame under readout integrated

    # -- the protocol ----------------------------------------------------------------------------

    def handle(self, frame: bytes) -> bytes | None:
        line = self.framing.payload(frame).decode("ascii", errors="replace").strip()
        self.received.append(line)
        words = line.split()
        if not words:
            return b"NOK empty command\n"
        handler = self._COMMANDS.get(words[0])
        if handler is None:
            return f"NOK unknown command {words[0]} (known: {', '.join(self._COMMANDS)})\n".encode()
        answer = handler(self, *words[1:])
        if isinstance(answer, bytes):
            return answer
        return (answer if answer.startswith("NOK") else f"OK {answer}".rstrip()).encode() + b"\n"

    def _online(self, *arguments: str) -> str:
        if self.state == "OFF":
            return "NOK online refused: the control server is OFF (run off to load it)"
        return _goes_to("ONLINE")(self, *arguments)

    def _standby(self, *arguments: str) -> str:
        if self.state == "OFF":
            return "NOK standby refused: the control server is OFF (run off to load it)"
        return _goes_to("STANDBY")(self, *arguments)

    def _reset(self, *arguments: str) -> str:
        answer = _goes_to("LOADED")(self, *arguments)
        if not answer:
            self.clocks = self.sequencer = False
            self.setup = dict(DEFAULTS)
        return answer

    def _start(self, *arguments: str) -> str:
        problem = (
            "takes no arguments" if arguments
            else f"the state is {self.state} (ONLINE needed)" if self.state != "ONLINE"
            else "the clocks are disabled (cldc 0 enable)" if not self.clocks
            else "the sequencer is stopped (seq 0 start)" if not self.sequencer
            else "an exposure runs" if self.exposure in ("integrating", "reading")
            else None
        )
        if problem:
            return f"NOK start refused: {problem}"
        width, height = int(self.setup["DET.WIN1.NX"]), int(self.setup["DET.WIN1.NY"])
        readout = width * height * READ_MODES[self.setup["DET.READ.CURNAME"]]
        self._run = (float(self.setup["DET.SEQ1.DIT"]), int(self.setup["DET.NDIT"]), readout)
        self.run_no += 1
        self.frame_no = 0
        self.exposure, self.phase_time = "integrating", 0.0
        return ""

    def _stop(self, *arguments: str) -> str:
        if self.exposure == "integrating":
            self._read_out(self.phase_time)
        if self.exposure == "reading":
            self._run = (self._run[0], self.frame_no + 1, self._run[2])  # this frame is the run's last
        return ""

    def _abort(self, *arguments: str) -> str:
        if self.exposure in ("integrating", "reading"):
            self._end_run("aborted")
        return ""

    def _status(self, *arguments: str) -> str:
        if not arguments:
            return self.state
        name = arguments[0]
        return self.setup.get(name, f"NOK unknown parameter {name}")

    def _setup(self, *arguments: str) -> str:
        if not arguments or len(arguments) % 2:
            return "NOK setup takes PAR VALUE pairs"
        pairs = dict(zip(arguments[::2], arguments[1::2]))
        for name, value in pairs.items():
            if (problem := parameter_problem(name, value)) is not None:
                return f"NOK setup refused: {problem}"
        if self.exposure in ("integrating", "reading"):
            return "NOK setup refused: an exposure runs"
        self.setup.update(pairs)
        return ""

    def _cldc(self, *arguments: str) -> str:
        if arguments not in (("0", "enable"), ("0", "disable")):
            return "NOK cldc takes 0 enable or 0 disable"
        if self.state != "ONLINE" and arguments[1] == "enable":
            return f"NOK cldc refused: the state is {self.state} (ONLINE needed)"
        self.clocks = arguments[1] == "enable"
        if not self.clocks and self.exposure in ("integrating", "reading"):
            self._end_run("aborted")
        return ""

    def _seq(self, *arguments: str) -> str:
        if arguments == ("trigger",):
            return ""
        if arguments not in (("0", "start"), ("0", "stop"), ("start",), ("stop",)):
            return "NOK seq takes 0 start, 0 stop or trigger"
        if arguments[-1] == "start" and not self.clocks:
            return "NOK seq refused: the clocks are disabled (cldc 0 enable)"
        self.sequencer = arguments[-1] == "start"
        if not self.sequencer and self.exposure in ("integrating", "reading"):
            self._end_run("aborted")
        return ""

    def _db_read(self, *arguments: str) -> str:
        if len(arguments) != 1:
            return "NOK dbRead takes one attribute"
        name = arguments[0].rpartition(":")[2].strip('"')  # "<alias>ngcircon_ircam1:exposure.time" too
        values = self._database()
        if name not in values:
            return f"NOK dbRead: no attribute {name} (known: {', '.join(values)})"
        return f"{name} = {values[name]}"

    def _fetch(self, *arguments: str) -> bytes | str:
        try:
            number, offset, length = (int(argument) for argument in arguments)
        except ValueError:
            return "NOK fetch takes FRAME OFFSET LENGTH, whole numbers"
        data = self.held.get(number)
        if data is None:
            held = ", ".join(map(str, self.held)) or "none"
            return f"NOK fetch refused: frame {number} is not held (held: {held})"
        if not (0 <= offset < len(data) and 0 < length <= FETCH_MAX):
            return f"NOK fetch refused: offset 0 to {len(data) - 1} and length 1 to {FETCH_MAX} bytes"
        piece = data[offset: offset + length]
        block = definite_length_block(piece)
        if "fetchcut" in self.faults:
            block = block[: len(block) // 2]
        return b"OK " + block + b"\n"

    _COMMANDS: ClassVar[dict[str, Callable[..., bytes | str]]] = {
        "start": _start, "stop": _stop, "abort": _abort, "online": _online, "standby": _standby,
        "off": _goes_to("LOADED"), "reset": _reset, "exit": _goes_to("OFF"), "status": _status,
        "setup": _setup, "cldc": _cldc, "seq": _seq, "dbRead": _db_read, "fetch": _fetch,
    }

    def spoil(self, fault: str, reply_: bytes) -> bytes:
        if fault == "fetchcut":
            return reply_
        return super().spoil(fault, reply_)

    # -- the run ---------------------------------------------------------------------------------

    def _database(self) -> dict[str, object]:
        dit, ndit, readout = self._run
        left = 0.0
        if self.exposure == "integrating":
            left = (dit - self.phase_time) + readout + (ndit - self.frame_no - 1) * (dit + readout)
        elif self.exposure == "reading":
            left = (readout - self.phase_time) + (ndit - self.frame_no - 1) * (dit + readout)
        return {
            "system.stateName": self.state,
            "system.subStateName": "active" if self.exposure in ("integrating", "reading") else "idle",
            "cldc_0.statusName": "enabled" if self.clocks else "disabled",
            "seq_0.statusName": "running" if self.sequencer else "idle",
            "exposure.time": f"{dit * ndit:g}",
            "exposure.countDown": f"{max(left, 0.0):.3f}",
            "exposure.expStatusName": self.exposure,
            "exposure.frameNo": self.frame_no,
            "exposure.frameCount": self.frame_count,
            "exposure.runNo": self.run_no,
        }

    def _read_out(self, integrated: float) -> None:
        self.exposure, self.phase_time, self._integrated = "reading", 0.0, integrated

    def _end_run(self, outcome: str) -> None:
        self.exposure, self.phase_time = outcome, 0.0

    def step(self, dt: float) -> None:
        if self.exposure not in ("integrating", "reading"):
            return
        self.phase_time += dt
        dit, ndit, readout = self._run
        if self.exposure == "integrating" and self.phase_time >= dit:
            over = self.phase_time - dit
            self._read_out(dit)
            self.phase_time = over
        if self.exposure != "reading" or self.phase_time < readout:
            return
        width, height = int(self.setup["DET.WIN1.NX"]), int(self.setup["DET.WIN1.NY"])
        image = make_image(self.rng, width, height, int(self.setup["DET.WIN1.OVSCX"]), self._integrated,
                           self.ccd_temperature, self.light)
        self.frame_count += 1
        self.frame_no += 1
        self.held[self.frame_count] = image.tobytes()
        for old in sorted(self.held)[:-FRAMES_HELD]:
            del self.held[old]
        if self.frame_no >= ndit:
            self._end_run("success")
        else:
            self.exposure, self.phase_time = "integrating", 0.0

    def readings(self) -> dict[str, object]:
        return {"temperature": self.ccd_temperature}

    # -- control port ----------------------------------------------------------------------------

    def _control_help(self) -> str:
        return super()._control_help() + " | light E_PER_S | temperature DEGC | fetchcut on|off"

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **CcdTemperature._CONTROL,
        "fetchcut": _reply_fault("fetchcut"),
    }


__all__ = ["PARAMETERS", "NgcSimulator"]
