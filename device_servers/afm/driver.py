"""The epz board's operations over a `ZmqLink`: settings read back after each set, the piezo's
ramps, the feedback, the file fetch, and the block stream as a `Source` of the core's streams.

No Tango here. A setting is checked against the protocol's ranges before anything is sent
(`RejectedValue`), sent on CMD, and read back on REQPAR as the original's clients do; a board
that keeps another value says so (`InstrumentError`). Silence is the link's (`LinkError`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..core.errors import InstrumentError, LinkError, RejectedValue
from ..core.stream import Samples
from ..core.zmq_link import Subscriber, ZmqLink
from . import protocol

#: The piezo's range on the DAC, V.
DAC_RANGE = protocol.SETTINGS["DAC_HARD"].ranges[0]
#: How often a setting is sent before a board that keeps another value is believed (the original: 5).
SET_TRIES = 3
#: Ticks of 20 us per ramp step: the ramp moves DACSTEP volts every millisecond.
RAMP_TICKS = 50


@dataclass(frozen=True)
class Calibration:
    """Volts on the wire as lengths and forces: the cantilever's optical sensitivity (nm of
    deflection per V), its stiffness (pN/nm) and the piezo's gain (nm per DAC V)."""

    sensitivity: float = 50.0
    stiffness: float = 50.0
    piezo: float = 200.0

    def force(self, volts: float) -> float:
        """pN of a deflection in V (positive: pushed by the surface; negative: pulled)."""
        return volts * self.sensitivity * self.stiffness

    def volts(self, force: float) -> float:
        return force / (self.sensitivity * self.stiffness)


class EpzBoard:
    """One NanoUP board (`device`) behind its broker."""

    def __init__(self, link: ZmqLink, device: str = protocol.DEVICE, calibration: Calibration = Calibration()) -> None:
        self.link = link
        self.device = device
        self.calibration = calibration

    def hello(self, timeout: float | None = None) -> str:
        """The board's type: proves the broker carries both ways (after a (re)connection)."""
        return self.fact("GET_DEVICE_TYPE", timeout)

    def fact(self, request: str, timeout: float | None = None) -> str:
        letter = protocol.FACTS[request]
        text = self.link.exchange(protocol.get_request(request, self.device), self._reply(letter), timeout=timeout)
        return protocol.parse_reply(text, self.device)[1][0]

    def get(self, name: str) -> list[float]:
        """The values that hold for setting `name`."""
        letter = protocol.SETTINGS[name].letter
        text = self.link.exchange(protocol.get_request(name, self.device), self._reply(letter))
        return [float(value) for value in protocol.parse_reply(text, self.device)[1]]

    def set(self, name: str, *values: float) -> list[float]:
        """Set `name`, read it back and return what holds; `RejectedValue` (nothing sent) when
        out of range, `InstrumentError` when the board kept another value."""
        try:
            message = protocol.set_command(name, [float(value) for value in values], self.device)
        except protocol.ProtocolError as exc:
            raise RejectedValue(str(exc)) from None
        for _ in range(SET_TRIES):  # a message published as the broker's connection comes is lost
            self.link.publish(message)
            held = self.get(name)
            if name in ("DAC_HARD", "MODSAFE") or np.allclose(held, values, rtol=1e-6, atol=0):
                return held
        raise InstrumentError(f"{self.device} kept {name} at {held} instead of {list(values)}")

    def setting(self, name: str, value: float) -> float:
        """Set a one-value setting; returns what holds (an attribute's write), whole where it is."""
        held = self.set(name, value)[0]
        return int(held) if protocol.SETTINGS[name].whole(0) else held

    def set_setpoint(self, force: float) -> float:
        """The feedback's set-point in pN (the board's is in deflection V)."""
        low, high = (self.calibration.force(limit) for limit in protocol.SETTINGS["SETPOINT"].ranges[0])
        if not low <= force <= high:
            raise RejectedValue(f"the set-point must be {low:g} to {high:g} pN (+-1 V of deflection), not {force:g}")
        return self.calibration.force(self.setting("SETPOINT", self.calibration.volts(force)))

    def set_save(self, save: bool) -> bool:
        return bool(self.setting("SAVE", int(save)))

    # -- the piezo and the feedback -----------------------------------------------------------

    def dac(self) -> float:
        """The DAC's output now, V."""
        return self.get("DAC_HARD")[0]

    def ramping(self) -> bool:
        return self.fact("IS_RAMPING") == "1"

    def ramp(self, target: float, speed: float, *, force: tuple[float, bool] | None = None,
             dac: tuple[float, bool] | None = None, seconds: float | None = None) -> None:
        """Move the piezo to `target` V at `speed` V/s, stopping early at the first trigger:
        deflection beyond `force` (V, True: below it), DAC beyond `dac`, or after `seconds`."""
        self.set("NUMT6TRIG", RAMP_TICKS)
        self.set("DACSTEP", speed * RAMP_TICKS * protocol.TICK_S)
        if force is not None:
            self.set("FTRIG", force[0], int(force[1]))
        if dac is not None:
            self.set("ZTRIG", dac[0], int(dac[1]))
        if seconds is not None:
            self.set("TIMETRIG", round(seconds * 1e6), 0)
        self.set("TRIGGERS", int(force is not None), int(dac is not None), int(seconds is not None))
        self.set("DAC_SOFT", target)

    def halt(self) -> float:
        """Stop a ramp where the piezo is; returns the DAC's value."""
        here = self.dac()
        self.set("DAC_HARD", here)
        return here

    def feedback(self, on: bool) -> None:
        """The feedback on the deflection (START_MODSAFE 2,0) or off, the piezo held (0,0)."""
        self.set("MODSAFE", 2 if on else 0, 0)

    def rest(self) -> None:
        """Feedback off and the piezo back to 0 V (START_MODSAFE 0,1)."""
        self.set("MODSAFE", 0, 1)

    def fetch(self) -> bytes:
        return self.link.fetch(protocol.FETCH)

    def _reply(self, letter: str) -> str:
        return protocol.topic(protocol.SNDPAR, self.device) + letter + ":"


