"""Driver of an Aim-TTi (Thurlby Thandar) programmable power supply: MX100QP, PL-P series.

Pure Python over a `Link` (the LAN interface is a raw socket on TCP 9221):

    psu = AimTtiPsu(SerialLink("socket://psu:9221"), MODELS["MX100QP"])
    psu.connect()
    psu.set_voltage(1, 12.0)            # V1 12.000, read back with V1?
    psu.set_output(1, True)             # OP1 1
    psu.read_output(1)                  # OutputStatus(voltage=12.0, current=0.12, ...)

The command set is the programmer's manual's: settings `V<n> <v>`, `I<n> <a>`, `OVP<n> <v>`,
`OCP<n> <a>`, `OP<n> 0|1`, `TRIPRST`; queries `V<n>?` → `V1 12.000`, `I<n>?` → `I1 0.100`,
`V<n>O?` → `12.000V`, `I<n>O?` → `0.100A`, `OP<n>?` → `1`, `OVP<n>?` → `VP1 13.20`,
`OCP<n>?` → `CP1 3.300`, `LSR<n>?` (limit event status register, cleared when read),
`EER?` / `QER?` (execution / query error number, cleared when read), `*IDN?`. Commands end with
LF and get no reply; queries in one message are joined by `;` and so are their answers.

The limit event status register reports a trip once: this driver keeps the trips it has seen
until `reset_trips` (TRIPRST) or until that output is switched on again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..core.errors import InstrumentError, RejectedValue, shown
from ..core.limits import Limits
from ..core.link import Link

TCP_PORT = 9221

#: Limit event status register (LSR<n>?) bits.
CONSTANT_VOLTAGE = 0x01  # output entered voltage limit
CONSTANT_CURRENT = 0x02  # output entered current limit
OVP_TRIP = 0x04  # over-voltage protection tripped
OCP_TRIP = 0x08  # over-current protection tripped
HARD_TRIP = 0x40  # a trip only the front panel or a power cycle resets
TRIPS = {OVP_TRIP: "over-voltage protection", OCP_TRIP: "over-current protection", HARD_TRIP: "hardware fault"}


@dataclass(frozen=True)
class Model:
    """What one model offers per output (its default range)."""

    name: str
    outputs: int
    voltage: Limits
    current: Limits
    ovp: Limits
    ocp: Limits


def _model(name: str, outputs: int, volts: float, amps: float, ovp_high: float) -> Model:
    return Model(
        name, outputs, Limits(0.0, volts, "V"), Limits(0.0, amps, "A"),
        Limits(1.0, ovp_high, "V"), Limits(0.01, round(amps * 1.1, 3), "A"),
    )


MODELS = {
    model.name: model
    for model in (
        _model("MX100QP", 4, 35.0, 3.0, 40.0),  # the 35 V / 3 A range of each output
        _model("MX100TP", 3, 35.0, 3.0, 40.0),
        _model("PL303-P", 1, 30.0, 3.0, 35.0),
        _model("PL303QMD-P", 2, 30.0, 3.0, 35.0),
        _model("PL155-P", 1, 15.0, 5.0, 17.0),
        _model("PL601-P", 1, 60.0, 1.5, 66.0),
    )
}


@dataclass(frozen=True)
class OutputStatus:
    voltage_setpoint: float  # V
    current_limit: float  # A
    voltage: float  # V, read back at the output
    current: float  # A, read back at the output
    on: bool
    ovp: float  # V, over-voltage trip level
    ocp: float  # A, over-current trip level
    limit_events: int  # LSR bits seen since the last read
    trips: tuple[str, ...]  # protections tripped and not reset (names of TRIPS)

    @property
    def constant_current(self) -> bool:
        return bool(self.limit_events & CONSTANT_CURRENT)


class AimTtiPsu:
    """One Aim-TTi power supply: one method per operation; each setting is read back."""

    def __init__(self, link: Link, model: Model = MODELS["MX100QP"], outputs: int | None = None) -> None:
        self.link = link
        self.model = model
        self.outputs = tuple(range(1, (outputs or model.outputs) + 1))
        if len(self.outputs) > model.outputs:
            raise ValueError(f"the {model.name} has {model.outputs} output(s), not {len(self.outputs)}")
        self._tripped: dict[int, int] = dict.fromkeys(self.outputs, 0)

    def connect(self) -> None:
        """Open the link (from a script; the device opens its own)."""
        self.link.open()

    def close(self) -> None:
        self.link.close()

    def identify(self) -> str:
        """'THURLBY THANDAR, MX100QP, 527193, 1.11-2.01-1.05': maker, model, serial, firmware."""
        return self._ask("*IDN?").strip()

    def check_model(self) -> str:
        """The identity, if it names this driver's model; else InstrumentError (a wrong `Model`)."""
        identity = self.identify()
        fields = [field.strip().upper() for field in identity.split(",")]
        if len(fields) < 2 or fields[1] != self.model.name.upper():
            raise InstrumentError(f"the instrument is {shown(identity)}, not an Aim-TTi {self.model.name}")
        return identity

    def read_output(self, output: int) -> OutputStatus:
        """Set-points, read-backs, on/off, protection levels and limit events of one output, in
        one message."""
        n = self._check_output(output)
        queries = [f"V{n}?", f"I{n}?", f"V{n}O?", f"I{n}O?", f"OP{n}?", f"OVP{n}?", f"OCP{n}?", f"LSR{n}?"]
        answers = self._ask_all(queries)
        parsers: list[Callable[[str], float | int]] = [
            _prefixed(f"V{n}"), _prefixed(f"I{n}"), _suffixed("V"), _suffixed("A"), _integer,
            _prefixed(f"VP{n}"), _prefixed(f"CP{n}"), _integer,
        ]
        values = [self._parse(parse, answer, query) for parse, answer, query in zip(parsers, answers, queries)]
        limit_events = int(values[7])
        self._tripped[n] |= limit_events & sum(TRIPS)
        return OutputStatus(
            voltage_setpoint=values[0], current_limit=values[1], voltage=values[2], current=values[3],
            on=bool(values[4]), ovp=values[5], ocp=values[6], limit_events=limit_events, trips=self.trips(n),
        )

    def trips(self, output: int) -> tuple[str, ...]:
        """The protections of `output` that tripped since the last reset, by name."""
        bits = self._tripped[self._check_output(output)]
        return tuple(name for bit, name in TRIPS.items() if bits & bit)

    def set_voltage(self, output: int, volts: float) -> float:
        """The output's voltage set-point; returns the value read back."""
        value = self.model.voltage.check(f"output {output} voltage", volts)
        return self._set(output, f"V{output}", f"V{output}", value)

    def set_current_limit(self, output: int, amps: float) -> float:
        """The output's current limit (constant-current level)."""
        value = self.model.current.check(f"output {output} current limit", amps)
        return self._set(output, f"I{output}", f"I{output}", value)

    def set_ovp(self, output: int, volts: float) -> float:
        """The output's over-voltage trip level."""
        value = self.model.ovp.check(f"output {output} over-voltage protection", volts)
        return self._set(output, f"OVP{output}", f"VP{output}", value)

    def set_ocp(self, output: int, amps: float) -> float:
        """The output's over-current trip level."""
        value = self.model.ocp.check(f"output {output} over-current protection", amps)
        return self._set(output, f"OCP{output}", f"CP{output}", value)

    def set_output(self, output: int, on: bool) -> bool:
        """Switch the output on or off; returns its state read back (off again if it trips at
        once). Switching on clears the trips kept for that output: the limit events from
        before are read and dropped first, those of the switching-on are kept."""
        n = self._check_output(output)
        with self.link.lock:
            if on:
                self._ask(f"LSR{n}?")
            state, events = self._ask_all([f"OP{n}?", f"LSR{n}?"], after=f"OP{n} {int(bool(on))}")
            if on:
                self._tripped[n] = 0
            self._tripped[n] |= int(self._parse(_integer, events, f"LSR{n}?")) & sum(TRIPS)
        return bool(self._parse(_integer, state, f"OP{n}?"))

    def reset_trips(self) -> None:
        """Clear every trip condition (TRIPRST); the outputs that tripped stay off. The limit
        events from before the reset are read and dropped."""
        with self.link.lock:
            self._ask_all([f"LSR{n}?" for n in self.outputs])
            self._ask_all(["EER?", "QER?"], after="TRIPRST")  # the reset is done when this answers
            self._tripped = dict.fromkeys(self.outputs, 0)

    def read_errors(self) -> tuple[int, int]:
        """The execution and query error numbers (EER?, QER?), each cleared by reading; 0 = none."""
        execution, query = self._ask_all(["EER?", "QER?"])
        return self._parse(_integer, execution, "EER?"), self._parse(_integer, query, "QER?")

    def read_configuration(self) -> int:
        """The operating mode number (CONFIG?)."""
        return int(self._parse(_integer, self._ask("CONFIG?"), "CONFIG?"))

    # -- internals ----------------------------------------------------------------------------

    def _set(self, output: int, header: str, answer_header: str, value: float) -> float:
        n = self._check_output(output)
        with self.link.lock:
            reply = self._ask(f"{header}?", after=f"{header} {value:.3f}")
            read_back = self._parse(_prefixed(answer_header), reply, f"{header}?")
            if not math.isclose(read_back, value, abs_tol=0.0015):
                execution, _ = self.read_errors()
                raise InstrumentError(
                    f"output {n} did not take {header} {value:.3f}: it reads back {shown(reply)}"
                    + (f" (execution error {execution})" if execution else "")
                )
        return read_back

    def _ask(self, query: str, after: str | None = None) -> str:
        """The answer to `query`; `after` is a command sent just before it, in the same write
        (two small writes in a row wait ~40 ms for TCP's delayed acknowledgement)."""
        end = self.link.write_terminator
        message = (after.encode("ascii") + end if after else b"") + query.encode("ascii") + end
        return self.link.transaction(message).decode("ascii", errors="replace").strip()

    def _ask_all(self, queries: list[str], after: str | None = None) -> list[str]:
        reply = self._ask(";".join(queries), after)
        answers = [answer.strip() for answer in reply.split(";")]
        if len(answers) != len(queries):
            raise InstrumentError(f"expected {len(queries)} answers to {shown(';'.join(queries))}: {shown(reply)}")
        return answers

    def _check_output(self, output: int) -> int:
        if output not in self.outputs:
            raise RejectedValue(f"output {output!r} does not exist: outputs are {', '.join(map(str, self.outputs))}")
        return output

    @staticmethod
    def _parse(parse: Callable[[str], float | int], text: str, query: str) -> float | int:
        try:
            return parse(text)
        except ValueError as exc:
            raise InstrumentError(f"cannot read the answer {shown(text)} to {query} ({exc})") from None


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _prefixed(header: str) -> Callable[[str], float]:
    """`V1 12.000` → 12.0 (the answer names the setting it reads)."""

    def parse(text: str) -> float:
        name, _, value = text.partition(" ")
        if name.upper() != header.upper():
            raise ValueError(f"expected {header} <value>")
        return _number(value)

    return parse


def _suffixed(unit: str) -> Callable[[str], float]:
    """`12.000V` → 12.0 (a read-back carries its unit)."""

    def parse(text: str) -> float:
        if not text.upper().endswith(unit):
            raise ValueError(f"expected <value>{unit}")
        return _number(text[: -len(unit)])

    return parse


def _integer(text: str) -> int:
    return int(text)
