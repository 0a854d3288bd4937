"""Driver of a Meerstetter TEC controller (TEC-1090) in the MeCom protocol, per channel.

Pure Python over a `Link` (framing `FRAMING`: frames end with CR):

    link = SerialLink("socket://ltr1200:50000", framing=FRAMING, write_terminator=b"\\r")
    tec = MeCom.on(link, address=1)
    link.open()
    ccd = tec.channel(1)
    ccd.read_status()                     # ChannelStatus(object_temperature=-89.98, ...)
    ccd.set_target_temperature(-90.0)     # #0115A1VS0BB801C2B40000D745
    ccd.set_output_stage("HW_ENABLE")

A frame is `#`, address (2 hex), sequence number (4 hex), payload, CRC-16/XMODEM (4 hex) and
CR; the reply echoes the address and the sequence number after `!`. Parameters are read with
`?VR<id><instance>` and written with `VS<id><instance><value>` (FLOAT32 or INT32 as 8 hex
digits, big-endian); the instance is the channel. The device's refusals (`+05` parameter not
available, `+06` read only, `+07` out of range, ...) raise `MeComError` in the device's words;
a reply with a wrong CRC, from another address or with another sequence number raises
`InstrumentError`: it cannot be the answer to this request. The LTR-1200 greets a new client
with a line of text ("Welcome ..."); it is kept in `greeting`, not taken for a reply.
"""

from __future__ import annotations

import enum
import random
import struct
import weakref
from dataclasses import dataclass
from typing import ClassVar

from ..core.errors import InstrumentError, RejectedValue, shown
from ..core.framing import Lines, crc16_xmodem
from ..core.limits import Limits
from ..core.link import Link

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


#: The parameters this driver uses (TEC-Family Communication Protocol 5136); instance = channel,
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

#: Target object temperatures the lab allows on a CCD head's Peltier. The TEC-1090 itself
#: accepts −273 to 1000 °C (RNG_TEMP) and answers +07 beyond that.
TARGET_LIMITS = Limits(-100.0, 50.0, "degC")


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


class MeComError(InstrumentError):
    """The device refused a request with one of its server error codes."""

    def __init__(self, code: int, request: str) -> None:
        self.code = code
        symbol, description = ERRORS.get(code, (f"error {code:02X}", "unknown server error code"))
        self.symbol = symbol
        super().__init__(f"the TEC controller refused {shown(request)}: +{code:02X} {symbol}, {description}")


@dataclass(frozen=True)
class ChannelStatus:
    object_temperature: float  # °C
    sink_temperature: float  # °C
    target_temperature: float  # °C, as set (parameter 3000)
    output_current: float  # A
    output_voltage: float  # V
    output_stage: OutputStage
    device_status: DeviceStatus

    @property
    def regulating(self) -> bool:
        return self.device_status == DeviceStatus.RUN and self.output_stage != OutputStage.OFF


class MeCom:
    """One MeCom device (by address) on a link: frames, sequence numbers, CRCs, refusals."""

    _on_link: ClassVar[weakref.WeakKeyDictionary[Link, dict[int, MeCom]]] = weakref.WeakKeyDictionary()

    def __init__(self, link: Link, address: int = 1) -> None:
        if not 0 <= address <= 255:
            raise RejectedValue(f"MeCom address {address!r} is not 0 to 255 (0 reaches any device)")
        self.link = link
        self.address = address
        #: The specification recommends a random start, one more for every new request.
        self.sequence = random.randrange(0x10000)
        #: The text the LTR-1200 greeted the last connection with.
        self.greeting: str | None = None
        link.unsolicited = self._unasked

    @classmethod
    def on(cls, link: Link, address: int = 1) -> MeCom:
        """The one MeCom object of `address` on `link`, shared by the channels of that device."""
        with link.lock:
            devices = cls._on_link.setdefault(link, {})
            if address not in devices:
                devices[address] = cls(link, address)
            return devices[address]

    def channel(self, number: int) -> TecChannel:
        return TecChannel(self, number)

    # -- operations -----------------------------------------------------------------------------

    def identify(self) -> str:
        """The firmware identification string (20 characters, e.g. '1090-TEC SW v5.10')."""
        return self.query("?IF").rstrip()

    def reset(self) -> None:
        """Restart the device (it answers again after about 200 ms)."""
        self.set("RS")

    def read(self, parameter: Parameter, instance: int) -> float | int:
        """The value of one parameter instance, in its declared type."""
        request = f"?VR{parameter.id:04X}{instance:02X}"
        value = self.query(request)
        try:
            return struct.unpack(parameter.format, bytes.fromhex(value))[0]
        except ValueError:
            raise InstrumentError(f"the reply to {shown(request)} is not a {parameter.type}: {shown(value)}") from None

    def write(self, parameter: Parameter, instance: int, value: float) -> None:
        """Set one parameter instance (no check here: the device's own refusal raises)."""
        data = struct.pack(parameter.format, value).hex().upper()
        self.set(f"VS{parameter.id:04X}{instance:02X}{data}")

    # -- frames ---------------------------------------------------------------------------------

    def query(self, payload: str) -> str:
        """Send a query; the reply's payload."""
        return self._exchange(payload, acknowledge=False)

    def set(self, payload: str) -> None:
        """Send a set command; returns once the device acknowledged it."""
        self._exchange(payload, acknowledge=True)

    def frame(self, payload: str, sequence: int) -> bytes:
        """The request frame of `payload`, as sent."""
        body = f"#{self.address:02X}{sequence:04X}{payload}"
        return f"{body}{crc16_xmodem(body.encode('ascii')):04X}\r".encode("ascii")

    def _exchange(self, payload: str, acknowledge: bool) -> str:
        with self.link.lock:
            self.sequence = (self.sequence + 1) % 0x10000
            request = self.frame(payload, self.sequence)
            reply = self.link.transaction(request, accept=self._is_frame)
        return self._check(request, reply.decode("ascii", errors="replace"), acknowledge)

    def _check(self, request: bytes, reply: str, acknowledge: bool) -> str:
        sent = request.decode("ascii").rstrip("\r")
        what = f"reply {shown(reply)} to {shown(sent)}"
        if not reply.startswith("!") or len(reply) < 11 or not _is_hex(reply[1:7]) or not _is_hex(reply[-4:]):
            raise InstrumentError(f"{what} is not a MeCom frame")
        body, crc = reply[:-4], int(reply[-4:], 16)
        if len(body) == 7:  # an acknowledge: it carries the CRC of the set command
            expected, of = int(sent[-4:], 16), "the request's"
        else:
            expected, of = crc16_xmodem(body.encode("ascii")), "computed"
        if crc != expected:
            raise InstrumentError(f"{what} has CRC {crc:04X}, {of} is {expected:04X}")
        if body[1:3] != sent[1:3]:
            raise InstrumentError(f"{what} comes from address {body[1:3]}, not {sent[1:3]}")
        if body[3:7] != sent[3:7]:
            raise InstrumentError(f"{what} has sequence number {body[3:7]}, not {sent[3:7]}: not its answer")
        answer = body[7:]
        if answer.startswith("+") and _is_hex(answer[1:]) and len(answer) == 3:
            raise MeComError(int(answer[1:], 16), sent[7:-4])
        if acknowledge and answer:
            raise InstrumentError(f"{what}: expected an acknowledge")
        if not acknowledge and not answer:
            raise InstrumentError(f"{what}: an acknowledge where a value was asked for")
        return answer

    def _is_frame(self, payload: bytes) -> bool:
        """Every frame is a reply but the LTR-1200's greeting (and the line feed after it)."""
        return bool(payload) and not _is_greeting(payload)

    def _unasked(self, payload: bytes) -> None:
        if not payload:
            return
        if _is_greeting(payload):
            self.greeting = payload.strip().decode("ascii", errors="replace")
        else:
            raise InstrumentError(f"a frame nobody asked for: {shown(payload)}")


