"""The Aim-TTi power supplies' command set (MX100QP / PL-P programmer's manuals; LAN: raw TCP 9221),
shared by the driver and the simulator.

A message is one line ending in LF; its commands are joined by `;`, and so are the answers of
its queries in the one reply line. Settings (`V1 12.0`, `OP1 1`) get no answer; a value the
supply cannot set is an execution error that `EER?` reports once (100, range error), and the
setting is kept as it was; a command it does not know is a command error and gets no answer.
Numbers are <NRF> in, <NR2> out: `V1?` -> `V1 12.000`, `V1O?` -> `12.000V`, `OVP1?` -> `VP1 13.20`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.limits import Limits

TCP_PORT = 9221

#: Limit event status register (LSR<n>?) bits; the register is cleared when read.
CONSTANT_VOLTAGE = 0x01  # output entered voltage limit
CONSTANT_CURRENT = 0x02  # output entered current limit
OVP_TRIP = 0x04  # over-voltage protection tripped
OCP_TRIP = 0x08  # over-current protection tripped
HARD_TRIP = 0x40  # a trip only the front panel or a power cycle resets
TRIPS = {OVP_TRIP: "over-voltage protection", OCP_TRIP: "over-current protection", HARD_TRIP: "hardware fault"}

#: What `EER?` answers (0: no error), in the manual's words.
EXECUTION_ERRORS = {
    100: "range error", 101: "corrupted set-up data", 102: "no set-up data", 103: "no such output",
    104: "not valid with the output on", 200: "read-only setting",
}
RANGE_ERROR = 100


@dataclass(frozen=True)
class Model:
    """What one model offers per output (its default range)."""

    name: str
    outputs: int
    voltage: Limits
    current: Limits
    ovp: Limits
    ocp: Limits

    def __str__(self) -> str:
        return f"Aim-TTi {self.name}"


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

#: The commands driver and simulator use, by the manual's name, with their syntax (an output
#: number and a value are the groups).
COMMANDS = {
    "*IDN?": r"\*IDN\?",
    "*RST": r"\*RST",
    "V<n> <V>": r"V(\d)\s+(\S+)",
    "I<n> <A>": r"I(\d)\s+(\S+)",
    "OVP<n> <V>": r"OVP(\d)\s+(\S+)",
    "OCP<n> <A>": r"OCP(\d)\s+(\S+)",
    "OP<n> <0|1>": r"OP(\d)\s+(\S+)",
    "V<n>?": r"V(\d)\?",
    "I<n>?": r"I(\d)\?",
    "V<n>O?": r"V(\d)O\?",
    "I<n>O?": r"I(\d)O\?",
    "OP<n>?": r"OP(\d)\?",
    "OVP<n>?": r"OVP(\d)\?",
    "OCP<n>?": r"OCP(\d)\?",
    "LSR<n>?": r"LSR(\d)\?",
    "TRIPRST": r"TRIPRST",
    "EER?": r"EER\?",
    "QER?": r"QER\?",
    "CONFIG?": r"CONFIG\?",
}
MESSAGES = {name: name for name in COMMANDS}
_SYNTAX = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in COMMANDS.items()}


def parse(command: str) -> tuple[str, tuple[str, ...]] | None:
    """(name, arguments) of one command, or None for one the supply does not know."""
    for name, pattern in _SYNTAX.items():
        if match := pattern.fullmatch(command.strip()):
            return name, match.groups()
    return None


def message_id(frame: bytes) -> str | None:
    """The command a message of one command is (`b"V1 12.0\\n"` -> 'V<n> <V>')."""
    line = frame.decode("ascii").strip()
    if ";" in line:
        return None
    found = parse(line)
    return found[0] if found else None
