"""A telescope, simulated: its text link (device_servers/telescope/protocol.py), offsets made at
`SLEW_ARCSEC_PER_S` on both axes and settled for `SETTLE_S` before it is in position, a focus
drive, and the weather at the dome: humidity wandering slowly, the dew point from it by the
Magnus formula.

Control port, beyond the common faults:

    humidity PERCENT   set the relative humidity at the dome
    stuck on|off       offsets are taken but the telescope never arrives (a drive fault)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

from device_servers.telescope.protocol import (
    FOCUS_RANGE,
    OFFSET_RANGE,
    SETTLE_S,
    SLEW_ARCSEC_PER_S,
    number_text,
)

from .core import LineProtocolSimulator, Simulator, _on_off

AIR_C = 8.0
#: Magnus formula constants (over water, -45 to 60 degC).
MAGNUS_B, MAGNUS_C = 17.62, 243.12


def dew_point(celsius: float, humidity: float) -> float:
    """The dew point, degC, of air at `celsius` and `humidity` percent."""
    gamma = math.log(max(humidity, 1e-3) / 100.0) + MAGNUS_B * celsius / (MAGNUS_C + celsius)
    return MAGNUS_C * gamma / (MAGNUS_B - gamma)


class TelescopeSimulator(LineProtocolSimulator):
    """A telescope: offsets, in-position, focus, humidity and dew point."""

    kind = "telescope"
    default_port = 15400
    max_step: ClassVar[float] = 0.02
    tick: ClassVar[float] = 0.05

    def __init__(self, *, seed: int | None = None, speed: float = 1.0) -> None:
        super().__init__(seed=seed, speed=speed)
        self.offset = [0.0, 0.0]
        self.target = [0.0, 0.0]
        self.settling = 0.0
        self.focus = 0.0
        self.humidity = 35.0
        self.stuck = False

    @property
    def in_position(self) -> bool:
        return self.offset == self.target and self.settling <= 0

    def step(self, dt: float) -> None:
        if self.offset != self.target and not self.stuck:
            travel = SLEW_ARCSEC_PER_S * dt
            self.offset = [goal if abs(goal - now) <= travel else now + math.copysign(travel, goal - now)
                           for now, goal in zip(self.offset, self.target)]
            if self.offset == self.target:
                self.settling = SETTLE_S
        elif self.settling > 0:
            self.settling = max(self.settling - dt, 0.0)
        self.humidity = min(max(self.humidity + self.random.gauss(0.0, 0.02) * math.sqrt(dt), 1.0), 100.0)

    def readings(self) -> dict[str, object]:
        return {"humidity": self.humidity}

    # -- the protocol ----------------------------------------------------------------------------

    def handle_line(self, line: str) -> str | None:
        words = line.strip().split()
        if not words:
            return "ERR empty request"
        handler = self._REQUESTS.get(words[0].upper())
        if handler is None:
            return f"ERR unknown request {words[0]} (known: {', '.join(self._REQUESTS)})"
        try:
            answer = handler(self, *words[1:])
        except TypeError:
            return f"ERR wrong number of arguments to {words[0]}"
        except ValueError as exc:  # a RejectedValue of the ranges: says what is allowed
            return f"ERR {exc}"
        return f"OK {answer}".rstrip() if answer is not None else "OK"

    def _offset(self, ra: str, dec: str) -> None:
        self.target = [OFFSET_RANGE.check("the RA offset", ra), OFFSET_RANGE.check("the Dec offset", dec)]
        self.settling = SETTLE_S if self.offset == self.target else 0.0

    def _offset_query(self) -> str:
        return " ".join(number_text(value) for value in self.offset)

    def _in_position(self) -> str:
        return "1" if self.in_position else "0"

    def _focus(self, mm: str) -> None:
        self.focus = FOCUS_RANGE.check("the focus", mm)

    def _focus_query(self) -> str:
        return number_text(self.focus)

    def _weather(self) -> str:
        humidity = float(self.reading("humidity", self.humidity))
        return f"{humidity:.1f} {dew_point(AIR_C, humidity):.2f} {AIR_C:.1f}"

    _REQUESTS: ClassVar[dict[str, Callable[..., str | None]]] = {
        "OFFSET": _offset, "OFFSET?": _offset_query, "INPOS?": _in_position, "FOCUS": _focus,
        "FOCUS?": _focus_query, "WEATHER?": _weather,
    }

    # -- control port ----------------------------------------------------------------------------

    def _control_humidity(self, percent: str) -> None:
        value = float(percent)
        if not 0 < value <= 100:
            raise ValueError(f"humidity must be above 0 and at most 100 %, not {percent}")
        self.humidity = value

    def _control_stuck(self, state: str) -> None:
        self.stuck = _on_off(state)

    def _control_help(self) -> str:
        return super()._control_help() + " | humidity PERCENT | stuck on|off"

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **Simulator._CONTROL, "humidity": _control_humidity, "stuck": _control_stuck,
    }
