"""Thorlabs KDC101 (TDC001 class) DC servo cube with a Z8-like linear stage, on the APT protocol.

Binary frames as the real cube sends them over its USB-serial link (115200 8N1, RTS/CTS),
here served on TCP (default port 7028, the port the original lab's stage daemon used): a 6-byte
header (message id u16 LE, p1, p2, destination, source) and, when the destination has bit 0x80,
a data block whose length p1/p2 give. APT has no checksum: the `checksum` fault is refused.

The stage: 25 600 counts per mm, 50 mm of travel, trapezoidal moves at the VELPARAMS maximum
velocity and acceleration (capped at 5 mm/s and 5 mm/s²; defaults 1 mm/s and 5 mm/s², so a
profiled stop from full speed takes 0.2 s over 0.1 mm). Physically the reverse limit switch,
which is also the home switch, sits 0.5 mm below the travel and the forward one 0.5 mm above
it: homing runs to the reverse switch at 2 mm/s, backs off 0.5 mm and calls that zero. At
power-up the counter reads 0 wherever the carriage is (`--start`, mm from the reverse switch),
and moves are not refused before homing, as on the real cube: a move can then run into a switch,
which stops it at once.

Answers: HW_REQ_INFO → HW_GET_INFO; MOD_REQ_CHANENABLESTATE → MOD_GET_CHANENABLESTATE;
MOT_REQ_VELPARAMS → MOT_GET_VELPARAMS; MOT_REQ_DCSTATUSUPDATE → MOT_GET_DCSTATUSUPDATE (what the
KDC101 and TDC001 document); MOT_REQ_STATUSUPDATE → MOT_GET_STATUSUPDATE (position, encoder
count, status bits) as well. Sent unasked: MOT_MOVE_COMPLETED when a move ends, MOT_MOVE_HOMED
when homing ends, MOT_MOVE_STOPPED after MOVE_STOP (1 immediate, 2 profiled), a limit switch or
a stall; DCSTATUSUPDATE every 100 ms after HW_START_UPDATEMSGS. As on the real cube, after 50
status-type messages without a MOT_ACK_DCSTATUSUPDATE ("server alive") it sends no more of them.

Extra control-port command: `stall on|off`: the motor no longer follows; after 0.5 s the servo
reports a motion error (status bit 0x4000), gives up the move and sends MOVE_STOPPED.
"""

from __future__ import annotations

import argparse
import math
import struct
from collections.abc import Callable
from typing import ClassVar

from device_servers.apt.protocol import (
    APT_FRAMING,
    BY_ID,
    CONTROLLER,
    ENABLED,
    FORWARD_LIMIT,
    HOMED,
    HOMING,
    HOST,
    MAX_ACCELERATION_MM,
    MAX_VELOCITY_MM,
    MOTION_ERROR,
    MOVING_FORWARD,
    MOVING_REVERSE,
    REVERSE_LIMIT,
    SAMPLE_S,
    SETTLED,
    TRAVEL_MM,
    encode,
)

from .core import Simulator, _on_off

COUNTS_PER_MM = 25_600
HOME_OFFSET_MM = 0.5
#: Status-type messages the cube sends without a "server alive" before it falls silent.
UNACKNOWLEDGED_LIMIT = 50
STALL_ERROR_S = 0.5
STATUS_MESSAGES = ("MOT_GET_STATUSUPDATE", "MOT_GET_DCSTATUSUPDATE", "MOT_MOVE_COMPLETED", "MOT_MOVE_STOPPED",
                   "MOT_MOVE_HOMED")


