"""The Arduino environment box's messages: the MIN protocol (github.com/min-protocol/min) framing
and transport, and the box's application commands as the original lab's firmware spoke them
(ccdlab's Arduino_A sketch), shared by the driver and the simulator.

A MIN frame on the wire: the header `AA AA AA`, the ID/control byte, for a transport frame
(bit 7 set) its sequence number, the payload length, the payload, a CRC-32 (zlib's) of all of
those, most significant byte first, and the end byte `55`. Inside the frame, after any two
`AA` bytes the sender stuffs a `55` that the receiver drops, so a header never appears inside.
Transport frames are acknowledged: an ACK (ID/control `FF`) carries as sequence and payload the
next sequence number its sender expects; a RESET (`FE`) starts both sides again at 0.

The box's commands are ten ASCII characters on MIN ID 1, sent as transport frames:
`get_ardsta` (everything), `get_temp01`, `get_humd01` (a sensor), `set_sw03on`, `set_sw03of`,
`get_sw03st` (a switch). Its replies are transport frames on ID 1 whose text starts with the
sequence number of the request they answer: `7:status=21.50;21.25;45.20;44.80;1;0;0;0` (two
temperatures in °C, two humidities in %, four switches), `7:temp01=21.50`, `7:sw03=1`. A switch
setting gets no reply but the ACK. The original firmware had two switches; the box here has
four, numbered and spelled the same way.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Hashable
from dataclasses import dataclass

from ..core.errors import GarbledReply, shown
from ..core.framing import Framing, FramingError

HEADER = b"\xaa\xaa\xaa"
HEADER_BYTE, STUFF_BYTE, EOF_BYTE = 0xAA, 0x55, 0x55
TRANSPORT = 0x80
ACK, RESET = 0xFF, 0xFE
#: The MIN ID of the box's commands and replies.
APPLICATION_ID = 1
SWITCHES = (1, 2, 3, 4)
SENSORS = (1, 2)

#: The box's messages by name (NN: a sensor or switch number) and the MIN transport's own.
MESSAGES: dict[str, Hashable] = {
    "get_ardsta": "get_ardsta", "get_tempNN": "get_tempNN", "get_humdNN": "get_humdNN",
    "set_swNNon": "set_swNNon", "set_swNNof": "set_swNNof", "get_swNNst": "get_swNNst",
    "status reply": "status", "temperature reply": "tempNN", "humidity reply": "humdNN", "switch reply": "swNN",
    "ACK": ACK, "RESET": RESET,
}


@dataclass(frozen=True)
class Frame:
    """One MIN frame: its ID/control byte, its sequence number (transport frames), its payload."""

    id_control: int
    payload: bytes = b""
    seq: int = 0

    @property
    def is_transport(self) -> bool:
        return bool(self.id_control & TRANSPORT)

    @property
    def min_id(self) -> int:
        return self.id_control if self.id_control in (ACK, RESET) else self.id_control & 0x3F


def encode(frame: Frame) -> bytes:
    """A frame as sent on the wire: header, stuffed body and CRC, end byte."""
    body = bytes([frame.id_control]) + (bytes([frame.seq]) if frame.is_transport else b"")
    body += bytes([len(frame.payload)]) + frame.payload
    body += binascii.crc32(body).to_bytes(4, "big")
    stuffed, run = bytearray(), 0
    for byte in body:
        stuffed.append(byte)
        run = run + 1 if byte == HEADER_BYTE else 0
        if run == 2:
            stuffed.append(STUFF_BYTE)
            run = 0
    return HEADER + bytes(stuffed) + bytes([EOF_BYTE])


def command(seq: int, text: str) -> Frame:
    """One of the box's commands as a transport frame on its ID."""
    return Frame(TRANSPORT | APPLICATION_ID, text.encode("ascii"), seq)


def ack(next_expected: int) -> Frame:
    return Frame(ACK, bytes([next_expected]), next_expected)


