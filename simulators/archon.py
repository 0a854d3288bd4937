"""STA Archon CCD controller simulator: its text protocol, three frame buffers, a binary FETCH,
and a CCD whose images are made as they are read out.

The timing script (`device_servers/archon/protocol.py`) exposes for `IntMS`, then reads the
frame out line by line at `PixelNS` a pixel into the write buffer (`FRAME` shows the lines
read); a complete buffer becomes the read buffer and the next one is written. The image is
computed when the readout starts (numpy, vectorised): bias, dark current that doubles every
`DARK_DOUBLING_K` of the CCD temperature, a light source's flux, Poisson noise, cosmic rays in
proportion to the exposure time, read noise, and overscan columns that hold bias and read
noise only. The CCD temperature is fixed (`--ccd-temperature`) or read once a second from a
Tango attribute (`--temperature-attribute lab/tec/1/objectTemperature`: the Peltier controller
that cools the CCD), and shows in STATUS as the HeaterX module's TEMPA.

Control port, beyond the common faults:

    light E_PER_S          the light source's flux on each pixel, electrons a second (0: dark)
    temperature DEGC       the CCD temperature when no attribute gives it
    powergood on|off       the supplies report power not good (POWERGOOD=0), with a log line
    overheat on|off        the backplane overheats (OVERHEAT=1), with a log line
    log TEXT               the controller logs a line (STATUS LOG counts it, FETCHLOG reads it)
    fetchcut on|off        a FETCH sends only half of its blocks
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np

from device_servers.archon.protocol import (
    BLOCK_BYTES,
    BUFFER_BASE,
    LINES,
    RAILS,
    block,
    key_text,
    message_id,
    parse_request,
    refusal,
    reply,
)

from .ccd import CcdTemperature, make_image
from .core import _on_off, _reply_fault

#: Ticks of the controller's TIMER a second (10 ns).
TICKS_PER_S = 100_000_000

CONFIGURATION = (
    ("SAMPLEMODE", "0"), ("LINECOUNT", "512"), ("PIXELCOUNT", "544"), ("OVERSCAN", "32"),
    ("PARAMETERS", "4"), ("PARAMETER0", "IntMS=1000"), ("PARAMETER1", "PixelNS=2000"),
    ("PARAMETER2", "Exposures=0"), ("PARAMETER3", "Abort=0"),
)
#: The modules in the backplane's slots: slot -> (type code, revision, version).
MODULES = {2: (2, 0, "1.0.548"), 4: (1, 0, "1.0.548"), 6: (9, 0, "1.0.548"), 8: (8, 0, "1.0.548"),
           10: (11, 1, "1.0.548")}
HEATER_SLOT = 10


class Buffer:
    """One frame buffer as FRAME describes it."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.complete = False
        self.frame = 0
        self.width = self.height = self.lines = 0
        self.timestamp = 0
        self.data = b""

    def keys(self) -> dict[str, object]:
        n = f"BUF{self.number}"
        return {
            f"{n}SAMPLE": 0, f"{n}COMPLETE": int(self.complete), f"{n}MODE": 0, f"{n}BASE": BUFFER_BASE[self.number],
            f"{n}FRAME": self.frame, f"{n}WIDTH": self.width, f"{n}HEIGHT": self.height,
            f"{n}PIXELS": self.width if self.lines else 0, f"{n}LINES": self.lines, f"{n}RAWBLOCKS": 0,
            f"{n}RAWLINES": 0, f"{n}RAWOFFSET": 0, f"{n}TIMESTAMP": f"{self.timestamp:016X}",
            f"{n}RETIMESTAMP": f"{self.timestamp:016X}", f"{n}FETIMESTAMP": f"{self.timestamp:016X}",
        }


