"""Thorlabs APT ("Host-Controller Communications Protocol"): the message table and its encoding.

Imported by the driver (driver.py) and the simulator (simulators/apt.py); no I/O here.

A message is a 6-byte header: message id (u16, little-endian), two parameter bytes, destination,
source. When the destination has bit 0x80 set, the two parameter bytes are instead the length of
a data block that follows (`53 04 06 00 d0 01` + 6 bytes: MOVE_ABSOLUTE with its channel and
position). The host is 0x01, a single-channel cube 0x50. No checksum.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from ..core.errors import GarbledReply, shown
from ..core.framing import FramingError, LengthInHeader

HOST = 0x01
#: A single-channel controller (T-Cube, K-Cube) on its own USB link.
CONTROLLER = 0x50
CHANNEL = 1
#: Longest data block of any APT message (the manual: none exceeds 255 bytes).
MAX_DATA = 255
#: Addresses a frame can come from or go to: host, rack, bays 1-10, generic USB unit.
ADDRESSES = frozenset({0x01, 0x11, *range(0x21, 0x2B), 0x50})

#: Counts per mm of the stage (the lab's Z8-class stage: 1 mm is 0x6400 in the manual's example).
COUNTS_PER_MM = 25_600
TRAVEL_MM = 50.0
#: The reference caps the stage at 5 mm/s and 5 mm/s².
MAX_VELOCITY_MM = 5.0
MAX_ACCELERATION_MM = 5.0
#: Sampling interval of the TDC001/KDC101 servo loop, in seconds: velocities and accelerations go
#: over the wire as counts per sample times 65536 (velocity) or per sample² times 65536.
SAMPLE_S = 2048 / 6e6


@dataclass(frozen=True)
class Message:
    """One APT message: its id and, for long messages, the layout of its data block."""

    name: str
    id: int
    data: str | None = None  # struct format (little-endian) of the data block; None: header only

    @property
    def size(self) -> int:
        return 0 if self.data is None else struct.calcsize(self.data)


#: The messages the driver and the simulator use, as the manual names them.
TABLE = {
    message.name: message
    for message in (
        Message("HW_REQ_INFO", 0x0005),
        Message("HW_GET_INFO", 0x0006, "<l8sH4B48s12sHHH"),
        Message("HW_START_UPDATEMSGS", 0x0011),
        Message("HW_STOP_UPDATEMSGS", 0x0012),
        Message("HW_NO_FLASH_PROGRAMMING", 0x0018),
        Message("MOD_SET_CHANENABLESTATE", 0x0210),
        Message("MOD_REQ_CHANENABLESTATE", 0x0211),
        Message("MOD_GET_CHANENABLESTATE", 0x0212),
        Message("MOD_IDENTIFY", 0x0223),
        Message("MOT_SET_VELPARAMS", 0x0413, "<Hlll"),
        Message("MOT_REQ_VELPARAMS", 0x0414),
        Message("MOT_GET_VELPARAMS", 0x0415, "<Hlll"),
        Message("MOT_MOVE_HOME", 0x0443),
        Message("MOT_MOVE_HOMED", 0x0444),
        Message("MOT_MOVE_RELATIVE", 0x0448, "<Hl"),
        Message("MOT_MOVE_ABSOLUTE", 0x0453, "<Hl"),
        Message("MOT_MOVE_COMPLETED", 0x0464, "<HlhHL"),
        Message("MOT_MOVE_STOP", 0x0465),
        Message("MOT_MOVE_STOPPED", 0x0466, "<HlhHL"),
        Message("MOT_REQ_STATUSUPDATE", 0x0480),
        Message("MOT_GET_STATUSUPDATE", 0x0481, "<HllL"),
        Message("MOT_REQ_DCSTATUSUPDATE", 0x0490),
        Message("MOT_GET_DCSTATUSUPDATE", 0x0491, "<HlhHL"),
        Message("MOT_ACK_DCSTATUSUPDATE", 0x0492),
    )
}
BY_ID = {message.id: message for message in TABLE.values()}
#: name -> message id, as every protocol module declares it.
MESSAGES = {name: message.id for name, message in TABLE.items()}

#: Status bits of GET_(DC)STATUSUPDATE, MOVE_COMPLETED and MOVE_STOPPED.
FORWARD_LIMIT = 0x00000001  # CW hardware limit switch
REVERSE_LIMIT = 0x00000002  # CCW hardware limit switch (the home switch of a linear stage)
MOVING_FORWARD = 0x00000010
MOVING_REVERSE = 0x00000020
JOGGING_FORWARD = 0x00000040
JOGGING_REVERSE = 0x00000080
HOMING = 0x00000200
HOMED = 0x00000400
SETTLED = 0x00002000
MOTION_ERROR = 0x00004000  # excessive position error: the servo could not follow
ENABLED = 0x80000000
MOVING = MOVING_FORWARD | MOVING_REVERSE | JOGGING_FORWARD | JOGGING_REVERSE


def apt_data_length(header: bytes) -> int:
    """How many data bytes follow an APT header; garbage that no APT frame starts with is refused."""
    _, p1, p2, dest, source = struct.unpack("<HBBBB", header)
    if (dest & 0x7F) not in ADDRESSES or source not in ADDRESSES:
        raise FramingError(f"not an APT header (addresses {dest:#04x} from {source:#04x}): {shown(header)}")
    if not dest & 0x80:
        return 0
    length = p1 | p2 << 8
    if length > MAX_DATA:
        raise FramingError(f"APT data block of {length} bytes (at most {MAX_DATA}): {shown(header)}")
    return length


APT_FRAMING = LengthInHeader(6, apt_data_length)


def encode(name: str, *values: Any, p1: int = 0, p2: int = 0, dest: int = CONTROLLER, source: int = HOST) -> bytes:
    """The frame of message `name`: header only with p1/p2, or header and data block of `values`."""
    message = TABLE[name]
    if message.data is None:
        return struct.pack("<HBBBB", message.id, p1, p2, dest, source)
    data = struct.pack(message.data, *values)
    return struct.pack("<HHBB", message.id, len(data), dest | 0x80, source) + data


@dataclass(frozen=True)
class Frame:
    """A decoded APT frame: the message, p1/p2 of a short one, the values of a long one."""

    message: Message
    dest: int
    source: int
    p1: int = 0
    p2: int = 0
    values: tuple = ()


def decode(frame: bytes) -> Frame:
    """The message in `frame`; `GarbledReply` for an unknown id or a data block of the wrong size."""
    number, p1, p2, dest, source = struct.unpack("<HBBBB", frame[:6])
    message = BY_ID.get(number)
    if message is None:
        raise GarbledReply(f"unknown APT message {number:#06x}: {shown(frame)}")
    if message.data is None:
        return Frame(message, dest, source, p1, p2)
    data = frame[6:]
    if not dest & 0x80 or len(data) != message.size:
        raise GarbledReply(f"{message.name} with {len(data)} data bytes, not {message.size}: {shown(frame)}")
    return Frame(message, dest & 0x7F, source, values=struct.unpack(message.data, data))


def message_id(frame: bytes) -> Hashable | None:
    """The message id of a whole frame."""
    return struct.unpack_from("<H", frame)[0] if len(frame) >= 6 else None
