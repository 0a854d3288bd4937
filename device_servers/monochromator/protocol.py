"""The Newport (Oriel) Cornerstone 130B/260B monochromators' RS-232 command set, shared by the
driver and the simulator (user's manuals MCS130B and MCS260B, appendix "Remote commands and queries").

The port runs at 9600 baud, 8 data bits, no parity, 1 stop bit, no flow control. A statement
ends with CR LF; the instrument echoes every character it receives (echo is on as shipped), so a
command comes back as itself and nothing more, and a query as itself followed by its answer;
every answer ends with CR LF. In the manual's words (standard mode, echo on):

    GOWAVE 500[cr][lf]   ->  GOWAVE 500[cr][lf]
    WAVE?[cr][lf]        ->  WAVE?[cr][lf]500.01[cr][lf]

A statement the instrument does not take sets its error code, which `ERROR?` reports once
(0: none; `ERROR_CODES`). Motions (`GOWAVE`, `GRAT`, `FILTER`) are overlapped: the echo comes at
once and the motion goes on; `*OPC` asks the instrument to set bit 0 of its event status
register once every pending operation has ended, and `*ESR?` reads (and clears) that register
(the manual's way of synchronising with the end of a motion). `ABORT` stops the wavelength drive.

Not found in the manual pages at hand, and taken from maintained public drivers: `GRAT?`
answers `<number>,<lines/mm>,<label>` (fsc2's oriel_cs_260 module reads the number before the
comma; the oriel-cornerstone-260 library reads number, lines and label), `SHUTTER?` answers `O`
or `C` and `FILTER?` the position's digit (fsc2).
"""

from __future__ import annotations

import re

from ..core.limits import Limits

BAUD_RATE = 9600
#: What ends a statement and every answer.
TERMINATOR = b"\r\n"

#: The wavelength drive's whole span (nm); each grating allows a part of it (error 3 beyond).
DRIVE_RANGE = Limits(0.0, 2500.0, "nm")
#: Turret positions (the CS260B's three gratings; a CS130B refuses a third: error 2).
GRATINGS = Limits(1, 3)
FILTERS = Limits(1, 6)
#: Typical figures of the drive, in the manual's specifications' order of magnitude: what a
#: driver expects a motion to take, and what the simulator takes.
SLEW_NM_PER_S = 200.0
SETTLE_S = 0.2
GRATING_CHANGE_S = 3.0
FILTER_CHANGE_S = 1.0

#: `*ESR?` bit 0: every operation pending when `*OPC` came has ended.
OPERATION_COMPLETE = 0x01

#: What `ERROR?` answers, in the manual's words.
ERROR_CODES = {
    0: "no error",
    1: "command not understood",
    2: "bad parameter used in command",
    3: "destination position for wavelength motion not allowed",
    6: "accessory not present (usually filter wheel)",
    8: "could not home wavelength drive",
    9: "label too long",
    10: "system error",
}
COMMAND_NOT_UNDERSTOOD, BAD_PARAMETER, POSITION_NOT_ALLOWED, NO_ACCESSORY = 1, 2, 3, 6

#: The statements driver and simulator use, by the manual's name, with their syntax (a
#: parameter is the group). Statements are case-insensitive.
STATEMENTS = {
    "GOWAVE <nm>": r"GOWAVE\s+(\S+)",
    "WAVE?": r"WAVE\?",
    "GRAT <n>": r"GRAT\s+(\S+)",
    "GRAT?": r"GRAT\?",
    "FILTER <n>": r"FILTER\s+(\S+)",
    "FILTER?": r"FILTER\?",
    "SHUTTER <O|C>": r"SHUTTER\s+(\S+)",
    "SHUTTER?": r"SHUTTER\?",
    "UNITS <NM|UM|WN>": r"UNITS\s+(\S+)",
    "UNITS?": r"UNITS\?",
    "ABORT": r"ABORT",
    "INFO?": r"INFO\?",
    "ERROR?": r"ERROR\?",
    "*OPC": r"\*OPC",
    "*ESR?": r"\*ESR\?",
}
MESSAGES = {name: name for name in STATEMENTS}
_SYNTAX = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in STATEMENTS.items()}


def parse(statement: str) -> tuple[str, tuple[str, ...]] | None:
    """(name, parameters) of one statement, or None for one the instrument does not understand."""
    for name, pattern in _SYNTAX.items():
        if match := pattern.fullmatch(statement.strip()):
            return name, match.groups()
    return None


def message_id(frame: bytes) -> str | None:
    """The statement a frame is (`b"GOWAVE 500\\r\\n"` -> 'GOWAVE <nm>'); an answer is none."""
    found = parse(frame.decode("ascii"))
    return found[0] if found else None


def wavelength_text(nm: float) -> str:
    """A wavelength as `WAVE?` answers it: up to three decimals, no trailing zeros (500.01, 500)."""
    return f"{nm:.3f}".rstrip("0").rstrip(".")


def grating_text(number: int, lines: int, label: str) -> str:
    """`GRAT?`'s answer: `1,1200,VIS`."""
    return f"{number},{lines},{label}"


def parse_grating(answer: str) -> tuple[int, int, str]:
    """(number, lines/mm, label) of `GRAT?`'s answer; ValueError when it is none."""
    number, lines, label = answer.split(",", 2)
    return int(number), int(lines), label.strip()


def error_words(code: int) -> str:
    return f"{ERROR_CODES.get(code, 'unknown error')} (error {code})"
