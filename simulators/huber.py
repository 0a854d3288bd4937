"""Huber Unichiller, simulated: the LAI protocol over a circulating bath.

The protocol follows Huber's data communication chapter (LAI commands): master frames
`[M01` + command + length + data + checksum + CR, slave replies `[S01` + the same command.

- `V` answers the unit's name, `[S01V14Huber ControlC1`;
- `L` answers the set-point limits and the working range (four 16-bit values in 0.01 °C);
- `G` sets what is not `*` (mode C/I/O, alarm acknowledgement, set-point) and answers
  mode, alarm, set-point, internal and external temperature;
- the unit answers only frames it received correctly: a wrong checksum, a wrong address, a
  length that does not match or an unknown command gets no reply at all, as the manual says
  ("will always send a response for a correctly received command").

Physics: the bath (internal sensor) follows the set-point with time constant `tau` while the
unit cools (I, circulation and temperature control); with the pump only (C) or off (O) it
drifts to the ambient temperature with the slower `ambient_tau`. No external sensor is fitted
(C504 = -151.00 °C). The `alarm on|off` control command raises the unit's alarm flag.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import ClassVar

from device_servers.huber.protocol import FRAMING, NO_SENSOR, celsius, checksum, frame, hundredths

from .core import Simulator, _on_off

NAME = "Huber Control"
SETPOINT_RANGE = (-20.0, 40.0)  # °C: the Unichiller 025's set-point limits
WORKING_RANGE = (-20.0, 40.0)  # °C
AMBIENT_C = 22.0
NOISE_C = 0.005


class HuberSimulator(Simulator):
    """A Huber Unichiller on TCP, LAI commands V, L and G at slave address 01."""

    kind = "huber"
    default_port = 8101
    framing = FRAMING
    garbage_end = b"\r"

    def __init__(
        self, *, tau: float = 120.0, ambient_tau: float = 900.0, seed: int | None = None, speed: float = 1.0
    ) -> None:
        super().__init__(seed=seed, speed=speed)
        self.tau = tau
        self.ambient_tau = ambient_tau
        self.mode = "O"  # O off, C circulation (pump), I internal control (pump and cooling)
        self.setpoint = 20.0
        self.bath = AMBIENT_C
        self.alarm = False

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--tau", type=float, default=120.0, help="bath time constant when cooling, s (120)")
        parser.add_argument(
            "--ambient-tau", type=float, default=900.0, help="time constant of the drift to ambient, s (900)"
        )

    # -- protocol ----------------------------------------------------------------------------

    def handle(self, frame: bytes) -> bytes | None:
        body = frame.removesuffix(b"\r")
        self.received.append(body)
        if len(body) < 9 or not body.startswith(b"[M01") or checksum(body[:-2]) != body[-2:]:
            return None
        try:
            length = int(body[5:7], 16)
            data = body[7:-2].decode("ascii")
        except (ValueError, UnicodeDecodeError):
            return None
        if length != len(body) - 2:
            return None
        command = chr(body[4])
        if command == "V" and not data:
            return self._reply("V", NAME)
        if command == "L" and data == "*" * 8:
            return self._reply("L", "".join(hundredths(t) for t in (*SETPOINT_RANGE, *WORKING_RANGE)))
        if command == "G" and len(data) == 6:
            return self._general(data)
        return None

    def _general(self, data: str) -> bytes | None:
        mode, acknowledge, setpoint = data[0], data[1], data[2:]
        if mode not in "CIO*" or acknowledge not in "01*":
            return None
        if setpoint != "****":
            try:
                value = celsius(setpoint)
            except ValueError:
                return None
            self.setpoint = min(max(value, SETPOINT_RANGE[0]), SETPOINT_RANGE[1])
        if mode != "*":
            self.mode = mode
        bath = self.reading("bath", self.bath + self.random.gauss(0.0, NOISE_C))
        return self._reply(
            "G",
            f"{self.mode}{int(self.alarm)}{hundredths(self.setpoint)}{hundredths(bath)}{hundredths(NO_SENSOR)}",
        )

    @staticmethod
    def _reply(command: str, data: str) -> bytes:
        return frame(command, data, sender="S")

    def spoil(self, fault: str, reply: bytes) -> bytes:
        body = reply.removesuffix(b"\r")
        if fault == "checksum":
            wrong = (int(body[-2:], 16) + 1) & 0xFF
            return body[:-2] + b"%02X\r" % wrong
        if fault == "address":  # answered as slave 02, checksum right for it
            other = b"[S02" + body[4:-2]
            return other + checksum(other) + b"\r"
        return super().spoil(fault, reply)

    # -- physics -----------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        if self.mode == "I":
            self.bath += (self.setpoint - self.bath) * dt / self.tau
        else:
            self.bath += (AMBIENT_C - self.bath) * dt / self.ambient_tau

    def readings(self) -> dict[str, object]:
        return {"bath": self.bath}

    def clear(self) -> None:
        super().clear()
        with self.lock:
            self.alarm = False

    def _control_alarm(self, state: str) -> None:
        self.alarm = _on_off(state)

    def _control_help(self) -> str:
        return super()._control_help() + " | alarm on|off"

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **Simulator._CONTROL,
        "alarm": _control_alarm,
        "clear": clear,
        "help": _control_help,
    }
