"""The Prologix GPIB-ETHERNET controller's `++` command language: tables and encoding.

Imported by the driver (driver.py) and the simulator (simulators/prologix.py); no I/O here.

The host sends lines. A line starting with `++` is a command for the controller (`++addr 14`,
`++read eoi`, `++ver`); any other line is data for the instrument at the current address, in
which CR, LF, ESC and `+` are escaped by an ESC so that any byte, those too, reaches the
instrument (`escape`). The controller's own replies end in CR LF; the instrument's bytes reach
the host as the instrument sent them (a binary block as well as a text line).
"""

from __future__ import annotations

from collections.abc import Hashable

from ..core.framing import Framing, Lines

#: The controller's TCP port.
TCP_PORT = 1234
ADDRESSES = range(31)
#: `++read_tmo_ms` accepts 1 to 3000 ms: the longest an instrument may take to start its reply.
READ_TIMEOUT_MS = (1, 3000)
#: What the controller's own replies begin with (`++ver`).
VERSION_PREFIX = b"Prologix"
ESC, CR, LF, PLUS = 0x1B, 0x0D, 0x0A, 0x2B
ESCAPED = bytes((ESC, CR, LF, PLUS))
#: What `++eos` appends to the data sent to an instrument (0 CR LF, 1 CR, 2 LF, 3 nothing).
EOS_TERMINATORS = {0: b"\r\n", 1: b"\r", 2: b"\n", 3: b""}

#: The controller's commands (manual v1.6.6.0), by name: a host line starting with one of these.
COMMANDS = (
    "addr", "auto", "clr", "eoi", "eos", "eot_enable", "eot_char", "help", "ifc", "llo", "loc", "lon",
    "mode", "read", "read_tmo_ms", "rst", "savecfg", "spoll", "srq", "status", "trg", "ver",
)
#: Every host message: a `++` command by its name, or data for the instrument.
MESSAGES = {**{command.upper(): f"++{command}" for command in COMMANDS}, "DATA": "data"}


class RawLines(Lines):
    """Lines kept whole, terminator included: the bytes of a reply go on unchanged."""

    def payload(self, frame: bytes) -> bytes:
        return frame


#: The controller's replies to the host, cut at LF and passed on whole.
LINES = RawLines(b"\n")


class HostMessages(Framing):
    """Host messages: they end at a CR or LF that no ESC escapes; the payload is unescaped."""

    def split(self, buffer: bytes) -> tuple[bytes, bytes] | None:
        escaped = False
        for index, byte in enumerate(buffer):
            if escaped:
                escaped = False
            elif byte == ESC:
                escaped = True
            elif byte in (CR, LF):
                return buffer[: index + 1], buffer[index + 1 :]
        return None

    def payload(self, frame: bytes) -> bytes:
        data, escaped = bytearray(), False
        for byte in frame[:-1]:
            if not escaped and byte == ESC:
                escaped = True
                continue
            escaped = False
            data.append(byte)
        return bytes(data)


HOST_MESSAGES = HostMessages()


def escape(data: bytes) -> bytes:
    """Instrument data as the controller must receive it: CR, LF, ESC and + each after an ESC."""
    out = bytearray()
    for byte in data:
        if byte in ESCAPED:
            out.append(ESC)
        out.append(byte)
    return bytes(out)


def message_id(frame: bytes) -> Hashable | None:
    """What one whole host message is: `++<command>` or "data" (ids of MESSAGES)."""
    payload = HOST_MESSAGES.payload(frame) if frame[-1:] in (b"\r", b"\n") else frame
    if not payload.startswith(b"++"):
        return "data" if payload else None
    verb = payload[2:].split(b" ", 1)[0].decode("ascii", errors="replace").lower()
    return f"++{verb}" if verb in COMMANDS else None