class AptSimulator(Simulator):
    """Thorlabs KDC101 DC servo cube with a 50 mm linear stage (APT binary protocol)."""

    kind = "apt"
    default_port = 7028
    framing = APT_FRAMING
    max_step = 0.002  # fine steps: a stop's 0.1 mm must come out right
    tick = 0.02

    def __init__(self, *, start: float = 25.0, seed: int | None = None, speed: float = 1.0) -> None:
        super().__init__(seed=seed, speed=speed)
        mm = COUNTS_PER_MM
        #: Carriage position in counts from the reverse limit switch; the counter reads x - zero.
        self.x = start * mm
        self.zero = self.x
        self.reverse_switch = 0.0
        self.forward_switch = (TRAVEL_MM + 2 * HOME_OFFSET_MM) * mm
        self.velocity = 0.0  # counts/s, signed
        self.max_velocity = 1.0 * mm
        self.min_velocity = 0.0
        self.acceleration = 5.0 * mm
        self.home_velocity = 2.0 * mm
        self.mode = "idle"  # idle, move, stop, seek (homing to the switch), back-off
        self.target = self.x
        self.homed = False
        self.enabled = True
        self.error = False
        self.stalled = False
        self.stalled_for = 0.0
        self.identified = 0
        #: Where the counter stood when the last MOVE_STOP arrived: tests measure the braking from it.
        self.stopped_from: int | None = None
        self.updates = False
        self.since_update = 0.0
        self.unacknowledged = 0

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--start", type=float, default=25.0,
                            help="carriage position at power-up, mm above the reverse switch (25)")

    # -- physics ---------------------------------------------------------------------------------

    @property
    def position(self) -> int:
        """What the position counter reads."""
        return round(self.x - self.zero)

    def step(self, dt: float) -> None:
        if self.updates:
            self.since_update += dt
            if self.since_update >= 0.1:
                self.since_update = 0.0
                self._send_status_type("MOT_GET_DCSTATUSUPDATE", *self._dc_status())
        if self.mode == "idle":
            return
        if self.stalled:
            self.stalled_for += dt
            if self.stalled_for >= STALL_ERROR_S:
                self.error = True
                self._end("MOT_MOVE_STOPPED")
            return
        if self.mode == "seek":
            self._drive(-self.home_velocity, dt)
            if self.x <= self.reverse_switch:
                self.x, self.velocity, self.mode = self.reverse_switch, 0.0, "back-off"
                self.target = self.reverse_switch + HOME_OFFSET_MM * COUNTS_PER_MM
            return
        speed = self.home_velocity if self.mode == "back-off" else self.max_velocity
        arrived = self._toward(self.target, speed, dt)
        if self._on_switch_ahead():
            self.velocity = 0.0
            self._end("MOT_MOVE_STOPPED")
        elif arrived:
            if self.mode == "back-off":
                self.zero, self.homed = self.x, True
                self._end("MOT_MOVE_HOMED")
            else:
                self._end("MOT_MOVE_STOPPED" if self.mode == "stop" else "MOT_MOVE_COMPLETED")

    def _toward(self, target: float, top_speed: float, dt: float) -> bool:
        """Accelerate, cruise or brake towards `target`; True once there."""
        distance = target - self.x
        wanted = math.copysign(min(top_speed, math.sqrt(2 * self.acceleration * abs(distance))), distance)
        self._drive(wanted, dt)
        moved = self.velocity * dt
        if abs(distance) <= 0.5 or (moved and abs(moved) >= abs(distance) and moved * distance > 0):
            self.x, self.velocity = target, 0.0
            return True
        self.x += moved
        return False

    def _drive(self, wanted: float, dt: float) -> None:
        """Change the velocity towards `wanted` within the acceleration; in seek mode also move."""
        change = self.acceleration * dt
        self.velocity += max(-change, min(change, wanted - self.velocity))
        if self.mode == "seek":
            self.x += self.velocity * dt

    def _on_switch_ahead(self) -> bool:
        """A limit switch reached in the direction of travel stops the motor at once."""
        if self.x >= self.forward_switch and self.target > self.x - 1:
            self.x = self.forward_switch
            return True
        if self.x <= self.reverse_switch and self.target < self.x + 1:
            self.x = self.reverse_switch
            return True
        return False

    def _end(self, message: str) -> None:
        self.mode, self.velocity, self.stalled_for = "idle", 0.0, 0.0
        if message == "MOT_MOVE_HOMED":
            self._send_status_type(message, p1=1)
        else:
            self._send_status_type(message, *self._dc_status())

    def _start(self, mode: str, target: float) -> None:
        if not self.enabled:
            return  # a disabled channel does not drive its motor
        self.error, self.stalled_for = False, 0.0
        self.mode, self.target = mode, target

    # -- status ----------------------------------------------------------------------------------

    def bits(self) -> int:
        bits = ENABLED if self.enabled else 0
        if self.x >= self.forward_switch:
            bits |= FORWARD_LIMIT
        if self.x <= self.reverse_switch:
            bits |= REVERSE_LIMIT
        if self.mode != "idle":
            heading = self.velocity or ((self.target - self.x) if self.mode != "seek" else -1)
            bits |= MOVING_FORWARD if heading > 0 else MOVING_REVERSE
        if self.mode in ("seek", "back-off"):
            bits |= HOMING
        if self.homed:
            bits |= HOMED
        if self.error:
            bits |= MOTION_ERROR
        elif self.mode == "idle":
            bits |= SETTLED
        return bits

    def _dc_status(self) -> tuple[int, int, int, int, int]:
        """Channel, position, velocity, motor current (not modelled), status bits."""
        velocity = max(-32768, min(32767, round(self.velocity * SAMPLE_S * 256)))
        return (1, self.reading("position", self.position), velocity, 0, self.bits())

    def readings(self) -> dict[str, object]:
        return {"position": self.position}

    def _send_status_type(self, name: str, *values: int, p1: int = 0) -> None:
        frame = self._status_type(name, *values, p1=p1)
        if frame is not None:
            self.send_unasked(frame)

    def _status_type(self, name: str, *values: int, p1: int = 0) -> bytes | None:
        """A status-type message, unless 50 went out since the host last said it was alive."""
        if self.unacknowledged >= UNACKNOWLEDGED_LIMIT:
            return None
        self.unacknowledged += 1
        return self._reply(name, *values, p1=p1)

    @staticmethod
    def _reply(name: str, *values: object, p1: int = 0, p2: int = 0) -> bytes:
        return encode(name, *values, p1=p1, p2=p2, dest=HOST, source=CONTROLLER)

    # -- the protocol ----------------------------------------------------------------------------

    def handle(self, frame: bytes) -> bytes | None:
        self.received.append(frame)
        message_id, p1, p2, dest, _source = struct.unpack("<HBBBB", frame[:6])
        message = BY_ID.get(message_id)
        if message is None or (dest & 0x7F) != CONTROLLER:
            return None  # the cube ignores what it does not know or what is not for it
        data = frame[6:]
        if message.data is not None:
            if len(data) != message.size:
                return None
            values = struct.unpack(message.data, data)
            handler = self._LONG.get(message.name)
            return handler(self, *values) if handler else None
        handler = self._SHORT.get(message.name)
        return handler(self, p1, p2) if handler else None

    def _info(self, _p1: int, _p2: int) -> bytes:
        return self._reply(
            "HW_GET_INFO", 27_000_001, b"KDC101\x00\x00", 16, 3, 0, 2, 0,
            b"Brushed DC servo K-Cube (tangolab simulator)".ljust(48, b"\x00"), bytes(12), 1, 0, 1,
        )

    def _identify(self, _p1: int, _p2: int) -> None:
        self.identified += 1  # the front panel LED flashes

    def _set_enable(self, _channel: int, state: int) -> None:
        self.enabled = state == 1
        if not self.enabled and self.mode != "idle":
            self._end("MOT_MOVE_STOPPED")

    def _get_enable(self, channel: int, _p2: int) -> bytes:
        return self._reply("MOD_GET_CHANENABLESTATE", p1=channel, p2=1 if self.enabled else 2)

    def _set_velparams(self, _channel: int, minimum: int, acceleration: int, maximum: int) -> None:
        mm = COUNTS_PER_MM
        self.min_velocity = max(0.0, minimum / (SAMPLE_S * 65536))
        self.acceleration = min(max(acceleration / (SAMPLE_S**2 * 65536), 1.0), MAX_ACCELERATION_MM * mm)
        self.max_velocity = min(max(maximum / (SAMPLE_S * 65536), 1.0), MAX_VELOCITY_MM * mm)

    def _get_velparams(self, channel: int, _p2: int) -> bytes:
        return self._reply(
            "MOT_GET_VELPARAMS", channel, round(self.min_velocity * SAMPLE_S * 65536),
            round(self.acceleration * SAMPLE_S**2 * 65536), round(self.max_velocity * SAMPLE_S * 65536),
        )

    def _home(self, _channel: int, _p2: int) -> None:
        self._start("seek", self.reverse_switch)

    def _move_absolute(self, _channel: int, position: int) -> None:
        self._start("move", position + self.zero)

    def _move_relative(self, _channel: int, distance: int) -> None:
        self._start("move", self.x + distance)

    def _stop(self, _channel: int, mode: int) -> None:
        self.stopped_from = self.position
        if self.mode == "idle" or mode == 1 or self.velocity == 0:
            self._end("MOT_MOVE_STOPPED")
        else:
            braking = self.velocity * abs(self.velocity) / (2 * self.acceleration)
            self.mode, self.target = "stop", self.x + braking

    def _status(self, channel: int, _p2: int) -> bytes | None:
        _, position, _, _, bits = self._dc_status()
        return self._status_type("MOT_GET_STATUSUPDATE", channel, position, position, bits)

    def _dc_status_reply(self, _channel: int, _p2: int) -> bytes | None:
        return self._status_type("MOT_GET_DCSTATUSUPDATE", *self._dc_status())

    def _alive(self, _p1: int, _p2: int) -> None:
        self.unacknowledged = 0

    def _start_updates(self, _p1: int, _p2: int) -> None:
        self.updates, self.since_update = True, 0.0

    def _stop_updates(self, _p1: int, _p2: int) -> None:
        self.updates = False

    def _nothing(self, _p1: int, _p2: int) -> None:
        return None

    _SHORT: ClassVar[dict[str, Callable[..., bytes | None]]] = {
        "HW_REQ_INFO": _info,
        "HW_NO_FLASH_PROGRAMMING": _nothing,
        "HW_START_UPDATEMSGS": _start_updates,
        "HW_STOP_UPDATEMSGS": _stop_updates,
        "MOD_IDENTIFY": _identify,
        "MOD_SET_CHANENABLESTATE": _set_enable,
        "MOD_REQ_CHANENABLESTATE": _get_enable,
        "MOT_REQ_VELPARAMS": _get_velparams,
        "MOT_MOVE_HOME": _home,
        "MOT_MOVE_STOP": _stop,
        "MOT_REQ_STATUSUPDATE": _status,
        "MOT_REQ_DCSTATUSUPDATE": _dc_status_reply,
        "MOT_ACK_DCSTATUSUPDATE": _alive,
    }
    _LONG: ClassVar[dict[str, Callable[..., bytes | None]]] = {
        "MOT_SET_VELPARAMS": _set_velparams,
        "MOT_MOVE_ABSOLUTE": _move_absolute,
        "MOT_MOVE_RELATIVE": _move_relative,
    }

    # -- faults ----------------------------------------------------------------------------------

    def spoil(self, fault: str, reply: bytes) -> bytes:
        if fault == "address":  # as if bay 1 of a rack answered, not this cube
            return reply[:5] + b"\x21" + reply[6:]
        return super().spoil(fault, reply)  # truncate; APT has no checksum to spoil

    def _control_stall(self, state: str) -> None:
        with self.lock:
            self.stalled = _on_off(state)
            self.stalled_for = 0.0

    def _control_help(self) -> str:
        return super()._control_help() + " | stall on|off"

    def clear(self) -> None:
        super().clear()
        with self.lock:
            self.stalled = False

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **Simulator._CONTROL, "clear": clear, "help": _control_help, "stall": _control_stall,
    }
