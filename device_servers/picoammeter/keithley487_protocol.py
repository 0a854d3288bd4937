"""The Keithley 487 picoammeter / voltage source's device-dependent commands (DDC), shared by the
driver and the simulator.

A message is commands, each a letter and its options, carried out at `X` (`R3X`, `C1X`,
`V10,0,1X`). An unknown letter is the IDDC error, a bad option the IDDCO error, and the whole
message is ignored; `U1X` reports the errors and clears them. A message with `B0` (a reading)
or a `U` status answers; the others make no reply. The U1X error word is `487` and a 0/1 digit
per error in the order the 6487 manual's 487 emulation lists them. With `G0` a reading has the
prefix `NDCA` (N normal, O overflow, Z zero check; DCA: DC amps): `NDCA+1.2345E-09`.

`U0X`, the machine status, has fixed fields; those read here are at the offsets lab software
reads from real 487s: C (zero check) at 7, O (operate) at 28, R at 32 (auto, then the range
digit at 34), V at 39 (source range at 40, current limit at 41). `U9X` is the source status
`487<interlock open 0|1><in current limit 0|1>`; `U8X` the source value `VS=+1.0000E+01V`.
"""

from __future__ import annotations

import re
from collections.abc import Collection

RANGES = (2e-9, 20e-9, 200e-9, 2e-6, 20e-6, 200e-6, 2e-3)
#: The U1X error word's conditions, left to right after '487'.
ERRORS = (
    "IDDC (unknown command)", "IDDCO (illegal command option)", "no remote", "self-test failed",
    "trigger overrun", "conflict", "cal locked", "zero check", "calibration", "E2PROM defaults",
    "E2PROM cal constants", "V-source conflict", "interlock open",
)
IDDC, IDDCO, INTERLOCK = ERRORS[0], ERRORS[1], ERRORS[-1]
#: The source's programmable magnitude per range code (0: 50 V, 1: 500 V), V.
VOLT_RANGES = (50.5, 505.0)
#: The current limit by (range code, limit code): limit 1 is 25 uA on both ranges.
CURRENT_LIMITS = {(0, 0): 25e-3, (1, 0): 2.5e-3, (0, 1): 25e-6, (1, 1): 25e-6}
#: Machine status (U0X) fields: zero check, operate, auto range and range, source range and limit.
ZERO_CHECK, OPERATE, RANGE, SOURCE = slice(7, 9), slice(28, 30), slice(32, 35), slice(39, 42)
#: The options each letter takes, as integers (V takes `volts,range,limit`).
OPTIONS = {
    "A": range(2), "B": range(1), "C": range(3), "D": range(1), "F": range(2), "G": range(2), "I": range(1),
    "K": range(4), "M": range(256), "N": range(513), "O": range(2), "P": range(2), "R": range(8),
    "S": range(2), "T": range(8), "U": (0, 1, 8, 9), "Z": range(2),
}
_COMMAND = re.compile(r"([A-Z])((?:[-+]?[0-9.]+(?:E[-+]?[0-9]+)?)?(?:,[-+]?[0-9.]*(?:E[-+]?[0-9]+)?)*)")

#: The commands driver and simulator use: a letter, and for U which status.
MESSAGES = {
    "reading": "B", "zero check": "C", "prefix": "G", "range": "R", "operate": "O", "integration": "S",
    "voltage source": "V", "machine status": "U0", "error status": "U1", "source value": "U8",
    "source status": "U9",
}


def commands(message: str) -> list[tuple[str, str]]:
    """(letter, options) of each command of a message up to its last X; ValueError naming the
    first letter the 487 does not know."""
    found = []
    for part in message.replace(" ", "").upper().split("X"):
        position = 0
        while position < len(part):
            match = _COMMAND.match(part, position)
            if match is None or match[1] not in (*OPTIONS, "V"):
                raise ValueError(f"unknown command at {part[position:]!r}")
            found.append((match[1], match[2]))
            position = match.end()
    return found


def error_word(errors: Collection[str]) -> str:
    return "487" + "".join("1" if name in errors else "0" for name in ERRORS)


def errors_in(word: str) -> list[str]:
    """The errors a U1X word reports."""
    digits = word.strip().removeprefix("487")
    if not word.strip().startswith("487") or len(digits) != len(ERRORS) or set(digits) - {"0", "1"}:
        raise ValueError(f"expected 487 and {len(ERRORS)} digits 0 or 1")
    return [name for name, digit in zip(ERRORS, digits) if digit == "1"]


def machine_status(text: str) -> str:
    """A U0X answer, checked where its fields are read."""
    status = text.strip()
    if len(status) < 44 or not status.startswith("487") or (status[7], status[28], status[32], status[39]) != tuple("CORV"):
        raise ValueError("not a 487 machine status")
    return status


def reading(text: str) -> tuple[str, float]:
    """(N normal | O overflow | Z zero check, amps) of `NDCA+1.2345E-09`."""
    value = text.strip()
    if len(value) < 5 or value[0] not in "NOZ" or value[1:4] != "DCA":
        raise ValueError("expected e.g. NDCA+1.2345E-09")
    return value[0], float(value[4:])


def source_status(text: str) -> tuple[bool, bool]:
    """(interlock closed, in current limit) of a U9X answer."""
    word = text.strip()
    if len(word) != 5 or not word.startswith("487") or set(word[3:]) - {"0", "1"}:
        raise ValueError("expected 487 and two digits 0 or 1")
    return word[3] == "0", word[4] == "1"


def message_id(frame: bytes) -> str | None:
    """The command a message of one command is (`b"U1X\\n"` -> 'U1', `b"R3X\\n"` -> 'R')."""
    try:
        found = commands(frame.decode("ascii").strip().removesuffix("X"))
    except ValueError:
        return None
    if len(found) != 1:
        return None
    letter, option = found[0]
    return f"U{option}" if letter == "U" else letter
