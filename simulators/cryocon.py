"""Cryo-Con 24C cryogenic temperature controller, simulated: its command language over a cryostat.

The protocol follows the Model 24C manual's Remote Programming Guide (SCPI; TCP port 5000) and,
where the manual is silent, the replies recorded from real controllers by lab software:

- a message is one line ending in LF; it holds commands separated by `;`. A command without a
  leading `:` stays in the node of the command before it (`LOOP 1:SETPT?;PGAIN?` asks loop 1
  twice); a leading `:` returns to the root (`INPUT? A;:CONTROL?`);
- the answers of the queries in one message come back in one line, joined by `;`, ending in
  CR LF. A message without a query gets no answer at all;
- keywords are case-insensitive and recognised by their short form, the upper-case part of the
  manual's spelling (`INPut`, `SETPt`, `PMAnual`): `INP`, `INPU`, `INPUT` all work;
- a command the instrument does not know, or a value it refuses, answers `NAK` in its place.

Physics: a two-stage cryocooler pulls the cold stage (input A, heated by loop 1) from room
temperature towards 40 K with time constant `tau`; input B is a sample sensor following the
stage; input C is the radiation shield (heated by loop 2), slower and warmer; input D has no
sensor and reads `.......`. Heaters deliver `output %` of their range's full scale when control
is ON: manual power (MAN), PID on the set-point (PID, TABLE), or PID on a set-point that ramps
at `RATE` units per minute (RAMPP, RAMPT). Readings carry Gaussian noise from the seeded RNG.

Not simulated (answered `NAK`): control loops 3 and 4, sensor units (S), PID tables, autotune,
alarms, relays and the other configuration commands.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from device_servers.core.spelling import number
from device_servers.cryocon.protocol import (
    HEATER_OK,
    INPUTS,
    LOOP_TYPES,
    NAK,
    NO_SENSOR,
    TCP_PORT,
    UNITS,
    Node,
    command_of,
    nodes,
)

from .core import LineProtocolSimulator

IDN = "Cryo-con,24C,204683,1.01A"

ROOM_K = 295.0
STAGE_BASE_K = 40.0
SHIELD_BASE_K = 75.0
STAGE_K_PER_W = 6.0
SHIELD_K_PER_W = 4.0
NOISE_K = 0.003


class Refused(Exception):
    """The instrument answers NAK."""


@dataclass
class Loop:
    """One heater control loop: its settings as the protocol shows them, and its controller state."""

    source: str
    #: Full-scale heater power of each range, in watts per ohm of load (manual: LOOP RANGe).
    watts_per_ohm: dict[str, float]
    range: str
    load: int = 50
    fixed_load: bool = False
    type: str = "MAN"
    setpoint: float = 0.0  # K
    ramp_point: float | None = None  # K; the moving set-point while a ramp runs
    rate: float = 1.0  # source units per minute
    pgain: float = 1.0
    igain: float = 60.0  # s
    dgain: float = 0.0
    pman: float = 0.0  # % of full scale
    maxpwr: float = 100.0  # % of full scale
    maxset: float = 1000.0  # K
    output: float = 0.0  # % of full scale, delivered now
    integral: float = field(default=0.0, repr=False)
    last_error: float | None = field(default=None, repr=False)

    @property
    def full_scale_w(self) -> float:
        return self.watts_per_ohm[self.range] * self.load


class CryoConSimulator(LineProtocolSimulator):
    """The Cryo-Con 24C on TCP: `*IDN?`, `INPUT`, `LOOP n:...`, `CONTROL`, `STOP`."""

    kind = "cryocon"
    default_port = TCP_PORT
    terminator = b"\n"
    reply_terminator = b"\r\n"

    def __init__(self, *, tau: float = 60.0, seed: int | None = None, speed: float = 1.0) -> None:
        super().__init__(seed=seed, speed=speed)
        self.tau = tau
        self.temperatures = {"A": ROOM_K, "B": ROOM_K, "C": ROOM_K}  # K; no sensor on D
        self.units = dict.fromkeys(INPUTS, "K")
        self.control_on = False
        self.loops = {
            1: Loop("A", {"HI": 1.0, "MID": 0.1, "LOW": 0.01}, range="HI"),
            2: Loop("C", {"HI": 0.5, "LOW": 0.05}, range="LOW", fixed_load=True),
        }

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--tau", type=float, default=60.0, help="cold stage time constant, s (60)")

    # -- physics -----------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        substeps = math.ceil(dt * 100 / self.tau)  # keeps Euler stable for a short --tau
        for _ in range(substeps):
            self._integrate(dt / substeps)

    def _integrate(self, dt: float) -> None:
        for loop in self.loops.values():
            loop.output = self._drive(loop, dt)
        stage_w = self.loops[1].output / 100 * self.loops[1].full_scale_w
        shield_w = self.loops[2].output / 100 * self.loops[2].full_scale_w
        t = self.temperatures
        t["A"] += (STAGE_BASE_K - t["A"] + stage_w * STAGE_K_PER_W) * dt / self.tau
        t["B"] += (t["A"] - t["B"]) * dt / (self.tau / 6)
        t["C"] += (SHIELD_BASE_K - t["C"] + shield_w * SHIELD_K_PER_W) * dt / (self.tau * 3)

    def _drive(self, loop: Loop, dt: float) -> float:
        """The loop's heater output, % of full scale, for the next `dt` seconds."""
        process = self.temperatures.get(loop.source)
        if not self.control_on or loop.type == "OFF" or process is None:
            loop.integral, loop.last_error, loop.ramp_point = 0.0, None, None
            return 0.0
        if loop.type == "MAN":
            return min(loop.pman, loop.maxpwr)
        if loop.ramp_point is not None:
            rate = loop.rate / 60 * (5 / 9 if self.units[loop.source] == "F" else 1)
            gap = loop.setpoint - loop.ramp_point
            loop.ramp_point = (
                None if abs(gap) <= rate * dt else loop.ramp_point + math.copysign(rate * dt, gap)
            )
        error = (loop.setpoint if loop.ramp_point is None else loop.ramp_point) - process
        slope = 0.0 if loop.last_error is None else (error - loop.last_error) / dt
        loop.last_error = error
        integral = loop.integral + error * dt
        output = loop.pgain * (error + (integral / loop.igain if loop.igain else 0.0) + loop.dgain * slope)
        if not (output > loop.maxpwr and error > 0 or output < 0 and error < 0):
            loop.integral = integral  # no wind-up while saturated
        return min(max(output, 0.0), loop.maxpwr)

    def readings(self) -> dict[str, object]:
        return {name: self._measure(name) for name in INPUTS}

    def _measure(self, name: str) -> float | None:
        kelvin = self.temperatures.get(name)
        return None if kelvin is None else kelvin + self.random.gauss(0.0, NOISE_K)

    # -- protocol ----------------------------------------------------------------------------

    def handle_line(self, line: str) -> str | None:
        answers: list[str] = []
        context: list[Node] = []
        for text in line.split(";"):
            if not text.strip():
                continue
            path = nodes(text) if text.strip().startswith(":") else context + nodes(text)
            context = path[:-1]
            try:
                answer = self._execute(path)
            except Refused:
                answer = NAK
            if answer is not None:
                answers.append(answer)
        return ";".join(answers) if answers else None

    def _execute(self, path: list[Node]) -> str | None:
        """Run one command, given as the keyword nodes from the root; its answer, if a query."""
        command = command_of(path)
        if command is None:
            raise Refused
        selector = _SELECTORS.get(command.split(":")[0].removesuffix("?"))
        target = selector(self, path[0].argument) if selector else None
        value = path[-1].argument if len(path) > 1 or selector is None else ""
        return _COMMANDS[command](self, target, value)

    def _channels(self, argument: str) -> list[str]:
        channels = [name.strip().upper() for name in argument.split(",")]
        if not all(name in INPUTS for name in channels):
            raise Refused
        return channels

    def _loop(self, argument: str) -> Loop:
        if argument.strip() not in ("1", "2"):
            raise Refused  # loops 3 and 4 (unpowered outputs) are not simulated
        return self.loops[int(argument)]

    def _display(self, kelvin: float, unit: str) -> float:
        return {"K": kelvin, "C": kelvin - 273.15, "F": kelvin * 9 / 5 - 459.67}[unit]

    def _kelvin(self, value: float, unit: str) -> float:
        return {"K": value, "C": value + 273.15, "F": (value + 459.67) * 5 / 9}[unit]

    # Handlers: (self, target, value) -> answer. The target is what the root node selects (the
    # input channels of INPUT, the loop of LOOP); the value is the argument of the last keyword.

    def _idn(self, _target: None, _value: str) -> str:
        return IDN

    def _opc(self, _target: None, _value: str) -> str:
        return "1"

    def _nothing(self, _target: object, _value: str) -> None:
        return None

    def _control(self, _target: None, _value: str) -> str:
        return "ON " if self.control_on else "OFF"

    def _start(self, _target: None, _value: str) -> None:
        self.control_on = True

    def _stop(self, _target: None, _value: str) -> None:
        self.control_on = False

    def _temperature(self, channels: list[str], _value: str) -> str:
        def show(name: str) -> str:
            kelvin = self.reading(name, self._measure(name))
            return NO_SENSOR if kelvin is None else f"{self._display(kelvin, self.units[name]):.6f}"

        return ";".join(show(name) for name in channels)

    def _get_units(self, channels: list[str], _value: str) -> str:
        return ";".join(self.units[name] for name in channels)

    def _set_units(self, channels: list[str], value: str) -> None:
        unit = value.strip().upper()
        if unit not in UNITS:
            raise Refused  # S (sensor units) is not simulated
        for name in channels:
            self.units[name] = unit

    def _get_source(self, loop: Loop, _value: str) -> str:
        return loop.source

    def _set_source(self, loop: Loop, value: str) -> None:
        loop.source = _choice(value, INPUTS)

    def _get_setpoint(self, loop: Loop, _value: str) -> str:
        unit = self.units[loop.source]
        return f"{self._display(loop.setpoint, unit):.3f}{unit}"

    def _set_setpoint(self, loop: Loop, value: str) -> None:
        kelvin = self._kelvin(_number(value), self.units[loop.source])
        if not 0.0 <= kelvin <= loop.maxset:
            raise Refused  # manual: set-points below zero or above MAXSET are rejected
        if self.control_on and loop.type in ("RAMPP", "RAMPT") and loop.rate > 0:
            loop.ramp_point = loop.setpoint if loop.ramp_point is None else loop.ramp_point
        loop.setpoint = kelvin

    def _error(self, _loop: Loop, _value: str) -> str:
        return HEATER_OK

    def _get_type(self, loop: Loop, _value: str) -> str:
        return f"{loop.type:<5}"

    def _set_type(self, loop: Loop, value: str) -> None:
        loop.type = _choice(value, LOOP_TYPES)
        if loop.type not in ("RAMPP", "RAMPT"):
            loop.ramp_point = None

    def _get_range(self, loop: Loop, _value: str) -> str:
        return f"{loop.range:<3}"

    def _set_range(self, loop: Loop, value: str) -> None:
        loop.range = _choice(value, tuple(loop.watts_per_ohm))

    def _ramping(self, loop: Loop, _value: str) -> str:
        return "OFF" if loop.ramp_point is None else "ON "

    def _get_load(self, loop: Loop, _value: str) -> str:
        return str(loop.load)

    def _set_load(self, loop: Loop, value: str) -> None:
        if not loop.fixed_load:  # manual: loop 2 ignores LOAD
            loop.load = int(_choice(value, ("25", "50")))

    def _output(self, loop: Loop, _value: str) -> str:
        return f"{loop.output:.6f}"

    def _heater_read(self, loop: Loop, _value: str) -> str:
        return f"{loop.output:4.0f}%"

    def _get_maxset(self, loop: Loop, _value: str) -> str:
        unit = self.units[loop.source]
        return f"{self._display(loop.maxset, unit):.3f}{unit}"

    def _set_maxset(self, loop: Loop, value: str) -> None:
        loop.maxset = max(0.0, self._kelvin(_number(value), self.units[loop.source]))