class ArchonSimulator(CcdTemperature):
    """STA Archon CCD controller (text protocol, binary FETCH, images made on readout)."""

    kind = "archon"
    default_port = 4242
    framing = LINES
    garbage_end = b"\n"

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self.config: list[tuple[str, str]] = list(CONFIGURATION)
        self.parameters: dict[str, int] = {}
        self.geometry = (0, 0, 0)  # width, height, overscan as applied
        self.power = 2  # OFF
        self.power_good = True
        self.overheat = False
        self.log: list[str] = []
        self.status_count = 0
        self.clock = 0.0  # simulated seconds since power-up: TIMER
        self.buffers = {n: Buffer(n) for n in BUFFER_BASE}
        self.write_buffer, self.read_buffer = 1, 0
        self.frames = 0
        self.phase = "idle"  # exposing, reading
        self.phase_time = 0.0
        self._exposure: tuple[float, float] = (0.0, 0.0)  # seconds, CCD temperature
        self._image: np.ndarray | None = None
        self._apply()

    # -- the protocol ------------------------------------------------------------------------

    def handle(self, frame: bytes) -> bytes | None:
        self.received.append(frame)
        parsed = parse_request(frame)
        if parsed is None:
            return None
        reference, text = parsed
        word = message_id(frame)
        answer = self._COMMANDS[word](self, reference, text[len(word):]) if word else None
        if answer is None:
            self.log.append(f"unknown or refused command {text!r}"[:200])
            return refusal(reference)
        return answer

    def _system(self, ref: int, _: str) -> bytes:
        values: dict[str, object] = {
            "BACKPLANE_TYPE": 1, "BACKPLANE_REV": 4, "BACKPLANE_VERSION": "1.0.1054",
            "BACKPLANE_ID": "0123456789ABCDEF", "POWER_ID": "FEDCBA9876543210",
            "MOD_PRESENT": f"{sum(1 << (slot - 1) for slot in MODULES):X}",
        }
        for slot, (kind, revision, version) in MODULES.items():
            values.update({f"MOD{slot}_TYPE": kind, f"MOD{slot}_REV": revision,
                           f"MOD{slot}_VERSION": version, f"MOD{slot}_ID": f"{0xA0 + slot:016X}"})
        return reply(ref, key_text(values))

    def _status(self, ref: int, _: str) -> bytes:
        self.status_count += 1
        on = self.power == 4
        backplane = 85.0 if self.overheat else 31.5 + (6.0 if on else 0.0)
        values: dict[str, object] = {
            "VALID": 1, "COUNT": self.status_count, "LOG": len(self.log), "POWER": self.power,
            "POWERGOOD": int(on and self.power_good), "OVERHEAT": int(self.overheat),
            "BACKPLANE_TEMP": f"{backplane:.3f}",
        }
        for rail, volts in RAILS.items():
            sag = 1.0 if self.power_good else 0.7
            values[f"{rail}_V"] = f"{volts * sag if on else 0.0:.3f}"
            values[f"{rail}_I"] = f"{abs(volts) * 0.004 if on else 0.0:.3f}"
        for slot in MODULES:
            values[f"MOD{slot}/TEMP"] = f"{backplane + slot / 4:.3f}"
        values[f"MOD{HEATER_SLOT}/TEMPA"] = f"{self.ccd_temperature:.3f}"
        values[f"MOD{HEATER_SLOT}/TEMPB"] = f"{self.ccd_temperature - 5.0:.3f}"
        return reply(ref, key_text(values))

    def _frame(self, ref: int, _: str) -> bytes:
        values: dict[str, object] = {
            "TIMER": f"{round(self.clock * TICKS_PER_S):016X}", "RBUF": self.read_buffer, "WBUF": self.write_buffer,
        }
        for buffer in self.buffers.values():
            values.update(buffer.keys())
        return reply(ref, key_text(values))

    def _fetchlog(self, ref: int, _: str) -> bytes:
        return reply(ref, self.log.pop(0) if self.log else "(null)")

    def _poweron(self, ref: int, _: str) -> bytes:
        self.power = 4
        self.log.append("power on")
        return reply(ref)

    def _poweroff(self, ref: int, _: str) -> bytes:
        self._end_exposure()
        self.power = 2
        self.log.append("power off")
        return reply(ref)

    def _applyall(self, ref: int, _: str) -> bytes | None:
        try:
            self._apply()
        except ValueError as exc:
            self.log.append(f"APPLYALL refused: {exc}")
            return None
        return reply(ref)

    def _clearconfig(self, ref: int, _: str) -> bytes:
        self.config.clear()
        return reply(ref)

    def _rconfig(self, ref: int, argument: str) -> bytes | None:
        line = _hex(argument, 4)
        if line is None:
            return None
        return reply(ref, "=".join(self.config[line]) if line < len(self.config) else "")

    def _wconfig(self, ref: int, argument: str) -> bytes | None:
        line, (key, equals, value) = _hex(argument[:4], 4), argument[4:].partition("=")
        if line is None or not equals or not key or line > len(self.config):
            return None
        if line == len(self.config):
            self.config.append((key, value))
        else:
            self.config[line] = (key, value)
        return reply(ref)

    def _loadparams(self, ref: int, _: str) -> bytes | None:
        try:
            self.parameters = self._configured_parameters()
        except ValueError as exc:
            self.log.append(f"LOADPARAMS refused: {exc}")
            return None
        return reply(ref)

    def _fastloadparam(self, ref: int, argument: str) -> bytes | None:
        name, _, value = argument.strip().partition(" ")
        if name not in self.parameters or not value.strip().isdigit():
            return None
        number = int(value)
        if name == "Exposures" and number > 0 and self.power != 4:
            self.log.append("Exposures refused: the power is not on")
            return None
        self.parameters[name] = number
        if name == "Abort" and number:
            self._end_exposure()
            self.parameters["Abort"] = 0
        elif name == "Exposures" and number > 0 and self.phase == "idle":
            self._start_exposure()
        return reply(ref)

    def _fetch(self, ref: int, argument: str) -> bytes | None:
        address, count = _hex(argument[:8], 8), _hex(argument[8:], 8)
        if address is None or count is None or count == 0:
            return None
        number = next((n for n, base in BUFFER_BASE.items() if base <= address < base + 0x10000000), None)
        if number is None or not self.buffers[number].complete:
            self.log.append(f"FETCH refused: {address:08X} is no complete frame buffer")
            return None
        offset = address - BUFFER_BASE[number]
        data = self.buffers[number].data
        if "fetchcut" in self.faults:
            count = max(count // 2, 1) if count > 1 else 0
        return b"".join(
            block(ref, data[offset + i * BLOCK_BYTES: offset + (i + 1) * BLOCK_BYTES]) for i in range(count)
        )

    _COMMANDS: ClassVar[dict[str, Callable[..., bytes | None]]] = {
        "SYSTEM": _system, "STATUS": _status, "FRAME": _frame, "FETCHLOG": _fetchlog,
        "POWERON": _poweron, "POWEROFF": _poweroff, "APPLYALL": _applyall, "CLEARCONFIG": _clearconfig,
        "RCONFIG": _rconfig, "WCONFIG": _wconfig, "LOADPARAMS": _loadparams,
        "FASTLOADPARAM": _fastloadparam, "FETCH": _fetch,
    }

    def spoil(self, fault: str, reply_: bytes) -> bytes:
        if fault == "fetchcut":
            return reply_
        return super().spoil(fault, reply_)

    # -- configuration and the timing core -----------------------------------------------------

    def _configured(self, key: str) -> str:
        value = dict(self.config).get(key)
        if value is None:
            raise ValueError(f"the configuration has no {key}")
        return value

    def _configured_parameters(self) -> dict[str, int]:
        parameters = {}
        for key, value in self.config:
            if key.startswith("PARAMETER") and key[9:].isdigit():
                name, _, number = value.strip('"').partition("=")
                parameters[name] = int(number)
        missing = [name for name in ("IntMS", "PixelNS", "Exposures", "Abort") if name not in parameters]
        if missing:
            raise ValueError(f"the timing script needs the parameters {', '.join(missing)}")
        return parameters

    def _apply(self) -> None:
        width, height = int(self._configured("PIXELCOUNT")), int(self._configured("LINECOUNT"))
        overscan = int(dict(self.config).get("OVERSCAN", "0"))
        if not (1 <= width <= 8192 and 1 <= height <= 8192 and 0 <= overscan <= width):
            raise ValueError(f"a frame of {width} x {height} pixels with {overscan} overscan columns")
        parameters = self._configured_parameters()
        self._end_exposure()
        self.geometry, self.parameters = (width, height, overscan), parameters

    def _start_exposure(self) -> None:
        self.phase, self.phase_time = "exposing", 0.0
        buffer = self.buffers[self.write_buffer]
        buffer.complete, buffer.lines, buffer.data = False, 0, b""
        buffer.width, buffer.height = self.geometry[:2]

    def _end_exposure(self) -> None:
        """Stop exposing or reading at once; the write buffer stays incomplete."""
        if self.phase != "idle":
            self.log.append(f"{self.phase} ended early: buffer {self.write_buffer} incomplete")
        self.phase = "idle"
        self.parameters["Exposures"] = 0
        self._image = None

    def step(self, dt: float) -> None:
        self.clock += dt
        if self.phase == "idle":
            return
        self.phase_time += dt
        width, height, overscan = self.geometry
        buffer = self.buffers[self.write_buffer]
        if self.phase == "exposing":
            seconds = self.parameters["IntMS"] / 1000.0
            if self.phase_time < seconds:
                return
            self._image = make_image(self.rng, width, height, overscan, seconds, self.ccd_temperature, self.light)
            self.phase, self.phase_time = "reading", self.phase_time - seconds
        line_time = width * self.parameters["PixelNS"] * 1e-9
        buffer.lines = min(height, int(self.phase_time / line_time) if line_time > 0 else height)
        if buffer.lines < height:
            return
        self.frames += 1
        buffer.data = self._image.tobytes()
        buffer.complete, buffer.frame = True, self.frames
        buffer.timestamp = round(self.clock * TICKS_PER_S)
        self.read_buffer, self.write_buffer = self.write_buffer, self.write_buffer % len(self.buffers) + 1
        self._image, self.phase = None, "idle"
        self.parameters["Exposures"] -= 1
        if self.parameters["Exposures"] > 0:
            self._start_exposure()

    def readings(self) -> dict[str, object]:
        return {"temperature": self.ccd_temperature}

    # -- control port --------------------------------------------------------------------------

    def _control_powergood(self, state: str) -> None:
        self.power_good = _on_off(state)
        if not self.power_good:
            self.log.append("power not good: a supply rail is out of range")

    def _control_overheat(self, state: str) -> None:
        self.overheat = _on_off(state)
        if self.overheat:
            self.log.append("overheat: backplane above its limit")

    def _control_log(self, *words: str) -> None:
        self.log.append(" ".join(words))

    def clear(self) -> None:
        super().clear()
        with self.lock:
            self.power_good, self.overheat = True, False

    def _control_help(self) -> str:
        return (super()._control_help() + " | light E_PER_S | temperature DEGC | powergood on|off | "
                "overheat on|off | log TEXT | fetchcut on|off")

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **CcdTemperature._CONTROL,
        "clear": clear,
        "powergood": _control_powergood,
        "overheat": _control_overheat,
        "log": _control_log,
        "fetchcut": _reply_fault("fetchcut"),
    }


def _hex(text: str, digits: int) -> int | None:
    if len(text) != digits:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None


__all__ = ["ArchonSimulator"]