class TecChannel:
    """One channel of a TEC controller; one method per operation, values in °C, A and V."""

    def __init__(self, mecom: MeCom, number: int) -> None:
        if not 1 <= number <= 255:
            raise RejectedValue(f"channel {number!r} is not 1 to 255")
        self.mecom = mecom
        self.number = number

    def read(self, name: str) -> float | int:
        """A parameter of this channel (or of the device) by its name in PARAMETERS."""
        return self.mecom.read(PARAMETERS[name], 1 if name in DEVICE_WIDE else self.number)

    def read_object_temperature(self) -> float:
        return self.read("object_temperature")

    def read_sink_temperature(self) -> float:
        return self.read("sink_temperature")

    def read_target_temperature(self) -> float:
        return self.read("target_temperature")

    def read_output_current(self) -> float:
        return self.read("output_current")

    def read_output_voltage(self) -> float:
        return self.read("output_voltage")

    def read_output_stage(self) -> OutputStage:
        return _member(OutputStage, self.read("output_stage"), "output stage")

    def read_device_status(self) -> DeviceStatus:
        return _member(DeviceStatus, self.read("device_status"), "device status")

    def read_status(self) -> ChannelStatus:
        """Everything the Tango device shows, in one locked series of round trips."""
        with self.mecom.link.lock:
            return ChannelStatus(
                object_temperature=self.read_object_temperature(),
                sink_temperature=self.read_sink_temperature(),
                target_temperature=self.read_target_temperature(),
                output_current=self.read_output_current(),
                output_voltage=self.read_output_voltage(),
                output_stage=self.read_output_stage(),
                device_status=self.read_device_status(),
            )

    def set_target_temperature(self, celsius: float) -> float:
        """The target object temperature (parameter 3000); returns what the device holds."""
        value = TARGET_LIMITS.check("target temperature", celsius)
        with self.mecom.link.lock:
            self.mecom.write(PARAMETERS["target_temperature"], self.number, value)
            return self.read_target_temperature()

    def set_output_stage(self, mode: str | int) -> str:
        """Output stage enable (parameter 2010) by name (OFF, ON, LIVE, HW_ENABLE) or number."""
        try:
            stage = OutputStage[mode] if isinstance(mode, str) else OutputStage(mode)
        except (KeyError, ValueError):
            allowed = ", ".join(f"{m.name} ({m.value})" for m in OutputStage)
            raise RejectedValue(f"output stage {mode!r} is not one of {allowed}") from None
        with self.mecom.link.lock:
            self.mecom.write(PARAMETERS["output_stage"], self.number, int(stage))
            return self.read_output_stage().name

    def reset(self) -> None:
        """Restart the whole controller (every channel)."""
        self.mecom.reset()


def _member(kind: type[enum.IntEnum], value: float, what: str) -> enum.IntEnum:
    try:
        return kind(value)
    except ValueError:
        raise InstrumentError(f"the device reports {what} {value}, which the protocol does not define") from None


def _is_greeting(payload: bytes) -> bool:
    return not payload.startswith(b"!") and b"Welcome" in payload


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789ABCDEFabcdef" for c in text)
