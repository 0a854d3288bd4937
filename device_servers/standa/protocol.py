"""The XIMC binary protocol of Standa's 8SMC4-USB and 8SMC5 controllers: message table and encoding.

Imported by the driver (driver.py) and the simulator (simulators/standa.py); no I/O here.
Facts from the libximc documentation ("Communication protocol specification" and ximc.h):

- a command is four ASCII letters (`gpos`, `move`), then its data, then a CRC-16 of the data
  only, least significant byte first; a command without data has no CRC;
- the reply starts with the same four letters, then its data and the data's CRC;
- every number is little-endian: positions are a full-step count (int32) and a microstep part
  (int16, in 1/2^(MicrostepMode-1) of a step), speeds the same (uint32 and uint8);
- a controller that cannot carry a command out answers four letters of its own instead:
  `errc` (a command it does not know), `errd` (the data and its CRC disagree: corrupted on the
  way), `errv` (a value out of its range).

The CRC is CRC-16/MODBUS (polynomial 0xA001 reflected, initial 0xFFFF), as libximc's `CRC16`.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable

from ..core.errors import GarbledReply, shown
from ..core.framing import FramingError, LengthInHeader

#: Each command's data layout (after the four letters, before the CRC); None: no data.
REQUESTS: dict[bytes, struct.Struct | None] = {
    b"gets": None,  # status
    b"gpos": None,  # position
    b"move": struct.Struct("<ih6x"),  # Position, uPosition
    b"movr": struct.Struct("<ih6x"),  # DeltaPosition, uDeltaPosition
    b"stop": None,  # stop at once
    b"sstp": None,  # soft stop: decelerate
    b"home": None,  # find home
    b"zero": None,  # the present position becomes 0
    b"gmov": None,  # move settings
    b"smov": struct.Struct("<IBHHIBB9x"),
    b"geng": None,  # engine settings
    b"gedg": None,  # edges (borders) settings
    b"sedg": struct.Struct("<BBihih6x"),
}
#: Each reply's data layout; None: the four letters alone.
REPLIES: dict[bytes, struct.Struct | None] = {
    b"gets": struct.Struct("<BBBBBihqihhhhhhIIB4x"),
    b"gpos": struct.Struct("<ihq6x"),  # Position, uPosition, EncPosition
    b"gmov": REQUESTS[b"smov"],  # Speed, uSpeed, Accel, Decel, AntiplaySpeed, uAntiplaySpeed, MoveFlags
    b"geng": struct.Struct("<HHIBHhBH12x"),
    b"gedg": REQUESTS[b"sedg"],  # BorderFlags, EnderFlags, LeftBorder, uLeftBorder, RightBorder, uRightBorder
    **{code: None for code in (b"move", b"movr", b"stop", b"sstp", b"home", b"zero", b"smov", b"sedg")},
    b"errc": None,
    b"errd": None,
    b"errv": None,
}
ERRORS = {
    b"errc": "errc, a command the controller does not know",
    b"errd": "errd, the data it received and their CRC disagree (corrupted on the way)",
    b"errv": "errv, a value outside the range the controller accepts",
}
MESSAGES = {code.decode(): code for code in {**REQUESTS, **REPLIES}}
CRC_SIZE = 2

#: MvCmdSts (gets): the move command and its state.
MVCMD_NAME_BITS, MVCMD_HOME, MVCMD_ERROR, MVCMD_RUNNING = 0x3F, 0x06, 0x40, 0x80
MVCMD = {b"move": 0x01, b"movr": 0x02, b"stop": 0x05, b"home": 0x06, b"sstp": 0x08}
#: MoveSts (gets): the motor turns.
MOVE_STATE_MOVING = 0x01
#: Flags (gets): homed; a position control error (steps and encoder disagree: the stage stalled).
STATE_IS_HOMED, STATE_ALARM, STATE_CTP_ERROR = 0x20, 0x40, 0x80
FAULTS = {STATE_ALARM: "the controller is in ALARM", STATE_CTP_ERROR: "position control error (the stage stalled)"}
#: GPIOFlags (gets): on the right / left limit switch.
STATE_RIGHT_EDGE, STATE_LEFT_EDGE = 0x01, 0x02
#: BorderFlags (gedg): borders are positions (not the switches); stop at the left / right border.
BORDER_IS_ENCODER, BORDER_STOP_LEFT, BORDER_STOP_RIGHT = 0x01, 0x02, 0x04
PWR_STATE_NORM = 0x03
#: MicrostepMode (geng) 1 is full steps, 9 is 1/256 of a step.
MICROSTEP_MODES = range(1, 10)


def microsteps_per_step(mode: int) -> int:
    """Microsteps a full step has in MicrostepMode `mode` (1: 1, ..., 9: 256)."""
    return 1 << (mode - 1)


def split_steps(steps: float, microsteps: int) -> tuple[int, int]:
    """(full steps, microsteps) of a position or a speed in steps, to the nearest microstep."""
    whole, micro = divmod(round(steps * microsteps), microsteps)
    return whole, micro


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS, as libximc's CRC16 computes it over a command's or a reply's data."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def encode(code: bytes, *values: int, table: dict[bytes, struct.Struct | None] = REQUESTS) -> bytes:
    """A whole message: the four letters, then the data packed by the table's layout and its CRC."""
    layout = table[code]
    if layout is None:
        return code
    data = layout.pack(*values)
    return code + data + crc16(data).to_bytes(CRC_SIZE, "little")


def reply(code: bytes, *values: int) -> bytes:
    """A whole reply (the simulator's side of `encode`)."""
    return encode(code, *values, table=REPLIES)


def decode(message: bytes, table: dict[bytes, struct.Struct | None] = REPLIES) -> tuple[bytes, tuple[int, ...]]:
    """(the four letters, the data's values) of a whole message; GarbledReply when the CRC disagrees."""
    code, body = message[:4], message[4:]
    layout = table.get(code)
    if layout is None:
        return code, ()
    data, crc = body[:-CRC_SIZE], body[-CRC_SIZE:]
    if crc16(data).to_bytes(CRC_SIZE, "little") != crc:
        raise GarbledReply(f"bad CRC in {shown(message)}: the data's CRC is {crc16(data):04x}")
    return code, layout.unpack(data)


def _length(table: dict[bytes, struct.Struct | None], unknown: int | None) -> LengthInHeader:
    def body_length(code: bytes) -> int:
        if code not in table:
            if unknown is None:
                raise FramingError(f"{shown(code)} begins no XIMC message")
            return unknown
        layout = table[code]
        return 0 if layout is None else layout.size + CRC_SIZE

    return LengthInHeader(4, body_length)


#: How the host cuts the controller's replies (four letters it does not know: garbage).
REPLY_FRAMING = _length(REPLIES, None)
#: How the controller cuts commands: four letters it does not know are a command of their own (errc).
REQUEST_FRAMING = _length(REQUESTS, 0)


def message_id(frame: bytes) -> Hashable | None:
    """The four letters of a whole message."""
    code = frame[:4]
    lengths = [4 + (0 if t.get(code) is None else t[code].size + CRC_SIZE) for t in (REQUESTS, REPLIES) if code in t]
    return code if len(frame) in lengths else None
