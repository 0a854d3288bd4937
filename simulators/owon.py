"""OWON ODP6033 three-output power supply, simulated: its SCPI on the LAN socket
(device_servers/owon/protocol.py) over three resistive loads.

Each output regulates its voltage set-point (constant voltage) until the load would draw more
than its current set-point, then that current (constant current). Over-voltage protection trips
an output that is on with its set-point above its OVP level; over-current protection one whose
load demands more than its OCP level. A trip switches the output off; `OUTP:PROT:CLE` clears the
trip flags and switching it on again clears its own. A setting out of the output's range is
refused (it stays) with `-222,"Data out of range"` in the error queue; an unknown header is
`-113,"Undefined header"`.

Control port: `overload N on|off` shorts output N's load (0.01 ohm): it trips as soon as it is on.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from device_servers.owon.protocol import (
    ERRORS,
    HEADERS,
    ODP6033,
    OVER_CURRENT,
    OVER_VOLTAGE,
    TCP_PORT,
    OutputRanges,
)

from .core import LineProtocolSimulator, _on_off

IDN = "OWON,ODP6033,2104117,FV:V3.9.0"
SHORT_OHMS = 0.01


class CommandError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Output:
    ranges: OutputRanges
    load_ohms: float
    volts: float = 0.0
    amps: float = 0.1
    on: bool = False
    overloaded: bool = False
    tripped: int = 0

    def __post_init__(self) -> None:
        self.ovp, self.ocp = self.ranges.ovp.high, self.ranges.ocp.high

    @property
    def resistance(self) -> float:
        return SHORT_OHMS if self.overloaded else self.load_ohms

    def output(self) -> tuple[float, float]:
        if not self.on:
            return 0.0, 0.0
        demand = self.volts / self.resistance
        return (self.volts, demand) if demand <= self.amps else (self.amps * self.resistance, self.amps)

    def settle(self) -> None:
        if not self.on:
            return
        if self.volts / self.resistance > self.ocp:
            self.on, self.tripped = False, OVER_CURRENT
        elif self.volts > self.ovp:
            self.on, self.tripped = False, OVER_VOLTAGE


class OwonSimulator(LineProtocolSimulator):
    """OWON ODP6033 three-output supply on its LAN socket (SCPI)."""

    kind = "owon"
    default_port = TCP_PORT

    def __init__(self, *, load: float = 100.0, seed: int | None = None, speed: float = 1.0) -> None:
        super().__init__(seed=seed, speed=speed)
        self.outputs = {n: Output(ranges, load) for n, ranges in ODP6033.items()}
        self.selected = 1
        self.errors: list[int] = []

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--load", type=float, default=100.0, help="load resistor of every output, ohms (100)")

    # -- protocol -------------------------------------------------------------------------------

    def handle_line(self, line: str) -> str | None:
        answers = []
        for command in line.split(";"):
            header, _, argument = command.strip().partition(" ")
            if not header:
                continue
            try:
                spec = HEADERS.find(header)
                if spec is None:
                    raise CommandError(-113)
                answer = self._COMMANDS[spec](self, argument.strip())
                self._settle()  # a protection acts at once
            except CommandError as error:
                self.errors.append(error.code)
                continue
            if answer is not None:
                answers.append(answer)
        return ";".join(answers) if answers else None

    @property
    def here(self) -> Output:
        return self.outputs[self.selected]

    def _settle(self) -> None:
        for output in self.outputs.values():
            output.settle()

    @staticmethod
    def _value(argument: str) -> float:
        try:
            return float(argument)
        except ValueError:
            raise CommandError(-224 if argument else -109) from None

    def _set(self, name: str, argument: str) -> None:
        value = self._value(argument)
        limits = getattr(self.here.ranges, {"volts": "voltage", "amps": "current"}.get(name, name))
        if not limits.low <= value <= limits.high:
            raise CommandError(-222)
        setattr(self.here, name, round(value, 3))

    def _select(self, argument: str) -> None:
        if argument not in ("1", "2", "3"):
            raise CommandError(-224)
        self.selected = int(argument)

    def _switch(self, output: Output, argument: str) -> None:
        word = argument.upper()
        if word not in ("ON", "OFF", "1", "0"):
            raise CommandError(-224)
        output.on = word in ("ON", "1")
        if output.on:
            output.tripped = 0

    def _switch_all(self, argument: str) -> None:
        words = argument.split(",")
        if len(words) != len(self.outputs):
            raise CommandError(-109)
        for output, word in zip(self.outputs.values(), words):
            self._switch(output, word.strip())

    def _measure(self, which: int) -> str:
        value = self.here.output()[which]
        noise = self.random.gauss(0.0, 0.0005) if self.here.on else 0.0
        name = ("voltage", "current")[which]
        return f"{max(0.0, self.reading(f'{name}{self.selected}', value) + noise):.3f}"

    def _next_error(self, _: str) -> str:
        code = self.errors.pop(0) if self.errors else 0
        return f'{code},"{ERRORS[code]}"' if code else '0,"No error"'

    def _clear_trips(self, _: str) -> None:
        for output in self.outputs.values():
            output.tripped = 0

    def _all(self, name: str) -> str:
        return ",".join(f"{getattr(output, name):.3f}" for output in self.outputs.values())

    _COMMANDS: ClassVar[dict[str, Callable[..., str | None]]] = {
        "*IDN?": lambda self, _: IDN,
        "*RST": lambda self, _: self.__init__(load=self.outputs[1].load_ohms),
        "*CLS": lambda self, _: self.errors.clear(),
        "INSTrument:NSELect": _select,
        "INSTrument:NSELect?": lambda self, _: str(self.selected),
        "[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]": lambda self, argument: self._set("volts", argument),
        "[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]?": lambda self, _: f"{self.here.volts:.3f}",
        "[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]": lambda self, argument: self._set("amps", argument),
        "[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]?": lambda self, _: f"{self.here.amps:.3f}",
        "[SOURce:]VOLTage:LIMit": lambda self, argument: self._set("ovp", argument),
        "[SOURce:]VOLTage:LIMit?": lambda self, _: f"{self.here.ovp:.3f}",
        "[SOURce:]CURRent:LIMit": lambda self, argument: self._set("ocp", argument),
        "[SOURce:]CURRent:LIMit?": lambda self, _: f"{self.here.ocp:.3f}",
        "MEASure[:SCALar]:VOLTage[:DC]?": lambda self, _: self._measure(0),
        "MEASure[:SCALar]:CURRent[:DC]?": lambda self, _: self._measure(1),
        "OUTPut[:STATe]": lambda self, argument: self._switch(self.here, argument),
        "OUTPut[:STATe]?": lambda self, _: str(int(self.here.on)),
        "CHANnel:OUTPut:ALL": _switch_all,
        "CHANnel:OUTPut:ALL?": lambda self, _: ",".join(str(int(o.on)) for o in self.outputs.values()),
        "APPly:VOLTage?": lambda self, _: self._all("volts"),
        "APPly:CURRent?": lambda self, _: self._all("amps"),
        "OUTPut:PROTection:ALL?": lambda self, _: ",".join(str(o.tripped) for o in self.outputs.values()),
        "OUTPut:PROTection:CLEar": _clear_trips,
        "SYSTem:ERRor?": _next_error,
    }

    # -- physics and faults ---------------------------------------------------------------------

    def step(self, dt: float) -> None:
        self._settle()

    def readings(self) -> dict[str, object]:
        values: dict[str, object] = {}
        for n, output in self.outputs.items():
            values[f"voltage{n}"], values[f"current{n}"] = output.output()
        return values

    def overload(self, output: int, on: bool = True) -> None:
        """Short output `output`'s load: its over-current protection trips while it is on."""
        with self.lock:
            if output not in self.outputs:
                raise ValueError(f"no output {output}; outputs are 1, 2, 3")
            self.outputs[output].overloaded = on
            self._settle()

    def clear(self) -> None:
        super().clear()
        with self.lock:
            for output in self.outputs.values():
                output.overloaded = False

    def _control_overload(self, output: str, state: str) -> None:
        try:
            number = int(output)
        except ValueError:
            raise ValueError(f"output must be 1, 2 or 3, not {output!r}") from None
        self.overload(number, _on_off(state))

    def _control_help(self) -> str:
        return super()._control_help() + " | overload OUTPUT on|off"

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **LineProtocolSimulator._CONTROL, "overload": _control_overload, "clear": clear, "help": _control_help,
    }
