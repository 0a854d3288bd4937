"""What an instrument on a simulated GPIB bus offers the bus controller it sits behind.

A GPIB instrument is addressed, receives one message at a time (ended by EOI and usually LF),
and makes its reply ready after its real conversion or processing time; the controller (the
Prologix simulator) reads it when asked (`++read eoi`). Instruments are plain objects, not
servers: the controller serves them, advances their physics, and applies their reply times.
"""

from __future__ import annotations

import random


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
