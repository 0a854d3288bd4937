"""Zaber T-Series stages on one daisy chain, simulated in Zaber's Binary protocol (firmware 5.xx).

The wire, as the Binary Protocol Manual describes it:

- every message either way is 6 bytes: device number, command number, then the data as a
  signed 32-bit integer, least significant byte first (negative data in two's complement);
- device 0 addresses every device on the chain; each one answers with its own number;
- a device replies with the command number it was given and the command's reply data, or with
  command 255 and an error code (typically the number of the command it refused, 64 for a
  command it does not know);
- a move (1 home, 20 absolute, 21 relative, 23 stop) replies when it ends, with the final
  position: the reply comes later, unasked, while other commands are answered meanwhile. A move
  interrupted by another move or by a stop gets no reply of its own; the later command replies;
- Return Setting (53) replies with the command number of the setting asked for (data 42 →
  reply command 42, the target speed); Set Device Mode (40) bit 7 is the read-only home status,
  bit 3 disables the knob, bit 0 disables every reply but those of Return commands (50 and up).

There is no checksum in Zaber Binary (the `checksum` fault is refused); the `address` fault
answers as a device number that is not on the chain.

Physics: each device is a T-LSM-like lead-screw slide: 64 microsteps per full step, 0.047625 µm
per microstep, travel 0 to `max_position` microsteps (672 255, about 32.0 mm: the focal-plane
slide's limit). Target speed data × 9.375 microsteps/s and acceleration data × 11 250
microsteps/s² (T-Series firmware 5.xx; acceleration 0 means instant), trapezoidal profiles. The
defaults (speed 2922 ≈ 1.30 mm/s, acceleration 100 ≈ 53.6 mm/s²) stop a move in about 25 ms.
Homing drives to the home switch at position 0 and sets the home status. Moves are accepted
before homing, as the real device accepts them; a driver that needs a reference checks bit 7.

Not simulated: renumbering, stored positions, manual (knob) moves, message IDs, park, and the
other settings (each answered with error 64).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import ClassVar

from device_servers.zaber.protocol import (
    ACCELERATION_UNIT,
    ECHO,
    ERROR,
    ERROR_COMMAND_INVALID,
    ERROR_SETTING_INVALID,
    FRAME,
    FRAMING,
    HOME,
    HOMING,
    IDLE,
    MICROSTEPS_PER_STEP,
    MODE_AUTO_REPLY_OFF,
    MODE_HOMED,
    MOVE_ABSOLUTE,
    MOVE_RELATIVE,
    RESET,
    RESTORE_SETTINGS,
    RETURN_POSITION,
    RETURN_SETTING,
    RETURN_STATUS,
    SET_ACCELERATION,
    SET_MAX_POSITION,
    SET_MODE,
    SET_TARGET_SPEED,
    SPEED_UNIT,
    STOP,
    STOPPING,
    TCP_PORT,
)
from device_servers.zaber.protocol import encode as frame

from .core import Simulator

MICROSTEP_MM = 0.000047625
MAX_SPEED_DATA = 512 * MICROSTEPS_PER_STEP - 1
MAX_POSITION = 672_255
TRAVEL_LIMIT = 1_049_869  # what the lead screw allows (50 mm): max position cannot exceed it
DEFAULT_SPEED = 2922
DEFAULT_ACCELERATION = 100
DEFAULT_MODE = 0


@dataclass
class Slide:
    """One device on the chain: its settings as the protocol shows them, and its carriage."""

    number: int
    position: float
    speed: int = DEFAULT_SPEED
    acceleration: int = DEFAULT_ACCELERATION
    max_position: int = MAX_POSITION
    mode: int = DEFAULT_MODE
    homed: bool = False
    velocity: float = 0.0  # microsteps/s, signed
    target: float | None = None
    status: int = IDLE
    #: The command whose reply the end of the present motion sends.
    pending: int | None = None

    @property
    def top_speed(self) -> float:
        return self.speed * SPEED_UNIT

    @property
    def deceleration(self) -> float:
        return self.acceleration * ACCELERATION_UNIT if self.acceleration else math.inf

    def start(self, target: float, status: int, reply_with: int) -> None:
        self.target, self.status, self.pending = target, status, reply_with

    def stopping_point(self) -> float:
        """Where the carriage comes to rest when it decelerates from now on."""
        if math.isinf(self.deceleration):
            return self.position
        return self.position + math.copysign(self.velocity**2 / (2 * self.deceleration), self.velocity)

    def advance(self, dt: float) -> int | None:
        """Move on by `dt` seconds; the command to reply to when the motion ends now, else None."""
        if self.target is None:
            return None
        distance = self.target - self.position
        if math.isinf(self.deceleration):
            wanted = math.copysign(self.top_speed, distance)
            self.velocity = wanted
        else:
            wanted = math.copysign(min(self.top_speed, math.sqrt(2 * self.deceleration * abs(distance))), distance)
            change = self.deceleration * dt
            self.velocity += max(-change, min(change, wanted - self.velocity))
        step = self.velocity * dt
        towards = step * distance > 0
        if abs(distance) <= 0.5 or (towards and abs(step) >= abs(distance)):
            return self._arrive()
        self.position += step
        return None

    def _arrive(self) -> int | None:
        assert self.target is not None
        self.position, self.velocity, self.target = self.target, 0.0, None
        if self.status == HOMING:
            self.homed, self.position = True, 0.0
        self.status = IDLE
        pending, self.pending = self.pending, None
        return pending

    @property
    def mode_word(self) -> int:
        return (self.mode & ~MODE_HOMED) | (MODE_HOMED if self.homed else 0)


class ZaberSimulator(Simulator):
    """Zaber T-Series slides on one daisy chain (Binary protocol)."""

    kind: ClassVar[str] = "zaber"
    default_port: ClassVar[int] = TCP_PORT
    framing = FRAMING
    max_step: ClassVar[float] = 0.002
    tick: ClassVar[float] = 0.01

    def __init__(
        self, *, devices: int = 1, start: int = 200_000, seed: int | None = None, speed: float = 1.0
    ) -> None:
        super().__init__(seed=seed, speed=speed)
        if not 1 <= devices <= 254:
            raise ValueError(f"a chain holds 1 to 254 devices, not {devices}")
        #: The devices by number, 1..n. Each starts unhomed with its carriage at `start` microsteps.
        self.slides = {n: Slide(n, float(start)) for n in range(1, devices + 1)}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--devices", type=int, default=1, help="devices on the daisy chain, numbered 1..N (1)")
        parser.add_argument("--start", type=int, default=200_000, help="carriage position at power-up, µsteps")

    # -- the protocol ---------------------------------------------------------------------------

    def handle(self, message: bytes) -> bytes | None:
        self.received.append(message)
        number, command, data = FRAME.unpack(message)
        addressed = list(self.slides.values()) if number == 0 else [self.slides[number]] if number in self.slides else []
        replies = [reply for slide in addressed if (reply := self._command(slide, command, data)) is not None]
        return b"".join(replies) or None

    def _command(self, slide: Slide, command: int, data: int) -> bytes | None:
        n = slide.number
        quiet = slide.mode & MODE_AUTO_REPLY_OFF and command < RETURN_SETTING
        reply: bytes | None
        if command == RESET:
            self.slides[n] = Slide(n, 0.0, slide.speed, slide.acceleration, slide.max_position, slide.mode)
            return None  # the manual: no reply; the position is lost
        if command == HOME:
            slide.start(0.0, HOMING, HOME)
            return None
        if command in (MOVE_ABSOLUTE, MOVE_RELATIVE):
            target = data if command == MOVE_ABSOLUTE else round(slide.position) + data
            if not 0 <= target <= slide.max_position or not slide.speed:
                return frame(n, ERROR, command)
            slide.start(float(target), command, command)
            return None
        if command == STOP:
            if slide.target is None:
                reply = frame(n, STOP, round(slide.position))
            else:
                slide.start(slide.stopping_point(), STOPPING, STOP)
                return None
        elif command == RESTORE_SETTINGS:
            slide.speed, slide.acceleration = DEFAULT_SPEED, DEFAULT_ACCELERATION
            slide.max_position, slide.mode = MAX_POSITION, DEFAULT_MODE
            reply = frame(n, RESTORE_SETTINGS, data)
        elif command in SETTINGS:
            _, low, high = SETTINGS[command]
            if not low <= data <= high:
                return frame(n, ERROR, command)
            setattr(slide, SETTINGS[command][0], data)
            reply = frame(n, command, self._setting(slide, command))
        elif command == RETURN_SETTING:
            if data not in SETTINGS:
                return frame(n, ERROR, ERROR_SETTING_INVALID)
            return frame(n, data, self._setting(slide, data))
        elif command == RETURN_STATUS:
            return frame(n, RETURN_STATUS, slide.status)
        elif command == ECHO:
            return frame(n, ECHO, data)
        elif command == RETURN_POSITION:
            return frame(n, RETURN_POSITION, round(self.reading(f"position{n}", slide.position)))
        else:
            return frame(n, ERROR, ERROR_COMMAND_INVALID)
        return None if quiet else reply

    @staticmethod
    def _setting(slide: Slide, command: int) -> int:
        return slide.mode_word if command == SET_MODE else getattr(slide, SETTINGS[command][0])

    # -- faults, physics, freeze ----------------------------------------------------------------

    def spoil(self, fault: str, reply: bytes) -> bytes:
        if fault == "address":  # every frame from a device number that is not on the chain
            stranger = len(self.slides) + 1
            return b"".join(bytes([stranger]) + reply[i + 1 : i + 6] for i in range(0, len(reply), 6))
        return super().spoil(fault, reply)

    def step(self, dt: float) -> None:
        for slide in self.slides.values():
            command = slide.advance(dt)
            if command is not None and not slide.mode & MODE_AUTO_REPLY_OFF:
                self._send_spoilt(frame(slide.number, command, round(slide.position)))

    def _send_spoilt(self, reply: bytes) -> None:
        """A reply the device sends when a motion ends, with the faults in force, as `handle`'s."""
        if self.offline:
            return
        for fault in sorted(self.faults):
            reply = self.spoil(fault, reply)
        self.send_unasked(self._garbage(len(reply)) if self.garbage else reply)

    def readings(self) -> dict[str, object]:
        return {f"position{n}": slide.position for n, slide in self.slides.items()}

    def stopping_time(self, number: int = 1) -> float:
        """Seconds a Stop takes from the present speed (physics, not the wall clock)."""
        slide = self.slides[number]
        return 0.0 if math.isinf(slide.deceleration) else abs(slide.velocity) / slide.deceleration


#: Settings a Set command writes and Return Setting reads: attribute, lowest and highest data.
SETTINGS: dict[int, tuple[str, int, int]] = {
    SET_MODE: ("mode", 0, 0xFFFF),
    SET_TARGET_SPEED: ("speed", 0, MAX_SPEED_DATA),
    SET_ACCELERATION: ("acceleration", 0, MAX_SPEED_DATA),
    SET_MAX_POSITION: ("max_position", 0, TRAVEL_LIMIT),
}
