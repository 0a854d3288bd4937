"""Devices on in-memory instruments, to test what the core does without any protocol in the way.

`MemoryLink` is a transport (`memory://name`, registered here as any new transport registers
its scheme) whose "instrument" is a Python object in the device's process; the devices here add
commands that let a test break the link or make the instrument speak unasked.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from tango.server import command

from device_servers.core.errors import LinkError, RejectedValue
from device_servers.core.hardware import HardwareDevice, polled, writable
from device_servers.core.limits import Limits
from device_servers.core.line import register_transport
from device_servers.core.link import Link
from device_servers.core.stage import Motion, Stage

GAIN = Limits(0.0, 10.0, "V/V")


class MemoryLink(Link):
    """A link to nothing but a queue of frames the instrument sends unasked; it can be broken."""

    def __init__(self, url: str, *, serial_options: Any = None, **options: Any) -> None:
        super().__init__(url, **options)
        self.opened = False
        self.broken = False
        self.unasked: list[bytes] = []

    @property
    def is_open(self) -> bool:
        return self.opened

    def open(self) -> None:
        if self.broken:
            raise LinkError(f"cannot open {self.url}: unplugged")
        self.opened = True

    def close(self) -> None:
        self.opened = False

    def transaction(self, request: bytes, **_: Any) -> bytes:
        if self.broken or not self.opened:
            raise LinkError(f"{self.url} is not connected")
        return request

    def route_waiting(self, framing: Any = None) -> None:
        while self.unasked:
            self._route(self.unasked.pop(0))


register_transport("memory", MemoryLink)


class Amplifier:
    """A made-up instrument driver: a gain to set, a trace to read, and unasked overload reports."""

    def __init__(self, link: MemoryLink) -> None:
        self.link = link
        self.gain = 2.0
        self.polls = 0
        self.overloads: list[float] = []
        self.on_overload = None
        link.listen(Amplifier, self._unasked)

    def read(self) -> dict[str, Any]:
        self.link.transaction(b"READ?")
        self.polls += 1
        return {"gain": self.gain, "trace": [self.gain * i for i in range(4)], "polls": self.polls}

    def set_gain(self, channel: int, gain: float) -> float:
        GAIN.check("gain", gain)
        self.link.transaction(f"GAIN {channel} {gain}".encode())
        self.gain = round(gain, 1)  # the instrument keeps one decimal: the read-back says so
        return self.gain

    def _unasked(self, frame: bytes) -> None:
        if self.on_overload:
            self.on_overload(float(frame.decode()))


class AmplifierDevice(HardwareDevice):
    gain = writable(dtype=float, writes=(Amplifier.set_gain, 1), limits=GAIN, doc="Gain of channel 1")
    trace = polled(dtype=(float,), max_dim_x=16, doc="A spectrum")
    polls = polled(dtype=int)

    def create_driver(self, link: Link) -> Amplifier:
        driver = Amplifier(link)
        driver.on_overload = lambda level: self.publish({"overload": level})
        return driver

    def init_device(self) -> None:
        super().init_device()
        self.add_polled_attribute("overload", dtype=float, unit="V", abs_change=1e-6, doc="Added at run time")

    def poll(self) -> dict[str, Any]:
        return self.driver.read()

    @command(dtype_in=bool)
    def Unplug(self, unplugged: bool) -> None:
        self.link.broken = unplugged

    @command(dtype_in=float)
    def Overload(self, level: float) -> None:
        """The instrument reports an overload unasked."""
        self.link.unasked.append(str(level).encode())


class SlideDriver:
    """A made-up stage: 1000 steps per mm over 0–50 mm, moving in simulated real time."""

    needs_homing = True
    travel = Limits(0, 50_000, "steps")

    def __init__(self, link: MemoryLink) -> None:
        self.link = link
        self.lock = threading.Lock()
        self.position, self.target = 0.0, 0.0
        self.velocity, self.acceleration = 5000.0, 50_000.0
        self.homed = self.homing = False
        self.stalled = False
        self.since = time.monotonic()

    def _advance(self) -> None:
        now = time.monotonic()
        dt, self.since = now - self.since, now
        if self.stalled:
            return
        step = self.velocity * dt
        distance = self.target - self.position
        self.position = self.target if abs(distance) <= step else self.position + math.copysign(step, distance)
        if self.homing and self.position == self.target:
            self.homing, self.homed = False, True

    def read_motion(self) -> Motion:
        self.link.transaction(b"?")
        with self.lock:
            self._advance()
            return Motion(
                self.position, moving=self.position != self.target, homing=self.homing, homed=self.homed,
                home_switch=self.position == 0, upper_limit=self.position >= 50_000,
            )

    def move_to(self, position: float) -> None:
        with self.lock:
            self._advance()
            self.target = position

    def stop(self, immediate: bool) -> None:
        with self.lock:
            self._advance()
            self.target = self.position

    def home(self) -> None:
        with self.lock:
            self._advance()
            self.target, self.homing = 0.0, True

    def read_velocity(self) -> float:
        return self.velocity

    def set_velocity(self, per_second: float) -> None:
        if per_second <= 0:
            raise RejectedValue(f"velocity must be above 0, not {per_second}")
        self.velocity = per_second

    def read_acceleration(self) -> float:
        return self.acceleration

    def set_acceleration(self, per_second2: float) -> None:
        self.acceleration = per_second2


class SlideDevice(Stage):
    def create_driver(self, link: Link) -> SlideDriver:
        return SlideDriver(link)

    @command(dtype_in=bool)
    def Stall(self, stalled: bool) -> None:
        self.driver.stalled = stalled
