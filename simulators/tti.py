"""Aim-TTi MX100QP quad power supply, simulated: its ASCII command set over four resistive loads.

The protocol follows the programmer's section of the MX100QP / PL-P manuals (LAN, TCP 9221):
one message per line (LF), commands in one message separated by `;`, answers to the queries of
one message joined by `;` and ended by LF; settings get no answer. Numbers are `<NRF>` in,
`<NR2>` out. A command the instrument does not know is a command error: no answer (`*ESR?`
bit 5); a value it cannot set is an execution error: `EER?` answers 100 once (range error),
and the setting is not changed. `EER?` and `QER?` are cleared when read; so is `LSR<n>?`.

Physics: each output drives a resistor (`--load` ohms). It regulates its voltage set-point
(constant voltage) until the load would draw more than the current limit, then the current
limit (constant current). The over-voltage protection trips an output that is on with its
set-point above the OVP level; the over-current protection trips one whose load demands more
than the OCP level (the surge the current limit catches only after the trip). A trip switches
the output off and sets its LSR bit; `TRIPRST`, or switching the output on again, clears it.

Control port: `overload N on|off` shorts output N's load (0.01 Ω): its demand exceeds any OCP
level, so it trips as soon as it is on.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from device_servers.tti.protocol import (
    CONSTANT_CURRENT,
    CONSTANT_VOLTAGE,
    MODELS,
    OCP_TRIP,
    OVP_TRIP,
    RANGE_ERROR,
    TCP_PORT,
    parse,
)

from .core import LineProtocolSimulator, _on_off

IDN = "THURLBY THANDAR, MX100QP, 527193, 1.11-2.01-1.05"
MX100QP = MODELS["MX100QP"]
OUTPUTS = tuple(range(1, MX100QP.outputs + 1))
SHORT_OHMS = 0.01
NOISE_V, NOISE_A = 0.0005, 0.00005
CV, CC = CONSTANT_VOLTAGE, CONSTANT_CURRENT


class CommandError(Exception):
    """A command the instrument does not know: no answer."""


class ExecutionError(Exception):
    """A value the instrument cannot set: EER? reports it."""


@dataclass
class Output:
    load_ohms: float
    volts: float = 0.0  # set-point
    amps: float = 0.1  # current limit
    ovp: float = MX100QP.ovp.high
    ocp: float = MX100QP.ocp.high
    on: bool = False
    overloaded: bool = False
    lsr: int = 0
    regulating: int = 0  # CV or CC now (LSR bits are set when it enters one)
    tripped: int = 0

    @property
    def resistance(self) -> float:
        return SHORT_OHMS if self.overloaded else self.load_ohms

    def output(self) -> tuple[float, float]:
        """(volts, amps) at the terminals now."""
        if not self.on:
            return 0.0, 0.0
        demand = self.volts / self.resistance
        if demand <= self.amps:
            return self.volts, demand
        return self.amps * self.resistance, self.amps

    def settle(self) -> None:
        """Apply the protections and note the regulation mode, as the instrument does continuously."""
        if not self.on:
            self.regulating = 0
            return
        if self.volts / self.resistance > self.ocp:
            self._trip(OCP_TRIP)
        elif self.output()[0] > self.ovp:
            self._trip(OVP_TRIP)
        else:
            mode = CV if self.volts / self.resistance <= self.amps else CC
            if mode != self.regulating:
                self.lsr |= mode
            self.regulating = mode

    def _trip(self, bit: int) -> None:
        self.on, self.regulating = False, 0
        self.tripped |= bit
        self.lsr |= bit


class TtiSimulator(LineProtocolSimulator):
    """An Aim-TTi MX100QP on TCP: four outputs, V/I set-points, OVP/OCP, trips, error registers."""

    kind = "tti"
    default_port = TCP_PORT
    terminator = b"\n"
    reply_terminator = b"\n"

    def __init__(
        self, *, load: float = 100.0, noise: float = 1.0, seed: int | None = None, speed: float = 1.0
    ) -> None:
        super().__init__(seed=seed, speed=speed)
        self.noise = noise
        self.outputs = {n: Output(load_ohms=load) for n in OUTPUTS}
        self.execution_error = 0
        self.query_error = 0
        self.command_errors = 0
        self.config = 2  # CONFIG?: the operating mode of the MX100QP (2: four independent outputs)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--load", type=float, default=100.0, help="load resistor of every output, ohms (100)")
        parser.add_argument(
            "--noise", type=float, default=1.0, help="read-back noise, times 0.5 mV and 50 uA rms (1; 0: none)"
        )

    # -- protocol ----------------------------------------------------------------------------

    def handle_line(self, line: str) -> str | None:
        answers = []
        for command in line.split(";"):
            command = command.strip()
            if not command:
                continue
            try:
                answer = self._command(command)
            except CommandError:
                self.command_errors += 1
                continue
            except ExecutionError:
                self.execution_error = RANGE_ERROR
                continue
            if answer is not None:
                answers.append(answer)
        return ";".join(answers) if answers else None

    def _command(self, command: str) -> str | None:
        found = parse(command)
        if found is None:
            raise CommandError(command)
        name, arguments = found
        return self._COMMANDS[name](self, *arguments)

    def _output(self, n: str) -> Output:
        if int(n) not in self.outputs:
            raise ExecutionError(n)
        return self.outputs[int(n)]

    def _settle(self) -> None:
        for output in self.outputs.values():
            output.settle()

    def _set(self, n: str, name: str, text: str, low: float, high: float) -> None:
        output = self._output(n)
        try:
            value = float(text)
        except ValueError:
            raise CommandError(text) from None
        if not low <= value <= high:
            raise ExecutionError(text)
        setattr(output, name, round(value, 3))
        self._settle()

    def _set_voltage(self, n: str, text: str) -> None:
        self._set(n, "volts", text, MX100QP.voltage.low, MX100QP.voltage.high)

    def _set_current(self, n: str, text: str) -> None:
        self._set(n, "amps", text, MX100QP.current.low, MX100QP.current.high)

    def _set_ovp(self, n: str, text: str) -> None:
        self._set(n, "ovp", text, MX100QP.ovp.low, MX100QP.ovp.high)

    def _set_ocp(self, n: str, text: str) -> None:
        self._set(n, "ocp", text, MX100QP.ocp.low, MX100QP.ocp.high)

    def _switch(self, n: str, text: str) -> None:
        output = self._output(n)
        if text not in ("0", "1"):
            raise ExecutionError(text)
        output.on = text == "1"
        if output.on:
            output.tripped = 0  # switching on again is how the front panel resets a trip too
        self._settle()

    def _reset_trips(self) -> None:
        for output in self.outputs.values():
            output.tripped = 0

    def _reset(self) -> None:
        """*RST: every output off at its default settings (the load stays)."""
        for n, output in self.outputs.items():
            self.outputs[n] = Output(load_ohms=output.load_ohms, overloaded=output.overloaded)

    def _read_voltage(self, n: str) -> str:
        output = self._output(n)
        volts = output.output()[0] + (self.random.gauss(0.0, NOISE_V * self.noise) if output.on else 0.0)
        return f"{max(0.0, self.reading(f'voltage{n}', volts)):.3f}V"

    def _read_current(self, n: str) -> str:
        output = self._output(n)
        amps = output.output()[1] + (self.random.gauss(0.0, NOISE_A * self.noise) if output.on else 0.0)
        return f"{max(0.0, self.reading(f'current{n}', amps)):.3f}A"

    def _read_lsr(self, n: str) -> str:
        output = self._output(n)
        value, output.lsr = output.lsr, 0
        return str(value)

    def _read_eer(self) -> str:
        value, self.execution_error = self.execution_error, 0
        return str(value)

    def _read_qer(self) -> str:
        value, self.query_error = self.query_error, 0
        return str(value)

    _COMMANDS: ClassVar[dict[str, Callable[..., str | None]]] = {
        "*IDN?": lambda self: IDN,
        "*RST": _reset,
        "V<n> <V>": _set_voltage,
        "I<n> <A>": _set_current,
        "OVP<n> <V>": _set_ovp,
        "OCP<n> <A>": _set_ocp,
        "OP<n> <0|1>": _switch,
        "V<n>?": lambda self, n: f"V{n} {self._output(n).volts:.3f}",
        "I<n>?": lambda self, n: f"I{n} {self._output(n).amps:.3f}",
        "V<n>O?": _read_voltage,
        "I<n>O?": _read_current,
        "OP<n>?": lambda self, n: str(int(self._output(n).on)),
        "OVP<n>?": lambda self, n: f"VP{n} {self._output(n).ovp:.2f}",
        "OCP<n>?": lambda self, n: f"CP{n} {self._output(n).ocp:.3f}",
        "LSR<n>?": _read_lsr,
        "TRIPRST": _reset_trips,
        "EER?": _read_eer,
        "QER?": _read_qer,
        "CONFIG?": lambda self: str(self.config),
    }

    # -- physics and faults ------------------------------------------------------------------

    def step(self, dt: float) -> None:
        self._settle()

    def readings(self) -> dict[str, object]:
        values: dict[str, object] = {}
        for n, output in self.outputs.items():
            volts, amps = output.output()
            values[f"voltage{n}"], values[f"current{n}"] = volts, amps
        return values

    def overload(self, output: int, on: bool = True) -> None:
        """Short output `output`'s load: its OCP trips while it is on."""
        with self.lock:
            if output not in self.outputs:
                raise ValueError(f"no output {output}; outputs are {', '.join(map(str, OUTPUTS))}")
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
            raise ValueError(f"output must be one of {', '.join(map(str, OUTPUTS))}, not {output!r}") from None
        self.overload(number, _on_off(state))

    def _control_help(self) -> str:
        return super()._control_help() + " | overload OUTPUT on|off"

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **LineProtocolSimulator._CONTROL,
        "overload": _control_overload,
        "clear": clear,
        "help": _control_help,
    }