def decode(raw: bytes) -> Frame:
    """The frame of one whole wire frame (as `MinFraming` cuts it); GarbledReply when its CRC disagrees."""
    body = _unstuffed(raw)
    data, crc = body[:-4], body[-4:]
    if binascii.crc32(data).to_bytes(4, "big") != crc:
        raise GarbledReply(f"bad CRC-32 in the MIN frame {shown(raw)}")
    id_control = data[0]
    seq, rest = (data[1], data[2:]) if id_control & TRANSPORT else (0, data[1:])
    return Frame(id_control, rest[1:], seq)


def _unstuffed(raw: bytes) -> bytes:
    body, run, skip = bytearray(), 0, False
    for byte in raw[len(HEADER):-1]:
        if skip:
            skip = False
            continue
        body.append(byte)
        run = run + 1 if byte == HEADER_BYTE else 0
        if run == 2:
            skip, run = True, 0
    return bytes(body)


@dataclass(frozen=True)
class MinFraming(Framing):
    """MIN frames, header to end byte, stuffing undone only to find the length. Bytes that are
    not a header where a frame must start are garbage for the host (a failed line); `searching`
    (a MIN receiver searching for the start of a frame, as the board does) hands them on as a
    piece of their own, which is no frame, to be ignored."""

    searching: bool = False

    def split(self, buffer: bytes) -> tuple[bytes, bytes] | None:
        if not buffer:
            return None
        if not buffer.startswith(HEADER[: len(buffer)]):
            if self.searching:
                start = buffer.find(HEADER)
                if start < 0:  # keep what may be the beginning of a header
                    start = next(i for i in range(len(buffer) - 2, len(buffer) + 1)
                                 if HEADER.startswith(buffer[i:]))
                return (buffer[:start], buffer[start:]) if start else None
            raise FramingError(f"{shown(buffer)} begins no MIN frame (header AA AA AA)")
        if len(buffer) < len(HEADER):
            return None
        body, run, at, need = bytearray(), 0, len(HEADER), None
        while at < len(buffer):
            byte = buffer[at]
            at += 1
            if run == 2:
                run = 0
                if byte != STUFF_BYTE:
                    raise FramingError(f"a header inside a MIN frame: {shown(buffer[:at])}")
                continue
            if need is not None and len(body) == need:  # the end byte, not stuffed
                if byte != EOF_BYTE:
                    raise FramingError(f"a MIN frame without its end byte 55: {shown(buffer[:at])}")
                return buffer[:at], buffer[at:]
            body.append(byte)
            run = run + 1 if byte == HEADER_BYTE else 0
            length_at = 2 if body[0] & TRANSPORT else 1
            if need is None and len(body) > length_at:
                need = length_at + 1 + body[length_at] + 4
        return None


FRAMING = MinFraming()
#: How the board cuts what it receives: it searches for the next header past anything else.
SEARCHING = MinFraming(searching=True)

_NUMBERED = re.compile(r"(get_temp|get_humd|set_sw|get_sw|temp|humd|sw)0?(\d)(on|of|st)?")


def message_id(frame: bytes) -> Hashable | None:
    """The message a whole wire frame carries: ACK, RESET, a command or a reply by name."""
    found = decode(frame)
    if found.id_control in (ACK, RESET):
        return found.id_control
    text = found.payload.decode("ascii")
    text = text.split(":", 1)[1].split("=", 1)[0] if ":" in text else text
    return _NUMBERED.sub(lambda m: f"{m[1]}NN{m[3] or ''}", text)


@dataclass(frozen=True)
class BoxStatus:
    temperatures: tuple[float, ...]  # °C, per sensor
    humidities: tuple[float, ...]  # %, per sensor
    switches: tuple[bool, ...]


def parse_status(values: str) -> BoxStatus:
    """`21.50;21.25;45.20;44.80;1;0;0;0` -> BoxStatus."""
    fields = values.split(";")
    n = len(SENSORS)
    if len(fields) != 2 * n + len(SWITCHES):
        raise ValueError(f"expected {2 * n + len(SWITCHES)} fields")
    numbers = [float(field) for field in fields[: 2 * n]]
    return BoxStatus(tuple(numbers[:n]), tuple(numbers[n:]), tuple(field.strip() == "1" for field in fields[2 * n:]))
