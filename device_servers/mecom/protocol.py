"""The MeCom protocol of Meerstetter TEC controllers (TEC-1090 behind an LTR-1200): frames and tables.

Imported by the driver (driver.py) and the simulator (simulators/mecom.py); no I/O here.

    request       #<address 2 hex><sequence 4 hex><payload><CRC-16/XMODEM 4 hex>CR
    value reply   !<address><sequence><payload><CRC>CR
    acknowledge   !<address><sequence><the request's CRC>CR       (a set command taken)
    refusal       !<address><sequence>+<code 2 hex><CRC>CR         (ERRORS)

Payloads: `?VR<parameter 4 hex><instance 2 hex>` reads a parameter, `VS<parameter><instance><value
8 hex>` sets one (FLOAT32 or INT32, big-endian), `?IF` asks the identification, `RS` resets.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass

from ..core.framing import Lines, crc16_xmodem

#: The LTR-1200's MeCom server port.
TCP_PORT = 50000

#: Server error codes of the MeCom Protocol Specification (5117C): symbol, description.
ERRORS = {
    1: ("EER_CMD_NOT_AVAILABLE", "command not available"),
    2: ("EER_DEVICE_BUSY", "device is busy"),
    3: ("EER_GENERAL_COM", "general communication error (e.g. a frame with a wrong CRC)"),
    4: ("EER_FORMAT", "format error"),
    5: ("EER_PAR_NOT_AVAILABLE", "parameter is not available"),
    6: ("EER_PAR_NOT_WRITABLE", "parameter is read only"),
    7: ("EER_PAR_OUT_OF_RANGE", "value is out of range"),
    8: ("EER_PAR_INST_NOT_AVAILABLE", "instance is not available"),
    9: ("EER_PAR_GENERAL_FAILURE", "parameter general error, device internal failure"),
}
CMD_NOT_AVAILABLE, GENERAL_COM, FORMAT, PAR_NOT_AVAILABLE = 1, 3, 4, 5
PAR_READ_ONLY, PAR_OUT_OF_RANGE, INSTANCE_NOT_AVAILABLE = 6, 7, 8

#: What each frame is, by the start of its payload (requests) or its form (replies).
MESSAGES = {
    "READ_PARAMETER": "?VR",
    "SET_PARAMETER": "VS",
    "IDENTIFY": "?IF",
    "RESET": "RS",
    "VALUE": "!value",
    "ACKNOWLEDGE": "!acknowledge",
    "REFUSAL": "!refusal",
}
REQUESTS = ("?VR", "VS", "?IF", "RS")


class DeviceStatus(enum.IntEnum):
    """Parameter 104."""

    INIT = 0
    READY = 1
    RUN = 2
    ERROR = 3
    BOOTLOADER = 4
    RESETTING = 5  # "device will reset within the next 200 ms"


class OutputStage(enum.IntEnum):
    """Parameter 2010, the output stage enable: static off, static on, live (parameter 50000),
    or by the hardware enable input (wired to the coolant flow switch in the lab)."""

    OFF = 0
    ON = 1
    LIVE = 2
    HW_ENABLE = 3


@dataclass(frozen=True)
class Parameter:
    """One entry of the TEC-Family parameter table."""

    id: int
    type: str  # "FLOAT32" or "INT32"
    unit: str = ""
    writable: bool = False
    what: str = ""

    @property
    def format(self) -> str:
        return ">f" if self.type == "FLOAT32" else ">i"


#: The parameters the driver uses (TEC-Family Communication Protocol 5136); instance = channel,
#: except the device-wide ones (instance 1).
PARAMETERS = {
    "device_type": Parameter(100, "INT32", what="device type (1090)"),
    "device_status": Parameter(104, "INT32", what="device status"),
    "error_number": Parameter(105, "INT32", what="error number"),
    "object_temperature": Parameter(1000, "FLOAT32", "degC", what="object temperature"),
    "sink_temperature": Parameter(1001, "FLOAT32", "degC", what="sink temperature"),
    "ramp_target": Parameter(1010, "FLOAT32", "degC", what="target object temperature in use"),
    "output_current": Parameter(1020, "FLOAT32", "A", what="actual output current"),
    "output_voltage": Parameter(1021, "FLOAT32", "V", what="actual output voltage"),
    "output_stage": Parameter(2010, "INT32", writable=True, what="output stage enable"),
    "target_temperature": Parameter(3000, "FLOAT32", "degC", writable=True, what="target object temperature"),
}
DEVICE_WIDE = ("device_type", "device_status", "error_number")


@dataclass(frozen=True)
class MeComFrames(Lines):
    """Frames end with CR. The LTR-1200's greeting ends with CR LF: a line feed where a frame
    would start is an empty frame of its own, so it never waits for a frame to complete."""

    terminator: bytes = b"\r"

    def split(self, buffer: bytes) -> tuple[bytes, bytes] | None:
        feeds = len(buffer) - len(buffer.lstrip(b"\n"))
        if feeds:
            return buffer[:feeds], buffer[feeds:]
        return super().split(buffer)

    def payload(self, frame: bytes) -> bytes:
        return frame.removesuffix(b"\r").strip(b"\n")


FRAMING = MeComFrames()


def crc(text: str) -> str:
    """The CRC-16/XMODEM of `text`, as 4 upper-case hex digits."""
    return f"{crc16_xmodem(text.encode('ascii')):04X}"


def request(address: int, sequence: int, payload: str) -> bytes:
    """The request frame of `payload`, as sent."""
    body = f"#{address:02X}{sequence:04X}{payload}"
    return f"{body}{crc(body)}\r".encode("ascii")


def reply(head: str, answer: str) -> bytes:
    """A reply frame: `head` is `!`, address and sequence as the request had them."""
    body = head + answer
    return f"{body}{crc(body)}\r".encode("ascii")


def acknowledge(head: str, request_crc: str) -> bytes:
    """The acknowledge of a set command: it carries the request's CRC instead of its own."""
    return f"{head}{request_crc}\r".encode("ascii")


def refusal(head: str, code: int) -> bytes:
    return reply(head, f"+{code:02X}")


def refusal_code(answer: str) -> int | None:
    """The server error code of a reply's payload (`+05`), or None when it is no refusal."""
    if len(answer) == 3 and answer.startswith("+") and is_hex(answer[1:]):
        return int(answer[1:], 16)
    return None


def is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789ABCDEFabcdef" for c in text)


def is_greeting(payload: bytes) -> bool:
    """The LTR-1200's line of text to a new client ("Welcome ..."), which is no frame."""
    return not payload.startswith((b"!", b"#")) and b"Welcome" in payload


def message_id(frame: bytes) -> Hashable | None:
    """What a whole frame is (an id of MESSAGES), or None."""
    text = FRAMING.payload(frame).decode("ascii", errors="replace")
    if len(text) < 11 or text[0] not in "#!" or not is_hex(text[1:7]):
        return None
    payload = text[7:-4]
    if text[0] == "#":
        return next((kind for kind in REQUESTS if payload.startswith(kind)), None)
    if not payload:
        return "!acknowledge"
    return "!refusal" if refusal_code(payload) is not None else "!value"
