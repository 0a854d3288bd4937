"""Huber's LAI protocol (the data communication chapter of the Unichiller manual), shared by the
driver and the simulator.

    [ M 0 1 G 0 D s a t t t t p p CR
    start, sender (M master, S slave), slave address 01, command (V, L or G), data length in hex
    (the bytes before the checksum), data, checksum = the low byte of the sum of every byte
    before it, in two hex digits, then CR. The unit answers `[S01` with the same command.

`G` sets and reads in one exchange, `*` leaving a field as it is; its reply holds the mode (C
circulation = pump, I internal control = pump and cooling, O off), the alarm flag, the set-point
and the internal and external temperatures in hundredths of a degree, as 16-bit two's
complement hex (C504 = -151.00 °C: no external sensor). The unit answers only frames it
received correctly.
"""

from __future__ import annotations

from ..core.errors import RejectedValue
from ..core.framing import Lines

FRAMING = Lines(b"\r")
SLAVE = "01"
#: Modes as the device names them, and the LAI character of each.
MODES = {"OFF": "O", "PUMP": "C", "COOL": "I"}
#: What the unit reports as a temperature when no sensor is there (-151.00 °C).
NO_SENSOR = -151.0
#: The commands: the unit's name, its limits, and the general set-and-read.
MESSAGES = {"name": "V", "limits": "L", "general": "G"}


def checksum(data: bytes) -> bytes:
    """The LAI checksum: the low byte of the sum of the bytes, as two upper-case hex digits."""
    return b"%02X" % (sum(data) & 0xFF)


def frame(command: str, data: str = "", sender: str = "M") -> bytes:
    """A whole LAI frame: `[`, sender (M master, S slave), address 01, command, length, data,
    checksum, CR."""
    body = f"[{sender}{SLAVE}{command}{7 + len(data):02X}{data}".encode("ascii")
    return body + checksum(body) + b"\r"


def hundredths(celsius: float) -> str:
    """°C as the four hex digits of a 16-bit two's complement count of 0.01 °C (-4 → FE70)."""
    count = round(celsius * 100)
    if not -0x8000 <= count <= 0x7FFF:
        raise RejectedValue(f"{celsius!r} degC does not fit the protocol's -327.68 to 327.67 degC")
    return f"{count & 0xFFFF:04X}"


def celsius(text: str) -> float:
    """Four hex digits of hundredths of a degree, signed (FE70 → -4.0)."""
    if len(text) != 4:
        raise ValueError(f"{text!r} is not four hex digits")
    count = int(text, 16)
    return (count - 0x10000 if count & 0x8000 else count) / 100


def message_id(frame: bytes) -> str | None:
    """The command of one frame, master's or slave's (`b"[M01V07C6\r"` -> 'V')."""
    if len(frame) < 9 or frame[:1] != b"[" or frame[2:4] != SLAVE.encode():
        return None
    command = chr(frame[4])
    return command if command in MESSAGES.values() else None
