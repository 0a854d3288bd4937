"""How a byte stream is cut into messages, shared by drivers (reading replies) and simulators
(reading requests): a framing looks at the bytes received so far and says where the first
complete frame ends, or that more bytes are needed.

    Lines(b"\\r\\n")                       text lines (Cryo-Con, ESP301, SCPI, Prologix)
    FixedLength(6)                        every frame the same size (Zaber binary)
    LengthInHeader(6, apt_data_length)    a header that says how long the rest is (Thorlabs APT)
    BlockLines(b"\n")                     text lines that may carry IEEE 488.2 binary blocks

Bytes that cannot be a frame raise `FramingError`, a `GarbledReply`: where the next frame starts
is unknown, so the line is dropped and reopened. Checksums belong to the protocol, not the
framing; `crc16_xmodem` is the one MeCom uses.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass

from .errors import GarbledReply, shown


class FramingError(GarbledReply):
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


@dataclass(frozen=True)
class BlockLines(Lines):
    """Text lines in which an IEEE 488.2 definite-length block (`#<n><length><bytes>`: n digits
    of length, then that many bytes of any value) may hold the terminator: a waveform, a memory
    dump. The line ends at the first terminator after the last block."""

    def split(self, buffer: bytes) -> tuple[bytes, bytes] | None:
        start = 0  # the terminator is looked for after the last whole block
        while True:
            end = buffer.find(self.terminator, start)
            mark = buffer.find(b"#", start, end if end >= 0 else len(buffer))
            if mark < 0:
                return self._cut(buffer, end)
            after = _block_end(buffer, mark)
            if after is None:  # the block's header has not all arrived
                return None
            if after == 0:  # a "#" that starts no block
                start = mark + 1
            elif len(buffer) < after:
                if after - mark > self.max_length:
                    raise FramingError(f"a block of {after - mark} bytes (at most {self.max_length})")
                return None
            else:
                start = after

    def payload(self, frame: bytes) -> bytes:
        """The line without its terminator, and without a CR before it unless a block ends there."""
        body = frame.removesuffix(self.terminator)
        return body[:-1] if body.endswith(b"\r") and _blocks_end(body) < len(body) else body

    def _cut(self, buffer: bytes, end: int) -> tuple[bytes, bytes] | None:
        if end < 0:
            if len(buffer) > self.max_length:
                raise FramingError(f"no line end in {len(buffer)} bytes: {shown(buffer)}")
            return None
        end += len(self.terminator)
        return buffer[:end], buffer[end:]


def _block_end(buffer: bytes, mark: int) -> int | None:
    """Where the block whose `#` is at `mark` ends; 0 when `#` starts no definite-length block;
    None when its header has not all arrived."""
    if len(buffer) < mark + 2:
        return None
    digits = buffer[mark + 1] - 0x30
    if not 1 <= digits <= 9:
        return 0
    length = buffer[mark + 2 : mark + 2 + digits]
    if len(length) < digits:
        return None
    if not length.isdigit():
        return 0
    return mark + 2 + digits + int(length)


def _blocks_end(line: bytes) -> int:
    """Where the last whole definite-length block in `line` ends (0: none)."""
    start = end = 0
    while (mark := line.find(b"#", start)) >= 0:
        after = _block_end(line, mark)
        if after and after <= len(line):
            start = end = after
        else:
            start = mark + 1
    return end


def definite_length_block(data: bytes) -> bytes:
    """`data` as an IEEE 488.2 definite-length block: `#`, the number of length digits, the
    length, the bytes (b"#15hello")."""
    length = str(len(data)).encode("ascii")
    if len(length) > 9:
        raise ValueError(f"a definite-length block holds at most 999999999 bytes, not {len(data)}")
    return b"#%d%s%s" % (len(length), length, data)


def block_data(payload: bytes) -> bytes:
    """The bytes of the definite-length block that `payload` begins with (after an optional
    header such as `DATA `); `FramingError` when there is none or it is cut short."""
    mark = payload.find(b"#")
    end = _block_end(payload, mark) if mark >= 0 else 0
    if not end:
        raise FramingError(f"no definite-length block in {shown(payload)}")
    if len(payload) < end:
        raise FramingError(f"a definite-length block cut short: {len(payload)} of {end} bytes")
    return payload[mark + 2 + payload[mark + 1] - 0x30 : end]


def crc16_xmodem(data: bytes) -> int:
    """CRC-16/XMODEM (polynomial 0x1021, initial 0), as MeCom frames carry it."""
    return binascii.crc_hqx(data, 0)
