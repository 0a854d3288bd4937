"""How a byte stream is cut into messages, shared by drivers (reading replies) and simulators
(reading requests): a framing looks at the bytes received so far and says where the first
complete frame ends, or that more bytes are needed.

    Lines(b"\\r\\n")                       text lines (Cryo-Con, ESP301, SCPI, Prologix)
    FixedLength(6)                        every frame the same size (Zaber binary)
    LengthInHeader(6, apt_data_length)    a header that says how long the rest is (Thorlabs APT)

Checksums belong to the protocol, not the framing; `crc16_xmodem` is the one MeCom uses.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass

from .errors import InstrumentError, shown


class FramingError(InstrumentError):
    """The bytes cannot be a frame of this protocol (a header no frame has, a line too long)."""


class Framing:
    """Where the first frame in `buffer` ends: `split` returns (frame, rest) or None for 'wait'."""

    def split(self, buffer: bytes) -> tuple[bytes, bytes] | None:
        raise NotImplementedError

    def payload(self, frame: bytes) -> bytes:
        """The frame without what only delimits it (a line's terminator)."""
        return frame


@dataclass(frozen=True)
class Lines(Framing):
    """Frames end with `terminator`; a line longer than `max_length` is garbage, not a reply."""

    terminator: bytes = b"\n"
    max_length: int = 65536

    def split(self, buffer: bytes) -> tuple[bytes, bytes] | None:
        end = buffer.find(self.terminator)
        if end < 0:
            if len(buffer) > self.max_length:
                raise FramingError(f"no line end in {len(buffer)} bytes: {shown(buffer)}")
            return None
        end += len(self.terminator)
        return buffer[:end], buffer[end:]

    def payload(self, frame: bytes) -> bytes:
        return frame.removesuffix(self.terminator).removesuffix(b"\r")


@dataclass(frozen=True)
class FixedLength(Framing):
    """Every frame is `length` bytes."""

    length: int

    def split(self, buffer: bytes) -> tuple[bytes, bytes] | None:
        if len(buffer) < self.length:
            return None
        return buffer[: self.length], buffer[self.length :]


@dataclass(frozen=True)
class LengthInHeader(Framing):
    """A fixed-size header, then as many bytes as `body_length(header)` says (it may raise
    `FramingError` for a header that no frame of the protocol has)."""

    header_length: int
    body_length: Callable[[bytes], int]

    def split(self, buffer: bytes) -> tuple[bytes, bytes] | None:
        if len(buffer) < self.header_length:
            return None
        end = self.header_length + self.body_length(buffer[: self.header_length])
        if len(buffer) < end:
            return None
        return buffer[:end], buffer[end:]


def crc16_xmodem(data: bytes) -> int:
    """CRC-16/XMODEM (polynomial 0x1021, initial 0), as MeCom frames carry it."""
    return binascii.crc_hqx(data, 0)