def _loop_number(command: str, attribute: str, low: float, high: float, form: str) -> dict[str, Callable]:
    """Query and set handlers of a plain numeric loop setting, refusing values out of range."""

    def query(_sim: CryoConSimulator, loop: Loop, _value: str) -> str:
        return format(getattr(loop, attribute), form)

    def setting(_sim: CryoConSimulator, loop: Loop, value: str) -> None:
        number = _number(value)
        if not low <= number <= high:
            raise Refused
        setattr(loop, attribute, number)

    return {f"{command}?": query, command: setting}


def _number(text: str) -> float:
    try:
        return number(text)
    except ValueError:
        raise Refused from None


def _choice(text: str, choices: tuple[str, ...]) -> str:
    value = text.strip().upper()
    if value not in choices:
        raise Refused
    return value


_SIM = CryoConSimulator

#: The handler of each command of the protocol's table.
_COMMANDS: dict[str, Callable] = {
    "*IDN?": _SIM._idn,
    "*OPC?": _SIM._opc,
    "*CLS": _SIM._nothing,
    "CONTrol?": _SIM._control,
    "CONTrol": _SIM._start,
    "STOP": _SIM._stop,
    "INPut?": _SIM._temperature,
    "INPut:TEMPerature?": _SIM._temperature,
    "INPut:UNITs?": _SIM._get_units,
    "INPut:UNITs": _SIM._set_units,
    "LOOP:SOURce?": _SIM._get_source,
    "LOOP:SOURce": _SIM._set_source,
    "LOOP:SETPt?": _SIM._get_setpoint,
    "LOOP:SETPt": _SIM._set_setpoint,
    "LOOP:ERRor?": _SIM._error,
    "LOOP:TYPe?": _SIM._get_type,
    "LOOP:TYPe": _SIM._set_type,
    "LOOP:RANGe?": _SIM._get_range,
    "LOOP:RANGe": _SIM._set_range,
    "LOOP:RAMP?": _SIM._ramping,
    **_loop_number("LOOP:RATe", "rate", 0.0, 100.0, ".1f"),
    **_loop_number("LOOP:PGAin", "pgain", 0.0, 1000.0, "g"),
    **_loop_number("LOOP:IGAin", "igain", 0.0, 1000.0, "g"),
    **_loop_number("LOOP:DGAin", "dgain", 0.0, 1000.0, "g"),
    **_loop_number("LOOP:PMAnual", "pman", 0.0, 100.0, ".1f"),
    **_loop_number("LOOP:MAXPwr", "maxpwr", 0.0, 100.0, ".1f"),
    "LOOP:MAXSet?": _SIM._get_maxset,
    "LOOP:MAXSet": _SIM._set_maxset,
    "LOOP:OUTPwr?": _SIM._output,
    "LOOP:HTRRead?": _SIM._heater_read,
    "LOOP:LOAD?": _SIM._get_load,
    "LOOP:LOAD": _SIM._set_load,
}
_SELECTORS = {"INPut": _SIM._channels, "LOOP": _SIM._loop}
