"""The STA Archon CCD controller's protocol, shared by the driver and the simulator.

    >01STATUS\\n                    a request: `>`, a message reference (two hex digits), a command
    <01VALID=1 COUNT=7 ...\\n       its reply: `<`, the same reference, the answer
    ?01\\n                          the controller refused the request (the reason is in its log)

Status-like answers are `KEY=VALUE` pairs separated by spaces (SYSTEM, STATUS, FRAME).
`FETCH` + address + block count (eight hex digits each) is answered in binary: per 1024-byte
block, `<` + reference + `:` then the block's bytes, no line end. A frame buffer `n` starts at
`BUFFER_BASE[n]`; its pixels are little-endian unsigned 16-bit integers, line after line.

The configuration is numbered lines `KEY=VALUE` (`RCONFIG0004` reads line 4,
`WCONFIG0004LINECOUNT=512` writes it); `APPLYALL` applies it, `LOADPARAMS` loads its
parameters (`PARAMETERn=Name=value`) into the timing core, `FASTLOADPARAM Name value` sets one
there at once. This controller's timing script exposes for `IntMS` milliseconds, then reads
`LINECOUNT` lines of `PIXELCOUNT` pixels at `PixelNS` nanoseconds a pixel, for each count of
`Exposures`; `Abort` 1 ends an exposure or a readout at once, leaving the buffer incomplete.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..core.framing import FixedLength, Framing, Lines

LINES = Lines(b"\n")
BLOCK_BYTES = 1024
#: A FETCH reply block: `<`, reference, `:`, then 1024 bytes.
BLOCK_FRAME_BYTES = 4 + BLOCK_BYTES
#: Where frame buffers 1-3 start in the controller's memory.
BUFFER_BASE = {1: 0xA0000000, 2: 0xB0000000, 3: 0xC0000000}
#: STATUS POWER values.
POWER_STATES = {0: "UNKNOWN", 1: "NOT_CONFIGURED", 2: "OFF", 3: "INTERMEDIATE", 4: "ON", 5: "STANDBY"}
#: SYSTEM MODn_TYPE values.
MODULE_TYPES = {
    0: "None", 1: "Driver", 2: "AD", 3: "LVBias", 4: "HVBias", 5: "Heater", 6: "Atlas", 7: "HS",
    8: "HVXBias", 9: "LVXBias", 10: "LVDS", 11: "HeaterX", 12: "XVBias", 13: "ADF",
}
#: The backplane's supply rails as STATUS names them (`<rail>_V`, `<rail>_I`), nominal volts.
RAILS = {"P2V5": 2.5, "P5V": 5.0, "P6V": 6.0, "N6V": -6.0, "P17V": 17.0, "N17V": -17.0,
         "P35V": 35.0, "N35V": -35.0, "P100V": 100.0, "N100V": -100.0}
#: The timing script's parameters and what they are.
PARAMETERS = {
    "IntMS": "exposure (integration) time, ms",
    "PixelNS": "readout time of one pixel, ns",
    "Exposures": "exposures still to take: writing 1 starts one",
    "Abort": "1 ends the exposure or readout at once",
}

#: Every command driver or simulator uses: name -> the command word that starts it.
MESSAGES: Mapping[str, str] = {name: name for name in (
    "SYSTEM", "STATUS", "FRAME", "FETCHLOG", "FETCH", "POWERON", "POWEROFF", "APPLYALL",
    "CLEARCONFIG", "RCONFIG", "WCONFIG", "LOADPARAMS", "FASTLOADPARAM",
)}
_LONGEST_FIRST = sorted(MESSAGES.values(), key=len, reverse=True)
_REQUEST = re.compile(rb">([0-9A-F]{2})(.*?)\r?\n?", re.DOTALL)


class FetchReplies(Framing):
    """What follows a FETCH: `blocks` 1028-byte blocks taken as one frame, or a refusal line `?xx\\n`."""

    def __init__(self, blocks: int = 1) -> None:
        self._blocks = FixedLength(blocks * BLOCK_FRAME_BYTES)

    def split(self, buffer: bytes) -> tuple[bytes, bytes] | None:
        return LINES.split(buffer) if buffer[:1] == b"?" else self._blocks.split(buffer)


FETCH_REPLIES = FetchReplies()


def request(reference: int, command: str) -> bytes:
    """`>` + two-hex reference + command + line end (`request(1, "STATUS")` -> b">01STATUS\\n")."""
    return b">%02X%s\n" % (reference & 0xFF, command.encode("ascii"))


def reply(reference: int, text: str = "") -> bytes:
    return b"<%02X%s\n" % (reference & 0xFF, text.encode("ascii"))


def refusal(reference: int) -> bytes:
    return b"?%02X\n" % (reference & 0xFF)


def block(reference: int, data: bytes) -> bytes:
    """One 1024-byte block of a FETCH reply (shorter data is padded with zeros)."""
    return b"<%02X:" % (reference & 0xFF) + data.ljust(BLOCK_BYTES, b"\0")


def parse_request(frame: bytes) -> tuple[int, str] | None:
    """(reference, command text) of a request line, or None for what is no request."""
    match = _REQUEST.fullmatch(frame)
    if match is None:
        return None
    return int(match[1], 16), match[2].decode("ascii", errors="replace")


def message_id(frame: bytes) -> str | None:
    """The command word of a request (`b">0AFETCHA000000000000220\\n"` -> 'FETCH')."""
    parsed = parse_request(frame)
    if parsed is None:
        return None
    return next((word for word in _LONGEST_FIRST if parsed[1].startswith(word)), None)


def keys(text: str) -> dict[str, str]:
    """`KEY=VALUE KEY=VALUE` (a SYSTEM, STATUS or FRAME answer) as a dict."""
    return dict(pair.split("=", 1) for pair in text.split() if "=" in pair)


def key_text(values: Mapping[str, object]) -> str:
    return " ".join(f"{key}={value}" for key, value in values.items())


def fetch(address: int, blocks: int) -> str:
    return f"FETCH{address:08X}{blocks:08X}"


def rconfig(line: int) -> str:
    return f"RCONFIG{line:04X}"


def wconfig(line: int, key: str, value: object) -> str:
    return f"WCONFIG{line:04X}{key}={value}"


def fastloadparam(name: str, value: int) -> str:
    return f"FASTLOADPARAM {name} {value}"


def blocks_for(width: int, height: int, bytes_per_pixel: int = 2) -> int:
    """1024-byte blocks that hold a frame (the last one padded)."""
    return -(-width * height * bytes_per_pixel // BLOCK_BYTES)
