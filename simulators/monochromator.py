"""Newport Cornerstone 260B monochromator, simulated: its RS-232 statements with the echo, over a
wavelength drive, a three-grating turret, a six-position filter wheel and a shutter.

The protocol is `device_servers/monochromator/protocol.py` (the manual's standard mode, echo
on): every statement comes back as received, CR LF included, and a query's answer follows it,
ended by CR LF. A statement it does not understand, or a parameter it cannot take, sets the
error code that `ERROR?` reports once.

Physics: the drive slews at `SLEW_NM_PER_S` and settles; `WAVE?` says where it is, also on the
way. Each grating allows its own span of wavelengths (`GRATINGS`): a target beyond it is error 3
and nothing moves. A grating change takes `GRATING_CHANGE_S` and keeps the wavelength; the
turret finishes indexing even after `ABORT`, which stops the drive and the wheel where they are.
`*OPC` sets bit 0 of the event status register once nothing moves any more; `*ESR?` reads and
clears it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from device_servers.monochromator.protocol import (
    BAD_PARAMETER,
    COMMAND_NOT_UNDERSTOOD,
    FILTER_CHANGE_S,
    FILTERS,
    GRATING_CHANGE_S,
    OPERATION_COMPLETE,
    POSITION_NOT_ALLOWED,
    SETTLE_S,
    SLEW_NM_PER_S,
    TERMINATOR,
    grating_text,
    parse,
    wavelength_text,
)

from .core import LineProtocolSimulator

INFO = "CS260B,SN 00471,VER 1.08"


@dataclass(frozen=True)
class Grating:
    lines: int  # per mm
    label: str
    low: float  # nm
    high: float


#: The turret of the simulated CS260B: UV-visible, near infrared, infrared.
GRATINGS = {
    1: Grating(1200, "VIS", 180.0, 1300.0),
    2: Grating(600, "NIR", 400.0, 2000.0),
    3: Grating(300, "IR", 800.0, 2500.0),
}


class CornerstoneSimulator(LineProtocolSimulator):
    """A Newport Cornerstone 260B monochromator on TCP: wavelength drive, gratings, filter wheel, shutter."""

    kind = "monochromator"
    default_port = 15260
    terminator = b"\n"
    reply_terminator = TERMINATOR
    max_step: ClassVar[float] = 0.02
    tick: ClassVar[float] = 0.05

    def __init__(self, *, seed: int | None = None, speed: float = 1.0) -> None:
        super().__init__(seed=seed, speed=speed)
        self.wavelength = 500.0
        self.target = 500.0
        self.settling = 0.0  # s left before a finished slew counts as settled
        self.grating = 1
        self.changing_to: int | None = None
        self.grating_left = 0.0  # s the turret still needs
        self.filter = 1
        self.filter_to: int | None = None
        self.filter_left = 0.0
        self.shutter_open = False
        self.units = "NM"
        self.error = 0
        self.event_status = 0
        self.opc_asked = False

    # -- physics --------------------------------------------------------------------------------

    @property
    def moving(self) -> bool:
        return self.wavelength != self.target or self.settling > 0 or self.changing_to is not None \
            or self.filter_to is not None

    def step(self, dt: float) -> None:
        distance = self.target - self.wavelength
        if distance:
            travel = SLEW_NM_PER_S * dt
            self.wavelength = self.target if abs(distance) <= travel else self.wavelength + travel * (
                1 if distance > 0 else -1)
            if self.wavelength == self.target:
                self.settling = SETTLE_S
        elif self.settling > 0:
            self.settling = max(self.settling - dt, 0.0)
        if self.changing_to is not None:
            self.grating_left -= dt
            if self.grating_left <= 0:
                self.grating, self.changing_to = self.changing_to, None
        if self.filter_to is not None:
            self.filter_left -= dt
            if self.filter_left <= 0:
                self.filter, self.filter_to = self.filter_to, None
        if self.opc_asked and not self.moving:
            self.event_status |= OPERATION_COMPLETE
            self.opc_asked = False

    def readings(self) -> dict[str, object]:
        return {"wavelength": self.wavelength}

    # -- the protocol ---------------------------------------------------------------------------

    def handle(self, frame: bytes) -> bytes | None:
        """The echo of the statement as received, then the answer of a query."""
        answer = super().handle(frame)
        return frame + (answer or b"")

    def handle_line(self, line: str) -> str | None:
        found = parse(line)
        if found is None:
            self.error = COMMAND_NOT_UNDERSTOOD
            return None
        name, parameters = found
        try:
            return self.STATEMENTS[name](self, *parameters)
        except ValueError:
            self.error = BAD_PARAMETER
            return None

    def _go_wave(self, value: str) -> None:
        target = float(value)
        grating = GRATINGS[self.grating]
        if not grating.low <= target <= grating.high or self.changing_to is not None:
            self.error = POSITION_NOT_ALLOWED
            return
        self.target, self.settling = target, 0.0

    def _wave(self) -> str:
        return wavelength_text(self.reading("wavelength", self.wavelength))

    def _grat(self, value: str) -> None:
        number = int(value)
        if number not in GRATINGS:
            raise ValueError(number)
        if number != self.grating:
            self.changing_to, self.grating_left = number, GRATING_CHANGE_S

    def _grat_query(self) -> str:
        grating = GRATINGS[self.grating]
        return grating_text(self.grating, grating.lines, grating.label)

    def _filter(self, value: str) -> None:
        number = int(value)
        if not FILTERS.low <= number <= FILTERS.high:
            raise ValueError(number)
        if number != self.filter:
            self.filter_to, self.filter_left = number, FILTER_CHANGE_S

    def _shutter(self, value: str) -> None:
        if value.upper() not in ("O", "C"):
            raise ValueError(value)
        self.shutter_open = value.upper() == "O"

    def _units(self, value: str) -> None:
        if value.upper() not in ("NM", "UM", "WN"):
            raise ValueError(value)
        self.units = value.upper()

    def _abort(self) -> None:
        self.target, self.settling = self.wavelength, 0.0
        self.filter_to = None

    def _error(self) -> str:
        error, self.error = self.error, 0
        return str(error)

    def _opc(self) -> None:
        self.opc_asked = True
        self.step(0.0)  # nothing moving: complete at once

    def _esr(self) -> str:
        status, self.event_status = self.event_status, 0
        return str(status)

    STATEMENTS: ClassVar = {
        "GOWAVE <nm>": _go_wave,
        "WAVE?": _wave,
        "GRAT <n>": _grat,
        "GRAT?": _grat_query,
        "FILTER <n>": _filter,
        "FILTER?": lambda sim: str(sim.filter),
        "SHUTTER <O|C>": _shutter,
        "SHUTTER?": lambda sim: "O" if sim.shutter_open else "C",
        "UNITS <NM|UM|WN>": _units,
        "UNITS?": lambda sim: sim.units,
        "ABORT": _abort,
        "INFO?": lambda sim: INFO,
        "ERROR?": _error,
        "*OPC": _opc,
        "*ESR?": _esr,
    }
