"""Driver of the Cryo-Con 24C cryogenic temperature controller (four inputs, two heater loops).

Pure Python over a `Link`: usable from a script as well as from the Tango device.

    driver = CryoCon24C(Link("socket://192.168.1.5:5000"))
    driver.connect()                    # opens the link, sets every input to kelvin
    driver.read_status().temperatures   # {"A": 77.351, "B": 77.402, "C": 81.2, "D": None}
    driver.set_setpoint(1, 80.0)

The instrument speaks SCPI: commands joined by `;` share one line and one reply, so the whole
status is one round trip. Every write is checked here against the instrument's ranges before it
is sent (`RejectedValue`), and sent together with the query that reads it back, so a value the
instrument did not take is reported (`InstrumentError`) instead of assumed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.errors import InstrumentError, RejectedValue, shown
from ..core.limits import Limits
from ..core.link import Link

#: The instrument's TCP port, unless changed on its front panel.
TCP_PORT = 5000
INPUTS = ("A", "B", "C", "D")
LOOPS = (1, 2)
#: Control types of loops 1 and 2 (manual: TYPe); TABLE and RAMPT use the instrument's PID tables.
LOOP_TYPES = ("OFF", "MAN", "PID", "TABLE", "RAMPP", "RAMPT")
#: Heater ranges per loop; each is a tenth of the power of the one before (manual: LOOP RANGe).
HEATER_RANGES = {1: ("HI", "MID", "LOW"), 2: ("HI", "LOW")}
HEATER_OK = "--Htr OK--"


#: Set-point in kelvin: the manual rejects set-points below zero or above the loop's maximum
#: set-point, whose factory default is 1000 K (the instrument may be set lower still).
SETPOINT_LIMITS = Limits(0.0, 1000.0, "K")
RAMP_RATE_LIMITS = Limits(0.0, 100.0, "K/min")
MANUAL_POWER_LIMITS = Limits(0.0, 100.0, "%")
GAIN_LIMITS = Limits(0.0, 1000.0)


@dataclass(frozen=True)
class LoopStatus:
    setpoint: float  # K
    type: str  # one of LOOP_TYPES
    heater_range: str  # one of HEATER_RANGES[loop]
    ramp_rate: float  # K/min
    ramping: bool  # a RAMPP/RAMPT ramp is in progress
    heater_output: float  # % of the range's full-scale power, as read back from the heater
    heater_status: str  # HEATER_OK, or the instrument's fault text (e.g. "Htr-Low-R")
    source: str  # the controlling input
    manual_power: float  # % of full scale, used in MAN

    @property
    def heater_ok(self) -> bool:
        return self.heater_status == HEATER_OK


@dataclass(frozen=True)
class CryoConStatus:
    temperatures: dict[str, float | None]  # K by input; None: no sensor
    control_on: bool
    loops: dict[int, LoopStatus]


def _temperature(text: str) -> float | None:
    text = text.strip()
    if text and set(text) <= set(".-"):  # "......." : no sensor connected
        return None
    return _number(text)


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _kelvin(text: str) -> float:
    text = text.strip()
    if text[-1:].isalpha():
        if text[-1].upper() != "K":
            raise ValueError(f"in {text[-1]}, not K: were the input units changed?")
        text = text[:-1]
    return _number(text)


def _percent(text: str) -> float:
    return _number(text.strip().removesuffix("%"))


def _on_off(text: str) -> bool:
    return {"ON": True, "OFF": False}[text.strip().upper()]


def _word_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def word(text: str) -> str:
        value = text.strip().upper()
        if value not in choices:
            raise ValueError(f"not one of {', '.join(choices)}")
        return value

    return word


#: What `read_status` asks each loop, one field a line: (LoopStatus field, query, parser).
LOOP_FIELDS: tuple[tuple[str, str, Callable[[str], Any]], ...] = (
    ("setpoint", "SETP?", _kelvin),
    ("type", "TYPE?", _word_of(LOOP_TYPES)),
    ("heater_range", "RANG?", _word_of(HEATER_RANGES[1])),
    ("ramp_rate", "RATE?", _number),
    ("ramping", "RAMP?", _on_off),
    ("heater_output", "HTRR?", _percent),
    ("heater_status", "ERR?", str.strip),
    ("source", "SOUR?", _word_of(INPUTS)),
    ("manual_power", "PMAN?", _number),
)
STATUS_QUERY = f"INP? {','.join(INPUTS)};:CONT?" + "".join(
    f";:LOOP {loop}:" + ";".join(query for _, query, _ in LOOP_FIELDS) for loop in LOOPS
)


class CryoCon24C:
    """The Cryo-Con 24C, one method per operation; every method is one round trip."""

    def __init__(self, link: Link) -> None:
        self.link = link

    def connect(self) -> None:
        """Open the link and configure the instrument (from a script; the device opens its own)."""
        self.link.open()
        self.configure()

    def close(self) -> None:
        self.link.close()

    def configure(self) -> None:
        """Report every input in kelvin: the units all temperatures here are in."""
        units = self._ask(f"INP {','.join(INPUTS)}:UNIT K;UNIT?", len(INPUTS))
        if any(unit.strip().upper() != "K" for unit in units):
            raise InstrumentError(f"inputs did not switch to kelvin: units are {';'.join(units)!r}")

    def identify(self) -> str:
        """The identification string, e.g. 'Cryo-con,24C,204683,1.01A'."""
        (reply,) = self._ask("*IDN?", 1)
        return reply.strip()

    def read_temperature(self, channel: str) -> float | None:
        """One input's temperature in K; None when no sensor is connected."""
        channel = _choose("input", channel, INPUTS)
        (reply,) = self._ask(f"INP? {channel}", 1)
        return self._parse(_temperature, reply, "temperature", reply)

    def read_status(self) -> CryoConStatus:
        """Temperatures, control state and both loops, in one round trip."""
        fields = self._ask(STATUS_QUERY, len(INPUTS) + 1 + len(LOOPS) * len(LOOP_FIELDS))
        reply = ";".join(fields)
        temperatures = {
            channel: self._parse(_temperature, text, f"temperature {channel}", reply)
            for channel, text in zip(INPUTS, fields)
        }
        control_on = self._parse(_on_off, fields[len(INPUTS)], "control state", reply)
        rest = iter(fields[len(INPUTS) + 1 :])
        loops = {
            loop: LoopStatus(
                **{
                    name: self._parse(parse, next(rest), f"loop {loop} {name}", reply)
                    for name, _, parse in LOOP_FIELDS
                }
            )
            for loop in LOOPS
        }
        return CryoConStatus(temperatures, control_on, loops)

    def set_setpoint(self, loop: int, kelvin: float) -> float:
        """Regulate to `kelvin`; in RAMPP/RAMPT the instrument ramps there at the ramp rate.
        Returns the set-point read back, as do the other single settings."""
        return self._set(loop, {"SETP": SETPOINT_LIMITS.check("set-point", kelvin)}, _kelvin)[0]

    def set_loop_type(self, loop: int, loop_type: str) -> str:
        """OFF, MAN (manual power), PID, TABLE, RAMPP or RAMPT (see LOOP_TYPES)."""
        return self._set(loop, {"TYPE": _choose("loop type", loop_type, LOOP_TYPES)}, _word_of(LOOP_TYPES))[0]

    def set_heater_range(self, loop: int, heater_range: str) -> str:
        """HI, MID or LOW on loop 1; HI or LOW on loop 2 (see HEATER_RANGES)."""
        choices = HEATER_RANGES[_check_loop(loop)]
        return self._set(
            loop, {"RANG": _choose(f"loop {loop} heater range", heater_range, choices)}, _word_of(choices)
        )[0]

    def set_ramp_rate(self, loop: int, k_per_min: float) -> float:
        """How fast the set-point moves in RAMPP and RAMPT."""
        return self._set(loop, {"RATE": RAMP_RATE_LIMITS.check("ramp rate", k_per_min)}, _number)[0]

    def set_manual_power(self, loop: int, percent: float) -> float:
        """Heater output in MAN, in % of the range's full scale."""
        return self._set(loop, {"PMAN": MANUAL_POWER_LIMITS.check("manual power", percent)}, _number)[0]

    def set_pid(self, loop: int, p: float, i: float, d: float) -> None:
        """Gains: P unit-less, I in seconds, D in 1/s; 0 switches a term off."""
        gains = {"PGA": ("P gain", p), "IGA": ("I gain", i), "DGA": ("D gain", d)}
        self._set(
            loop, {key: GAIN_LIMITS.check(name, value) for key, (name, value) in gains.items()}, _number
        )

    def set_control(self, on: bool) -> None:
        """Engage (True) or disengage (False) the control loops."""
        (self.start_control if on else self.stop_control)()

    def start_control(self) -> None:
        """Engage the control loops (CONTROL)."""
        self._switch_control("CONT", on=True)

    def stop_control(self) -> None:
        """Disengage both control loops: every heater off (STOP)."""
        self._switch_control("STOP", on=False)

    # -- internals ----------------------------------------------------------------------------

    def _ask(self, command: str, count: int) -> list[str]:
        """Send a message holding queries; its reply split into the `count` answers."""
        reply = self.link.query(command).rstrip("\r")
        fields = reply.split(";")
        if len(fields) == count + 1 and not fields[-1].strip():
            fields.pop()  # a reply may end in ';'
        if any(field.strip() == "NAK" for field in fields):
            raise InstrumentError(f"instrument refused {shown(command)}: replied {shown(reply)}")
        if len(fields) != count:
            raise InstrumentError(f"expected {count} answers to {shown(command)}, got {len(fields)}: {shown(reply)}")
        return fields

    def _set(self, loop: int, settings: dict[str, float | str], parse: Callable[[str], Any]) -> list[Any]:
        """Send loop settings and their queries in one message; check and return every value read back."""
        sets = ";".join(f"{keyword} {_text(value)}" for keyword, value in settings.items())
        command = f"LOOP {_check_loop(loop)}:{sets};" + ";".join(f"{keyword}?" for keyword in settings)
        read_back = []
        for sent, reply in zip(settings.values(), self._ask(command, len(settings))):
            value = self._parse(parse, reply, "read-back", reply)
            read_back.append(value)
            if isinstance(sent, str):
                agrees = value == sent
            else:  # the reply is rounded: allow half of its last digit
                digits = reply.strip().rstrip("%KCFkcf").partition(".")[2]
                agrees = math.isclose(value, sent, abs_tol=0.5 * 10 ** -len(digits) + 1e-9)
            if not agrees:
                raise InstrumentError(f"instrument did not take {command!r}: it reads back {shown(reply.strip())}")
        return read_back

    def _switch_control(self, command: str, on: bool) -> None:
        (reply,) = self._ask(f"{command};:CONT?", 1)
        if self._parse(_on_off, reply, "control state", reply) != on:
            raise InstrumentError(f"control still {reply.strip()!r} after {command}")

    @staticmethod
    def _parse(parse: Callable[[str], Any], text: str, what: str, reply: str) -> Any:
        try:
            return parse(text)
        except (ValueError, KeyError, IndexError) as exc:
            raise InstrumentError(f"cannot read {what} from {shown(text)} in reply {shown(reply)} ({exc})") from None


def _check_loop(loop: int) -> int:
    if loop not in LOOPS:
        raise RejectedValue(f"loop {loop!r} does not exist: loops are {', '.join(map(str, LOOPS))}")
    return loop


def _choose(what: str, value: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.strip().upper() not in choices:
        raise RejectedValue(f"{what} {value!r} is not one of {', '.join(choices)}")
    return value.strip().upper()


def _text(value: float | str) -> str:
    """A value as sent: numbers with up to six decimals, as the instrument stores about six digits."""
    if isinstance(value, str):
        return value
    return f"{value:.6f}".rstrip("0").rstrip(".")
