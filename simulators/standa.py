"""Standa 8SMC5 stepper controller with an 8MT173-25 translation stage, simulated (XIMC protocol).

The wire follows the libximc documentation's protocol chapter (device_servers/standa/protocol.py):
four-letter commands, data with a CRC-16, replies that echo the letters, `errc` for a command
it does not know, `errd` for data whose CRC disagrees, `errv` for a value out of range (nothing
changes then). Nothing is sent unasked.

Physics, in full steps (400 a mm), 1/256 microsteps: the carriage `x` runs between a left limit
switch at 0 and a right one 25.2 mm away; the counter reads x - offset (0 at power-up wherever
the carriage is). Moves follow a trapezoidal profile at the move settings' speed, acceleration
and deceleration, and stop at the borders of the edges settings (positions, 0 to 10 000 steps
once zeroed at home). `home` runs left to the switch, then back off 40 steps at a slow speed and
sets the homed flag; `zero` makes the present position 0. A limit switch met on the way stops
the motor at once and ends the move command with an error; the edge flag stays on while the
carriage is on the switch. `stop` halts at once, `sstp` decelerates.

Control port: `stall on|off` holds the carriage where it is during moves: after 0.3 s the move
command ends with an error and the position control error flag (what the encoder-checked
8SMC5 reports when the stage stalls); the next move clears it.

Not simulated: the encoder's own count, backlash (antiplay), the power and USB electrics beyond
fixed plausible values, the other settings commands (each answered `errc`).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import ClassVar

from device_servers.core.errors import GarbledReply
from device_servers.standa.protocol import (
    BORDER_IS_ENCODER,
    BORDER_STOP_LEFT,
    BORDER_STOP_RIGHT,
    MOVE_STATE_MOVING,
    MVCMD,
    MVCMD_ERROR,
    MVCMD_RUNNING,
    PWR_STATE_NORM,
    REQUEST_FRAMING,
    REQUESTS,
    STATE_CTP_ERROR,
    STATE_IS_HOMED,
    STATE_LEFT_EDGE,
    STATE_RIGHT_EDGE,
    decode,
    reply,
    split_steps,
)

from .core import Simulator, _on_off

MICROSTEP_MODE = 9  # 1/256
MICROSTEPS = 256
STEPS_PER_MM = 400
HOME_DELTA = 40.0  # steps from the left switch to home
TRAVEL = 10_000  # steps: 25 mm
RIGHT_SWITCH = HOME_DELTA + TRAVEL + HOME_DELTA
HOME_SPEED, HOME_SLOW = 2_000.0, 200.0  # steps/s
MAX_SPEED = 100_000
STALL_S = 0.3


class StandaSimulator(Simulator):
    """Standa 8SMC5 with an 8MT173-25 stage (XIMC binary protocol)."""

    kind = "standa"
    default_port = 1820
    framing = REQUEST_FRAMING
    max_step = 0.002
    tick = 0.01

    def __init__(self, *, start: float = 10.0, max_speed: int = MAX_SPEED, seed: int | None = None,
                 speed: float = 1.0) -> None:
        super().__init__(seed=seed, speed=speed)
        self.x = start * STEPS_PER_MM  # steps from the left switch
        self.offset = self.x
        self.velocity = 0.0  # steps/s, signed
        self.mode = "idle"  # idle, move, stop, seek (homing to the switch), back-off
        self.target = self.x
        self.command = 0  # MvCmdSts: the last move command, its error and running bits
        self.homed = False
        self.control_error = False
        self.stalled, self.stalled_for = False, 0.0
        self.max_speed = max_speed
        # move settings: Speed, uSpeed, Accel, Decel, AntiplaySpeed, uAntiplaySpeed, MoveFlags
        self.move_settings = [1000, 0, 2000, 2000, 50, 0, 0]
        # edges settings: BorderFlags, EnderFlags, LeftBorder, uLeftBorder, RightBorder, uRightBorder
        self.edges = [BORDER_IS_ENCODER | BORDER_STOP_LEFT | BORDER_STOP_RIGHT, 0, 0, 0, TRAVEL, 0]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--start", type=float, default=10.0,
                            help="carriage position at power-up, mm from the left limit switch (10)")
        parser.add_argument("--max-speed", type=int, default=MAX_SPEED,
                            help=f"the fastest speed smov accepts, steps/s ({MAX_SPEED})")

    # -- physics ---------------------------------------------------------------------------------

    @property
    def position(self) -> float:
        """What the counter reads, in steps."""
        return self.x - self.offset

    @property
    def top_speed(self) -> float:
        return self.move_settings[0] + self.move_settings[1] / MICROSTEPS

    def step(self, dt: float) -> None:
        if self.mode == "idle":
            return
        if self.stalled and self.mode in ("move", "stop"):
            self.velocity = 0.0
            self.stalled_for += dt
            if self.stalled_for >= STALL_S:
                self.control_error = True
                self._end(error=True)
            return
        if self.mode == "seek":
            self._drive(-HOME_SPEED, dt, self.move_settings[2])
            self.x += self.velocity * dt
            if self.x <= 0.0:
                self.x, self.velocity, self.mode, self.target = 0.0, 0.0, "back-off", HOME_DELTA
            return
        top = HOME_SLOW if self.mode == "back-off" else self.top_speed
        arrived = self._toward(self.target, top, dt)
        if self._on_switch_ahead():
            self._end(error=True)
        elif arrived:
            if self.mode == "back-off":
                self.homed = True
            self._end(error=False)

    def _toward(self, target: float, top: float, dt: float) -> bool:
        """Accelerate, cruise or brake towards `target`; True once there."""
        distance = target - self.x
        deceleration = self.move_settings[3]
        wanted = math.copysign(min(top, math.sqrt(2 * deceleration * abs(distance))), distance)
        self._drive(wanted, dt, self.move_settings[2] if abs(wanted) > abs(self.velocity) else deceleration)
        moved = self.velocity * dt
        if abs(distance) < 0.5 / MICROSTEPS or (moved * distance > 0 and abs(moved) >= abs(distance)):
            self.x, self.velocity = target, 0.0
            return True
        self.x += moved
        return False

    def _drive(self, wanted: float, dt: float, rate: float) -> None:
        change = rate * dt
        self.velocity += max(-change, min(change, wanted - self.velocity))

    def _on_switch_ahead(self) -> bool:
        """A limit switch met in the direction of travel stops the motor at once."""
        if self.x >= RIGHT_SWITCH and self.velocity >= 0:
            self.x = RIGHT_SWITCH
            return True
        if self.x <= 0.0 and self.velocity <= 0:
            self.x = 0.0
            return True
        return False

    def _end(self, *, error: bool) -> None:
        self.mode, self.velocity, self.stalled_for = "idle", 0.0, 0.0
        self.command = (self.command & ~MVCMD_RUNNING) | (MVCMD_ERROR if error else 0)

    def _start(self, command: bytes, mode: str, target: float) -> None:
        self.command = MVCMD[command] | MVCMD_RUNNING
        self.control_error, self.stalled_for = False, 0.0
        self.mode, self.target = mode, target

    def _bordered(self, counter: float) -> float:
        """A target in counter steps, held within the borders the edges settings stop at."""
        flags, _, left, u_left, right, u_right = self.edges
        if flags & BORDER_IS_ENCODER:
            if flags & BORDER_STOP_LEFT:
                counter = max(counter, left + u_left / MICROSTEPS)
            if flags & BORDER_STOP_RIGHT:
                counter = min(counter, right + u_right / MICROSTEPS)
        return counter

    # -- the protocol ----------------------------------------------------------------------------

    def handle(self, frame: bytes) -> bytes | None:
        self.received.append(frame)
        code = frame[:4]
        if code not in REQUESTS:
            return b"errc"
        try:
            _, values = decode(frame, REQUESTS)
        except GarbledReply:
            return b"errd"
        return self._COMMANDS[code](self, *values)

    def _status(self) -> bytes:
        whole, micro = _split(self.reading("position", self.position))
        speed, u_speed = _split(self.velocity)
        moving = MOVE_STATE_MOVING if self.mode != "idle" else 0
        flags = (STATE_IS_HOMED if self.homed else 0) | (STATE_CTP_ERROR if self.control_error else 0)
        gpio = (STATE_LEFT_EDGE if self.x <= 0.0 else 0) | (STATE_RIGHT_EDGE if self.x >= RIGHT_SWITCH else 0)
        # MoveSts, MvCmdSts, PWRSts, EncSts, WindSts, position, speed, Ipwr mA, Upwr 10 mV,
        # Iusb mA, Uusb 10 mV, CurT 0.1 °C, Flags, GPIOFlags, CmdBufFreeSpace
        return reply(b"gets", moving, self.command, PWR_STATE_NORM, 0, 0, whole, micro, 0, speed, u_speed,
                     350, 1200, 120, 500, 312, flags, gpio, 255)

    def _position(self) -> bytes:
        whole, micro = _split(self.reading("position", self.position))
        return reply(b"gpos", whole, micro, 0)

    def _move(self, position: int, u_position: int) -> bytes:
        if abs(u_position) >= MICROSTEPS:
            return b"errv"
        self._start(b"move", "move", self._bordered(position + u_position / MICROSTEPS) + self.offset)
        return b"move"

    def _move_by(self, delta: int, u_delta: int) -> bytes:
        if abs(u_delta) >= MICROSTEPS:
            return b"errv"
        base = (self.target if self.mode == "move" else self.x) - self.offset
        self._start(b"movr", "move", self._bordered(base + delta + u_delta / MICROSTEPS) + self.offset)
        return b"movr"

    def _stop(self) -> bytes:
        self._start(b"stop", "idle", self.x)
        self._end(error=False)
        return b"stop"

    def _soft_stop(self) -> bytes:
        if self.mode == "idle":
            return b"sstp"
        braking = self.velocity * abs(self.velocity) / (2 * self.move_settings[3])
        self._start(b"sstp", "stop", self.x + braking)
        return b"sstp"

    def _home(self) -> bytes:
        self._start(b"home", "seek", 0.0)
        self.homed = False
        return b"home"

    def _zero(self) -> bytes:
        self.offset = self.x
        self.target = self.x if self.mode == "idle" else self.target
        return b"zero"

    def _set_move(self, speed: int, u_speed: int, accel: int, decel: int, *rest: int) -> bytes:
        if not (0 < speed + u_speed / MICROSTEPS <= self.max_speed and u_speed < MICROSTEPS and accel and decel):
            return b"errv"
        self.move_settings = [speed, u_speed, accel, decel, *rest]
        return b"smov"

    def _engine(self) -> bytes:
        # NomVoltage 10 mV, NomCurrent mA, NomSpeed, uNomSpeed, EngineFlags, Antiplay, MicrostepMode, StepsPerRev
        return reply(b"geng", 1200, 240, 5000, 0, 0x10, 50, MICROSTEP_MODE, 200)

    def _set_edges(self, flags: int, enders: int, left: int, u_left: int, right: int, u_right: int) -> bytes:
        if max(abs(u_left), abs(u_right)) >= MICROSTEPS or left + u_left / MICROSTEPS >= right + u_right / MICROSTEPS:
            return b"errv"
        self.edges = [flags, enders, left, u_left, right, u_right]
        return b"sedg"

    _COMMANDS: ClassVar[dict[bytes, Callable[..., bytes]]] = {
        b"gets": _status,
        b"gpos": _position,
        b"move": _move,
        b"movr": _move_by,
        b"stop": _stop,
        b"sstp": _soft_stop,
        b"home": _home,
        b"zero": _zero,
        b"gmov": lambda self: reply(b"gmov", *self.move_settings),
        b"smov": _set_move,
        b"geng": _engine,
        b"gedg": lambda self: reply(b"gedg", *self.edges),
        b"sedg": _set_edges,
    }

    # -- faults ----------------------------------------------------------------------------------

    def readings(self) -> dict[str, object]:
        return {"position": self.position}

    def spoil(self, fault: str, answer: bytes) -> bytes:
        if fault == "checksum":  # replies with data carry a CRC; the four letters alone have none
            return answer[:-1] + bytes([answer[-1] ^ 0xFF]) if len(answer) > 4 else answer
        return super().spoil(fault, answer)  # truncate; XIMC has no address to answer from

    def _control_stall(self, state: str) -> None:
        with self.lock:
            self.stalled, self.stalled_for = _on_off(state), 0.0

    def _control_help(self) -> str:
        return super()._control_help() + " | stall on|off"

    def clear(self) -> None:
        super().clear()
        with self.lock:
            self.stalled = False

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **Simulator._CONTROL, "clear": clear, "help": _control_help, "stall": _control_stall,
    }


def _split(steps: float) -> tuple[int, int]:
    return split_steps(steps, MICROSTEPS)
