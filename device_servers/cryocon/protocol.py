"""The Cryo-Con 24C's remote language (Model 24C manual, Remote Programming Guide; TCP port 5000),
shared by the driver and the simulator.

A message is one line ending in LF holding commands joined by `;`. A command is keywords joined
by `:`, each with its argument (`LOOP 1:SETPT 12.5`, `INPUT? A`); without a leading `:` it
stays in the node of the command before it (`LOOP 1:SETPT?;TYPE?` asks loop 1 twice), with one
it starts from the root (`INPUT? A;:CONTROL?`). A keyword is its short form (the upper-case
part of the manual's spelling) followed by any letters: `INP`, `INPUT`, `SETPOINT` for `SETPt`.
The answers of one message's queries come back in one line joined by `;`, ending in CR LF; a
command the instrument does not know, or a value it refuses, is answered `NAK` in its place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from ..core.spelling import Headers

TCP_PORT = 5000
INPUTS = ("A", "B", "C", "D")
LOOPS = (1, 2)
#: Control types of loops 1 and 2 (manual: TYPe); TABLE and RAMPT use the instrument's PID tables.
LOOP_TYPES = ("OFF", "MAN", "PID", "TABLE", "RAMPP", "RAMPT")
#: Heater ranges per loop; each is a tenth of the power of the one before (manual: LOOP RANGe).
HEATER_RANGES = {1: ("HI", "MID", "LOW"), 2: ("HI", "LOW")}
UNITS = ("K", "C", "F")
HEATER_OK = "--Htr OK--"
#: A temperature input with no sensor reads this.
NO_SENSOR = "......."
NAK = "NAK"

#: The commands driver and simulator use, as the manual spells them; a query ends in `?`.
COMMANDS = (
    "*IDN?", "*OPC?", "*CLS", "CONTrol", "CONTrol?", "STOP",
    "INPut?", "INPut:TEMPerature?", "INPut:UNITs", "INPut:UNITs?",
    "LOOP:SOURce", "LOOP:SOURce?", "LOOP:SETPt", "LOOP:SETPt?", "LOOP:ERRor?", "LOOP:TYPe", "LOOP:TYPe?",
    "LOOP:RANGe", "LOOP:RANGe?", "LOOP:RAMP?", "LOOP:RATe", "LOOP:RATe?", "LOOP:PGAin", "LOOP:PGAin?",
    "LOOP:IGAin", "LOOP:IGAin?", "LOOP:DGAin", "LOOP:DGAin?", "LOOP:PMAnual", "LOOP:PMAnual?",
    "LOOP:MAXPwr", "LOOP:MAXPwr?", "LOOP:MAXSet", "LOOP:MAXSet?", "LOOP:OUTPwr?", "LOOP:HTRRead?",
    "LOOP:LOAD", "LOOP:LOAD?",
)
MESSAGES = {command: command for command in COMMANDS}
HEADERS = Headers(COMMANDS, any_length=True)


@dataclass(frozen=True)
class Node:
    """One keyword of a command with its argument: `LOOP 1`, `SETPT 12.5`, `TYPE?`."""

    keyword: str
    query: bool
    argument: str

    _SYNTAX: ClassVar[re.Pattern[str]] = re.compile(r"\s*(\*?[A-Za-z]+)\s*(\?)?\s*(.*?)\s*$")

    @classmethod
    def parse(cls, text: str) -> Node:
        match = cls._SYNTAX.match(text)
        if match is None:
            return cls("", False, text)
        keyword, mark, argument = match.groups()
        return cls(keyword.upper(), bool(mark), argument)


def nodes(command: str) -> list[Node]:
    """The keywords of one command as written (`:` at its start removed)."""
    return [Node.parse(part) for part in command.strip().lstrip(":").split(":")]


def command_of(path: list[Node]) -> str | None:
    """Which command of COMMANDS a path of keywords from the root spells, or None."""
    if not path or any(node.query for node in path[:-1]):
        return None
    return HEADERS.find(":".join(node.keyword for node in path) + ("?" if path[-1].query else ""))


def message_id(frame: bytes) -> str | None:
    """The command a message of one command is (`b"LOOP 1:SETPT?\\n"` -> 'LOOP:SETPt?')."""
    line = frame.decode("ascii").strip().removesuffix(";")
    if not line or ";" in line:
        return None
    return command_of(nodes(line))
