"""Driver of a Thorlabs APT DC servo controller (KDC101, TDC001) with one linear stage.

Pure Python over a `Link`: usable from a script as well as from the Tango device.

    stage = AptStage(link_for_url("/dev/ttyUSB0", framing=APT_FRAMING,
                                  serial_options={"baudrate": 115200, "rtscts": True}))
    stage.configure()                # NO_FLASH_PROGRAMMING, channel enabled
    stage.move_to(25_600)            # MOVE_ABSOLUTE to 1 mm; MOVE_COMPLETED arrives later, unasked
    stage.read_motion().position     # counts, from GET_DCSTATUSUPDATE

APT messages (Thorlabs "Host-Controller Communications Protocol", protocol.py) are a 6-byte
header and, for long messages, a data block. No checksum: the USB-serial link has its own.

Moves are not answered: the controller sends MOVE_COMPLETED, MOVE_HOMED or MOVE_STOPPED
unasked when the motion ends. Those frames reach `on_motion_end`: the driver listens on its
line (`link.listen`).
The controller stops sending such status-type messages after about 50 of them unless the host
says it is alive (MOT_ACK_DCSTATUSUPDATE), so every status read is followed by one.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.errors import GarbledReply, shown
from ..core.limits import Limits
from ..core.link import Link
from ..core.stage import Motion
from .protocol import (
    APT_FRAMING,
    CHANNEL,
    CONTROLLER,
    COUNTS_PER_MM,
    FORWARD_LIMIT,
    HOMED,
    HOMING,
    HOST,
    MAX_ACCELERATION_MM,
    MAX_VELOCITY_MM,
    MOTION_ERROR,
    MOVING,
    REVERSE_LIMIT,
    SAMPLE_S,
    TABLE,
    TRAVEL_MM,
    Frame,
    decode,
    encode,
)

__all__ = ["APT_FRAMING", "COUNTS_PER_MM", "AptStage", "HardwareInfo"]

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
        link.listen((AptStage, channel), self._unasked)

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
        wanted = TABLE[reply].id
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
        raise GarbledReply(
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