class BlockSource:
    """The board's binary block stream as a source of the core's streams: samples of the
    board's channels plus the save flag (a channel), in UNIX time; the board's overload flag
    is kept in `overload`."""

    def __init__(self, link: ZmqLink, device: str = protocol.DEVICE) -> None:
        self.link = link
        self.device = device
        self.overload = False
        self.save = False
        #: The mean of each channel over the last block (None before the first).
        self.last: np.ndarray | None = None
        self._subscriber: Subscriber | None = None
        self._epoch = 0.0  # UNIX time of the board's time 0
        self._next: int | None = None

    def open(self) -> None:
        self.close()
        self._subscriber = self.link.subscriber(protocol.topic(protocol.BLOCK, self.device))
        self._next = None

    def read(self, timeout: float) -> Samples | None:
        if self._subscriber is None:
            raise LinkError(f"{self.link.url}: the block stream is not open")
        parts = self._subscriber.receive(timeout)
        if parts is None:
            return None
        try:
            block = protocol.parse_block(parts, self.device)
        except protocol.ProtocolError as exc:
            raise LinkError(f"{self.link.url}: {exc}") from exc
        missed = ""
        if self._next is None or block.counter < self._next:  # first block, or the board restarted
            self._epoch = time.time() - block.first_time - block.samples.shape[1] * block.period
        elif block.counter > self._next:
            missed = f"blocks {self._next} to {block.counter - 1} of {self.device} did not arrive"
        self._next = block.counter + 1
        self.overload, self.save = block.overload, block.save
        self.last = block.samples.mean(axis=1)
        save = np.full((1, block.samples.shape[1]), float(block.save), dtype=block.samples.dtype)
        data = np.concatenate((block.samples, save))
        return Samples(self._epoch + block.first_time, block.period, data, missed)

    def close(self) -> None:
        if self._subscriber is not None:
            self._subscriber.close()
            self._subscriber = None
