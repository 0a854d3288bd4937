"""Driver of a Thorlabs APT DC servo controller (KDC101, TDC001) with one linear stage.

Pure Python over a `Link`: usable from a script as well as from the Tango device.

    stage = AptStage(link_for_url("/dev/ttyUSB0", framing=APT_FRAMING,
                                  serial_options={"baudrate": 115200, "rtscts": True}))
    stage.configure()                # NO_FLASH_PROGRAMMING, channel enabled
    stage.move_to(25_600)            # MOVE_ABSOLUTE to 1 mm; MOVE_COMPLETED arrives later, unasked
    stage.read_motion().position     # counts, from GET_DCSTATUSUPDATE

APT messages (Thorlabs "Host-Controller Communications Protocol") are a 6-byte header: message
id (u16, little-endian), two parameter bytes, destination, source. When the destination has
bit 0x80 set, the two parameter bytes are instead the length of a data block that follows.
The host is 0x01, a single-channel cube 0x50. No checksum: the USB-serial link has its own.

Moves are not answered: the controller sends MOVE_COMPLETED, MOVE_HOMED or MOVE_STOPPED
unasked when the motion ends. Those frames reach `on_motion_end` through `link.unsolicited`.
The controller stops sending such status-type messages after about 50 of them unless the host
says it is alive (MOT_ACK_DCSTATUSUPDATE), so every status read is followed by one.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.errors import InstrumentError, shown
from ..core.framing import FramingError, LengthInHeader
from ..core.limits import Limits
from ..core.link import Link
from ..core.stage import Motion

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


#: The messages this driver and the simulator use, as the manual names them.
MESSAGES = {
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
BY_ID = {message.id: message for message in MESSAGES.values()}

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
    message = MESSAGES[name]
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
    """The message in `frame`; `InstrumentError` for an unknown id or a data block of the wrong size."""
    message_id, p1, p2, dest, source = struct.unpack("<HBBBB", frame[:6])
    message = BY_ID.get(message_id)
    if message is None:
        raise InstrumentError(f"unknown APT message {message_id:#06x}: {shown(frame)}")
    if message.data is None:
        return Frame(message, dest, source, p1, p2)
    data = frame[6:]
    if not dest & 0x80 or len(data) != message.size:
        raise InstrumentError(f"{message.name} with {len(data)} data bytes, not {message.size}: {shown(frame)}")
    return Frame(message, dest & 0x7F, source, values=struct.unpack(message.data, data))


@dataclass(frozen=True)
class HardwareInfo:
    serial_number: int
    model: str
    firmware: str
    notes: str
    channels: int


class AptStage:
    """One channel of an APT DC servo controller, in encoder counts (`StageDriver`)."""

    def __init__(self, link: Link, *, counts_per_mm: float = COUNTS_PER_MM, channel: int = CHANNEL) -> None:
        self.link = link
        self.channel = channel
        self.counts_per_mm = counts_per_mm
        self.travel = Limits(0, round(TRAVEL_MM * counts_per_mm), "counts")
        self.velocity_limits = Limits(1.0, MAX_VELOCITY_MM * counts_per_mm, "counts/s")
        self.acceleration_limits = Limits(1.0, MAX_ACCELERATION_MM * counts_per_mm, "counts/s²")
        #: The KDC101 moves before homing; its counter then counts from where it was switched on.
        self.needs_homing = False
        #: Called with (message name, Motion or None) when a move, homing or stop ends.
        self.on_motion_end: Callable[[str, Motion | None], None] | None = None
        link.unsolicited = self._unasked

    # -- the controller --------------------------------------------------------------------------

    def configure(self) -> None:
        """What every host sends first: no flash programming, then the channel enabled."""
        self._send("HW_NO_FLASH_PROGRAMMING")
        self.enable(True)

    def read_info(self) -> HardwareInfo:
        serial, model, _type, minor, interim, major, _, notes, _, _hw, _state, channels = self._ask(
            "HW_REQ_INFO", "HW_GET_INFO", p1=0
        ).values
        return HardwareInfo(serial, _text(model), f"{major}.{interim}.{minor}", _text(notes), channels)

    def identify(self) -> None:
        """Flash the controller's front panel LED."""
        self._send("MOD_IDENTIFY", p1=self.channel)

    def enable(self, on: bool) -> None:
        self._send("MOD_SET_CHANENABLESTATE", p1=self.channel, p2=1 if on else 2)

    def is_enabled(self) -> bool:
        return self._ask("MOD_REQ_CHANENABLESTATE", "MOD_GET_CHANENABLESTATE", p1=self.channel).p2 == 1

    # -- motion ----------------------------------------------------------------------------------

    def read_motion(self) -> Motion:
        """Position and status bits (GET_DCSTATUSUPDATE, what DC servo cubes answer)."""
        frame = self._ask(
            "MOT_REQ_DCSTATUSUPDATE", "MOT_GET_DCSTATUSUPDATE", p1=self.channel,
            then=encode("MOT_ACK_DCSTATUSUPDATE"),  # "server alive": else updates stop after ~50
        )
        return _motion(frame.values)

    def move_to(self, position: float) -> None:
        counts = round(self.travel.check("target", position))
        self._send_data("MOT_MOVE_ABSOLUTE", self.channel, counts)

    def move_by(self, distance: float) -> None:
        """A relative move; the controller does not refuse one beyond the travel (its switches stop it)."""
        self._send_data("MOT_MOVE_RELATIVE", self.channel, round(distance))

    def stop(self, immediate: bool) -> None:
        self._send("MOT_MOVE_STOP", p1=self.channel, p2=1 if immediate else 2)

    def home(self) -> None:
        self._send("MOT_MOVE_HOME", p1=self.channel)

    def read_velocity_parameters(self) -> tuple[float, float, float]:
        """(minimum velocity counts/s, acceleration counts/s², maximum velocity counts/s)."""
        _, minimum, acceleration, maximum = self._ask("MOT_REQ_VELPARAMS", "MOT_GET_VELPARAMS", p1=self.channel).values
        return _velocity(minimum), _acceleration(acceleration), _velocity(maximum)

    def read_velocity(self) -> float:
        return self.read_velocity_parameters()[2]

    def read_acceleration(self) -> float:
        return self.read_velocity_parameters()[1]

    def set_velocity(self, per_second: float) -> float:
        per_second = self.velocity_limits.check("velocity", per_second)
        minimum, acceleration, _ = self.read_velocity_parameters()
        return self._set_velocity_parameters(minimum, acceleration, per_second)[2]

    def set_acceleration(self, per_second2: float) -> float:
        per_second2 = self.acceleration_limits.check("acceleration", per_second2)
        minimum, _, maximum = self.read_velocity_parameters()
        return self._set_velocity_parameters(minimum, per_second2, maximum)[1]

    def _set_velocity_parameters(self, minimum: float, acceleration: float, maximum: float) -> tuple[float, float, float]:
        self._send_data(
            "MOT_SET_VELPARAMS", self.channel, round(minimum * SAMPLE_S * 65536),
            round(acceleration * SAMPLE_S**2 * 65536), round(maximum * SAMPLE_S * 65536),
        )
        return self.read_velocity_parameters()  # what the controller took

    # -- the wire --------------------------------------------------------------------------------

    def _send(self, name: str, **header: int) -> None:
        self.link.transaction(encode(name, **header), reply=False)

    def _send_data(self, name: str, *values: Any) -> None:
        self.link.transaction(encode(name, *values), reply=False)

    def _ask(self, request: str, reply: str, *, then: bytes = b"", **header: int) -> Frame:
        """Send `request` (and `then`, a message that gets no reply, in the same write: two small
        writes in a row wait on TCP's delayed acknowledgement) and return the `reply` frame."""
        wanted = MESSAGES[reply].id
        payload = self.link.transaction(
            encode(request, **header) + then, accept=lambda frame: struct.unpack_from("<H", frame)[0] == wanted
        )
        frame = decode(payload)
        _check_addresses(frame, payload)
        return frame

    def _unasked(self, payload: bytes) -> None:
        frame = decode(payload)
        _check_addresses(frame, payload)
        name = frame.message.name
        if name in ("MOT_MOVE_COMPLETED", "MOT_MOVE_STOPPED", "MOT_MOVE_HOMED") and self.on_motion_end:
            self.on_motion_end(name, _motion(frame.values) if frame.values else None)


def _check_addresses(frame: Frame, payload: bytes) -> None:
    if frame.source != CONTROLLER or frame.dest != HOST:
        raise InstrumentError(
            f"{frame.message.name} from address {frame.source:#04x} to {frame.dest:#04x}, "
            f"not from the controller {CONTROLLER:#04x} to the host {HOST:#04x}: {shown(payload)}"
        )


def _motion(values: tuple) -> Motion:
    _channel, position, _velocity, _reserved, bits = values
    return Motion(
        position=float(position),
        moving=bool(bits & MOVING),
        homing=bool(bits & HOMING),
        homed=bool(bits & HOMED),
        home_switch=bool(bits & REVERSE_LIMIT),
        upper_limit=bool(bits & FORWARD_LIMIT),
        lower_limit=bool(bits & REVERSE_LIMIT),
        error="position error too large: the motor could not follow (stalled?)" if bits & MOTION_ERROR else None,
    )


def _velocity(apt: int) -> float:
    return apt / (SAMPLE_S * 65536)


def _acceleration(apt: int) -> float:
    return apt / (SAMPLE_S**2 * 65536)


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("ascii", errors="replace").strip()
