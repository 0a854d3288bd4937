"""Driver of a Meerstetter TEC controller (TEC-1090) in the MeCom protocol, per channel.

Pure Python over a `Link` (framing `FRAMING`: frames end with CR):

    link = SerialLink("socket://ltr1200:50000", framing=FRAMING, write_terminator=b"\\r")
    tec = MeCom.on(link, address=1)
    link.open()
    ccd = tec.channel(1)
    ccd.read_status()                     # ChannelStatus(object_temperature=-89.98, ...)
    ccd.set_target_temperature(-90.0)     # #0115A1VS0BB801C2B40000D745
    ccd.set_output_stage("HW_ENABLE")

Frames and tables are in protocol.py: `#`, address (2 hex), sequence number (4 hex), payload,
CRC-16/XMODEM (4 hex) and CR; the reply echoes the address and the sequence number after `!`. Parameters are read with
`?VR<id><instance>` and written with `VS<id><instance><value>` (FLOAT32 or INT32 as 8 hex
digits, big-endian); the instance is the channel. The device's refusals (`+05` parameter not
available, `+06` read only, `+07` out of range, ...) raise `MeComError` in the device's words;
a reply with a wrong CRC, from another address or with another sequence number raises
`GarbledReply`: it cannot be the answer to this request, and the line is reconnected. Channels
of one device on one line share one `MeCom` (`MeCom.on(link, address)`: one sequence counter). The LTR-1200 greets a new client
with a line of text ("Welcome ..."); it is kept in `greeting`, not taken for a reply.
"""

from __future__ import annotations

import enum
import random
import struct
from dataclasses import dataclass

from ..core.errors import GarbledReply, InstrumentError, RejectedValue, shown
from ..core.limits import Limits
from ..core.link import Link
from .protocol import (
    DEVICE_WIDE,
    ERRORS,
    FRAMING,
    PARAMETERS,
    TCP_PORT,
    DeviceStatus,
    MeComFrames,
    OutputStage,
    Parameter,
    crc,
    is_greeting,
    is_hex,
    refusal_code,
    request,
)

__all__ = [
    "FRAMING", "PARAMETERS", "TARGET_LIMITS", "TCP_PORT", "ChannelStatus", "DeviceStatus", "MeCom", "MeComError",
    "MeComFrames", "OutputStage", "Parameter", "TecChannel",
]

#: Target object temperatures the lab allows on a CCD head's Peltier. The TEC-1090 itself
#: accepts −273 to 1000 °C (RNG_TEMP) and answers +07 beyond that.
TARGET_LIMITS = Limits(-100.0, 50.0, "degC")


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

    def __init__(self, link: Link, address: int = 1) -> None:
        if not 0 <= address <= 255:
            raise RejectedValue(f"MeCom address {address!r} is not 0 to 255 (0 reaches any device)")
        self.link = link
        self.address = address
        #: The specification recommends a random start, one more for every new request.
        self.sequence = random.randrange(0x10000)
        #: The text the LTR-1200 greeted the last connection with.
        self.greeting: str | None = None
        link.listen((MeCom, address), self._unasked)

    @classmethod
    def on(cls, link: Link, address: int = 1) -> MeCom:
        """The one MeCom object of `address` on `link`, shared by the channels of that device."""
        return link.one(cls, address)

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
            raise GarbledReply(f"the reply to {shown(request)} is not a {parameter.type}: {shown(value)}") from None

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
        return request(self.address, sequence, payload)

    def _exchange(self, payload: str, acknowledge: bool) -> str:
        with self.link.lock:
            self.sequence = (self.sequence + 1) % 0x10000
            request = self.frame(payload, self.sequence)
            reply = self.link.transaction(request, accept=self._is_frame)
        return self._check(request, reply, acknowledge)

    def _check(self, request: bytes, frame: bytes, acknowledge: bool) -> str:
        """The answer in `frame`; `MeComError` for a refusal; `GarbledReply` for anything that
        cannot be the reply to `request` (bad frame or CRC, another address or sequence)."""
        sent = request.decode("ascii").rstrip("\r")
        what = f"reply {shown(frame)} to {shown(sent)}"
        reply = frame.decode("ascii", errors="replace")
        if not reply.startswith("!") or len(reply) < 11 or not is_hex(reply[1:7]) or not is_hex(reply[-4:]):
            raise GarbledReply(f"{what} is not a MeCom frame")
        body, check = reply[:-4], reply[-4:].upper()
        expected, of = (sent[-4:], "the request's") if len(body) == 7 else (crc(body), "computed")
        if check != expected:
            raise GarbledReply(f"{what} has CRC {check}, {of} is {expected}")
        if body[1:3] != sent[1:3]:
            raise GarbledReply(f"{what} comes from address {body[1:3]}, not {sent[1:3]}")
        if body[3:7] != sent[3:7]:
            raise GarbledReply(f"{what} has sequence number {body[3:7]}, not {sent[3:7]}: not its answer")
        answer = body[7:]
        if (code := refusal_code(answer)) is not None:
            raise MeComError(code, sent[7:-4])
        if acknowledge and answer:
            raise GarbledReply(f"{what}: expected an acknowledge")
        if not acknowledge and not answer:
            raise GarbledReply(f"{what}: an acknowledge where a value was asked for")
        return answer

    def _is_frame(self, payload: bytes) -> bool:
        """Every frame is a reply but the LTR-1200's greeting (and the line feed after it)."""
        return bool(payload) and not is_greeting(payload)

    def _unasked(self, payload: bytes) -> None:
        """MeCom devices speak only when asked: anything else but the greeting is garbage."""
        if not payload:
            return
        if is_greeting(payload):
            self.greeting = payload.strip().decode("ascii", errors="replace")
        else:
            raise GarbledReply(f"a frame nobody asked for: {shown(payload)}")


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
