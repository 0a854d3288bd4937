"""What an instrument on a simulated GPIB bus offers the bus controller it sits behind.

A GPIB instrument is addressed, receives one message at a time (ended by EOI and usually LF),
and makes its reply ready after its real conversion or processing time; the controller (the
Prologix simulator) reads it when asked (`++read eoi`). Instruments are plain objects, not
servers: the controller serves them, advances their physics, and applies their reply times.
"""

from __future__ import annotations

import random
import time

from device_servers.core.errors import LinkError
from device_servers.core.framing import block_data, definite_length_block

from .core import LineProtocolSimulator


class GpibInstrument:
    """One instrument at a primary GPIB address."""

    #: What the instrument is, for logs and the controller's `help`.
    model: str = "GPIB instrument"

    def __init__(self, address: int, *, seed: int | None = None) -> None:
        if not 0 <= address <= 30:
            raise ValueError(f"GPIB primary address {address} is not 0 to 30")
        self.address = address
        self.random = random.Random(seed)
        #: Every message received, in order, without its terminator: tests check the wire.
        self.received: list[str] = []

    def handle(self, message: str) -> str | None:
        """Take one message (its terminator removed); return the reply text it makes ready
        (without terminator), or None when it makes none."""
        raise NotImplementedError

    def reply_time(self, message: str) -> float:
        """Seconds after `message` until its reply is ready (conversion, integration, bus time)."""
        return 0.0

    def step(self, dt: float) -> None:
        """Move the instrument's physics on by `dt` simulated seconds."""

    def readings(self) -> dict[str, object]:
        """Readings that the controller's `freeze` can hold, by name."""
        return {}


class WaveformMemory(GpibInstrument):
    """An arbitrary-waveform memory, the least an instrument needs to carry binary data both ways
    as IEEE 488.2 definite-length blocks:

        DATA #41024<1024 bytes>     stores the block's bytes (any values, CR and LF too)
        DATA?                       answers `#41024<the bytes>`
        *IDN?                       TANGOLAB,WAVEFORM MEMORY,<address>,1.0

    Messages reach `handle` as latin-1 text, one character per byte."""

    model = "waveform memory"

    def __init__(self, address: int, *, seed: int | None = None) -> None:
        super().__init__(address, seed=seed)
        self.data = b""

    def handle(self, message: str) -> str | None:
        if message == "*IDN?":
            return f"TANGOLAB,WAVEFORM MEMORY,{self.address},1.0"
        if message == "DATA?":
            return definite_length_block(self.data).decode("latin-1")
        if message.startswith("DATA "):
            try:
                self.data = block_data(message.encode("latin-1"))
            except LinkError:
                pass  # no whole block: an instrument ignores it (and would flag a command error)
        return None


class DirectGpibSimulator(LineProtocolSimulator):
    """One GPIB instrument served on its own TCP port, requests LF-terminated, replies ending as the
    instrument ends them (its `terminator`, LF by default): an instrument behind a
    GPIB-Ethernet bridge that passes messages through, for tests and scripts that need no bus.

    Each reply waits the instrument's `reply_time` (the loop serves one client, as an instrument
    answers one controller); the control port's faults apply as to any simulator, and `freeze`
    holds the instrument's own readings.
    """

    kind = "gpib-direct"

    def __init__(self, instrument: GpibInstrument, *, seed: int | None = None, speed: float = 1.0) -> None:
        super().__init__(seed=seed, speed=speed)
        self.instrument = instrument
        if isinstance(getattr(instrument, "frozen", None), dict):
            instrument.frozen = self.frozen  # one dict: freeze and clear here reach the instrument

    @property  # type: ignore[override]
    def received(self) -> list[str]:
        """What reached the instrument, in order."""
        return self.instrument.received

    @received.setter
    def received(self, value: list) -> None:  # the core sets it before the instrument exists
        pass

    def handle_line(self, line: str) -> str | None:
        self.instrument.received.append(line)
        reply = self.instrument.handle(line)
        wait = self.instrument.reply_time(line) / self.speed
        if reply is not None and wait > 0:
            time.sleep(wait)
        return reply

    def handle(self, frame: bytes) -> bytes | None:
        line = self.framing.payload(frame).decode(self.encoding, errors="replace")
        reply = self.handle_line(line)
        if reply is None:
            return None
        return (reply + getattr(self.instrument, "terminator", "\n")).encode(self.encoding, errors="replace")

    def step(self, dt: float) -> None:
        self.instrument.step(dt)

    def readings(self) -> dict[str, object]:
        return self.instrument.readings()
