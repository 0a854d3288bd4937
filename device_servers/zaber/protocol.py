"""Zaber's Binary protocol (T-Series, firmware 5.xx): the message table and its encoding.

Imported by the driver (driver.py) and the simulator (simulators/zaber.py); no I/O here.

Every message either way is 6 bytes: device number, command number, data as a signed 32-bit
integer, least significant byte first (`01 14 10 27 00 00` is [1, 20, 10000]: device 1, Move
Absolute 10000). Device 0 addresses every device on the chain. A reply carries the command it
answers, or command 255 and an error code; a motion (home, moves, stop) replies when it ends.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable

from ..core.framing import FixedLength

#: Terminal servers (Lantronix, Moxa) put their first serial port on TCP 10001.
TCP_PORT = 10001
FRAME = struct.Struct("<BBi")
FRAMING = FixedLength(FRAME.size)

#: The commands used, by the manual's names (and the error reply, 255).
MESSAGES = {
    "RESET": 0,
    "HOME": 1,
    "MOVE_ABSOLUTE": 20,
    "MOVE_RELATIVE": 21,
    "STOP": 23,
    "RESTORE_SETTINGS": 36,
    "SET_MODE": 40,
    "SET_TARGET_SPEED": 42,
    "SET_ACCELERATION": 43,
    "SET_MAX_POSITION": 44,
    "RETURN_SETTING": 53,
    "RETURN_STATUS": 54,
    "ECHO": 55,
    "RETURN_POSITION": 60,
    "ERROR": 255,
}
RESET, HOME, MOVE_ABSOLUTE, MOVE_RELATIVE, STOP = 0, 1, 20, 21, 23
RESTORE_SETTINGS, SET_MODE, SET_TARGET_SPEED, SET_ACCELERATION, SET_MAX_POSITION = 36, 40, 42, 43, 44
RETURN_SETTING, RETURN_STATUS, ECHO, RETURN_POSITION = 53, 54, 55, 60
ERROR = 255
#: Replies that end a motion, with the final position as data.
MOTION_ENDS = (HOME, MOVE_ABSOLUTE, MOVE_RELATIVE, STOP)

#: Error codes of the Binary Protocol Manual (the data of a command-255 reply).
ERROR_CODES = {
    1: "cannot home",
    2: "device numbering invalid",
    14: "supply voltage low",
    15: "supply voltage high",
    20: "target position out of range (move absolute)",
    21: "target position out of range (move relative)",
    22: "constant speed invalid",
    36: "peripheral ID invalid",
    37: "microstep resolution invalid",
    40: "device mode invalid",
    42: "target speed out of range",
    43: "acceleration out of range",
    44: "maximum position out of range",
    53: "setting invalid",
    64: "command invalid",
    255: "device busy",
}
ERROR_CANNOT_HOME, ERROR_SETTING_INVALID, ERROR_COMMAND_INVALID = 1, 53, 64
#: Error codes any command can get: command invalid, device busy.
ANY_COMMAND_ERRORS = (64, 255)

#: Return Status values.
STATUS = {
    0: "idle", 1: "homing", 10: "manual move", 11: "manual move", 13: "stalled", 18: "moving to a stored position",
    20: "moving (absolute)", 21: "moving (relative)", 22: "moving at constant speed", 23: "stopping",
}
IDLE, HOMING, STALLED, STOPPING = 0, 1, 13, 23
MOVING = {10, 11, 18, 20, 21, 22, 23}

#: Set Device Mode bits: no replies but to Return commands, knob off, homed (read only).
MODE_AUTO_REPLY_OFF = 1 << 0
MODE_KNOB_OFF = 1 << 3
MODE_HOMED = 1 << 7

#: T-Series firmware 5.xx units: target speed data × 9.375 µsteps/s, acceleration × 11 250 µsteps/s².
SPEED_UNIT = 9.375
ACCELERATION_UNIT = 11250.0
MICROSTEPS_PER_STEP = 64


def encode(device: int, command: int, data: int = 0) -> bytes:
    """One 6-byte message: device, command, data as int32 little-endian (two's complement)."""
    return FRAME.pack(device, command, data)


def decode(message: bytes) -> tuple[int, int, int]:
    """(device, command, data) of a 6-byte message."""
    return FRAME.unpack(message)


def message_id(frame: bytes) -> Hashable | None:
    """The command number of a whole message (ids of MESSAGES)."""
    return decode(frame)[1] if len(frame) == FRAME.size else None
