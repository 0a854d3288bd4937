"""The Newport ESP301 motion controller's ASCII commands (ESP301 user's manual, remote mode),
shared by the driver and the simulator.

A command is `<axis><two letters><parameter>`: `1PA12.5` moves axis 1 to 12.5, `2TP?` asks where
axis 2 is, `TB?` (no axis) reads the error buffer. One line ending in CR holds commands joined
by `;`; the answers of its queries come back in one line joined by `,`, ending in CR LF, and a
line without a query gets no answer. Errors are not answered but kept in a buffer of ten that
`TB?` reads oldest first as `code, timestamp, message` (`0, 451322, NO ERROR DETECTED`); codes
of 100 and up belong to an axis (`113`: axis 1, MOTOR NOT ENABLED).
"""

from __future__ import annotations

import re

AXES = (1, 2, 3)
#: The port a terminal server gives the controller's RS-232 line (as the simulator's default).
TCP_PORT = 10002
MILLIMETRES = 2  # the SN code of mm
#: Home search modes of OR (manual): what each finds.
HOME_MODES = {
    0: "position 0", 1: "home switch and index", 2: "home switch", 3: "positive limit switch",
    4: "negative limit switch", 5: "positive limit switch and index", 6: "negative limit switch and index",
}
#: General errors, by code.
GENERAL_ERRORS = {
    0: "NO ERROR DETECTED",
    6: "COMMAND DOES NOT EXIST",
    7: "PARAMETER OUT OF RANGE",
    9: "AXIS NUMBER OUT OF RANGE",
    37: "AXIS NUMBER MISSING",
    38: "COMMAND PARAMETER MISSING",
}
#: Axis errors: the code is 100 × axis + this number.
PARAMETER_OUT_OF_RANGE = 1
POSITIVE_HARDWARE_LIMIT = 4
NEGATIVE_HARDWARE_LIMIT = 5
POSITIVE_SOFTWARE_LIMIT = 6
NEGATIVE_SOFTWARE_LIMIT = 7
MAXIMUM_VELOCITY_EXCEEDED = 10
MAXIMUM_ACCELERATION_EXCEEDED = 11
MOTOR_NOT_ENABLED = 13
HOMING_ABORTED = 20
NOT_ALLOWED_DURING_HOMING = 30
AXIS_ERRORS = {
    PARAMETER_OUT_OF_RANGE: "PARAMETER OUT OF RANGE",
    POSITIVE_HARDWARE_LIMIT: "POSITIVE HARDWARE LIMIT DETECTED",
    NEGATIVE_HARDWARE_LIMIT: "NEGATIVE HARDWARE LIMIT DETECTED",
    POSITIVE_SOFTWARE_LIMIT: "POSITIVE SOFTWARE LIMIT DETECTED",
    NEGATIVE_SOFTWARE_LIMIT: "NEGATIVE SOFTWARE LIMIT DETECTED",
    MAXIMUM_VELOCITY_EXCEEDED: "MAXIMUM VELOCITY EXCEEDED",
    MAXIMUM_ACCELERATION_EXCEEDED: "MAXIMUM ACCELERATION EXCEEDED",
    MOTOR_NOT_ENABLED: "MOTOR NOT ENABLED",
    HOMING_ABORTED: "HOMING ABORTED",
    NOT_ALLOWED_DURING_HOMING: "COMMAND NOT ALLOWED DURING HOMING",
}

#: The commands driver and simulator use, by their two letters (the manual's names beside).
MESSAGES = {
    "move absolute": "PA", "move relative": "PR", "home search": "OR", "stop": "ST", "abort": "AB",
    "motion done": "MD", "motor on": "MO", "motor off": "MF", "position": "TP", "desired position": "DP",
    "actual velocity": "TV", "define home": "DH", "left limit": "SL", "right limit": "SR", "units": "SN",
    "identity": "ID", "version": "VE", "error code": "TE", "error message": "TB", "controller status": "TS",
    "hardware status": "PH", "velocity": "VA", "acceleration": "AC", "deceleration": "AG",
    "maximum velocity": "VU", "maximum acceleration": "AU", "e-stop deceleration": "AE", "proportional gain": "KP",
    "integral gain": "KI", "derivative gain": "KD", "home search mode": "OM",
}
#: Queries that need no `?`.
READ_ONLY = {"TP", "TS", "PH", "DP", "TV", "TE", "TB", "VE"}
#: Commands of the controller, not of one axis; ST and MD take an axis or mean all.
CONTROLLER_COMMANDS = {"AB", "VE", "TE", "TB", "TS", "PH", "ST", "MD"}
OPTIONAL_AXIS = {"ST", "MD"}
#: How many `,`-separated fields the answer of these queries holds (others: one).
ANSWER_FIELDS = {"PH": 2, "ID": 2, "TB": 3}
COMMAND = re.compile(r"^(\d*)([A-Z]{2})(\?|.*)$")


def split(command: str) -> tuple[str, str, str] | None:
    """(axis digits, two letters, parameter or `?`) of one command, case and spaces aside."""
    match = COMMAND.match(command.replace(" ", "").upper())
    return match.groups() if match else None  # type: ignore[return-value]


def answer_fields(command: str) -> int:
    """How many fields the answer to `command` has: 0 for a command that answers nothing."""
    parts = split(command)
    if parts is None:
        return 0
    _, name, parameter = parts
    if parameter != "?" and not (name in READ_ONLY and parameter == ""):
        return 0
    return ANSWER_FIELDS.get(name, 1)


def error_message(code: int) -> str:
    """The manual's words for an error code."""
    if code >= 100:
        return AXIS_ERRORS.get(code % 100, "UNKNOWN ERROR")
    return GENERAL_ERRORS.get(code, "UNKNOWN ERROR")


def message_id(frame: bytes) -> str | None:
    """The command a line of one command is (`b"1PA12.5\\r"` -> 'PA')."""
    line = frame.decode("ascii").strip()
    if ";" in line:
        return None
    parts = split(line)
    return parts[1] if parts and parts[1] in MESSAGES.values() else None
