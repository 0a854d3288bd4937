"""Honeywell Minitrend recorder watching coolant flows, on Modbus TCP (port 502, unit 1).

Register map (function 4, input registers; function 3 reads the same map):

    0x18C0 + 2i   pen i's value, IEEE 754 float32 in engineering units (l/min), high word first
    0x1980 + i    pen i's alarms, a uint16 whose bits 0 to 5 are the pen's six alarms

Pens 0, 1, 2, 3, 8 and 9 carry coolant flows of 1.5 to 3 l/min (set by the seed) with a little
noise; the other pens read 0. Alarm 1 of every flow pen is the recorder's low-flow alarm, on
below `low_alarm` (0.5 l/min). The control port can stop a pen's flow, which then falls to
about zero within a second or two (time constant 0.25 s), and force alarm bits:

    flow PEN on|off      start or stop the flow on pen PEN (0, 1, 2, 3, 8 or 9)
    alarm PEN BITS|off   report these alarm bits on pen PEN (e.g. 0x04), or its own again
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import ClassVar

from pymodbus.simulator import DataType, SimData

from device_servers.core.registers import float32_registers
from device_servers.flow.minitrend_protocol import PEN_ALARMS, PEN_VALUES
from device_servers.flow.minitrend_protocol import PENS as PEN_NUMBERS

from .core import _on_off
from .modbus import ModbusSimulator

#: Pens in the register map; those that carry a flow.
PENS = len(PEN_NUMBERS)
FLOW_PENS = (0, 1, 2, 3, 8, 9)
#: How fast a stopped (or restarted) flow settles, in seconds.
TIME_CONSTANT_S = 0.25
LOW_FLOW_ALARM = 0x01


class MinitrendSimulator(ModbusSimulator):
    """Honeywell Minitrend recorder: coolant flows as float32 input registers on Modbus TCP."""

    kind: ClassVar[str] = "minitrend"

    def __init__(
        self, *, seed: int | None = None, speed: float = 1.0, low_alarm: float = 0.5, noise: float = 0.02
    ) -> None:
        super().__init__(seed=seed, speed=speed)
        self.low_alarm = low_alarm
        self.noise = noise
        #: The flow each pen has while its coolant runs, in l/min.
        self.nominal = {pen: round(self.random.uniform(1.5, 3.0), 2) for pen in FLOW_PENS}
        self.flow = dict(self.nominal)
        self.running = dict.fromkeys(FLOW_PENS, True)
        #: Alarm bits reported instead of the pen's own, by pen.
        self.forced_alarms: dict[int, int] = {}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--low-alarm", type=float, default=0.5, help="low-flow alarm level, l/min (0.5)")
        parser.add_argument("--noise", type=float, default=0.02, help="flow noise, l/min rms (0.02)")

    # -- physics ------------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        settle = 1.0 - math.exp(-dt / TIME_CONSTANT_S)
        for pen in FLOW_PENS:
            target = self.nominal[pen] if self.running[pen] else 0.0
            self.flow[pen] += (target - self.flow[pen]) * settle

    def readings(self) -> dict[str, object]:
        return {f"pen{pen}": self.flow[pen] for pen in FLOW_PENS}

    def set_flow(self, pen: int, running: bool) -> None:
        """Start or stop the coolant on `pen`."""
        with self.lock:
            self.running[_flow_pen(pen)] = running

    def pen_value(self, pen: int) -> float:
        """What the recorder shows on `pen` now: the flow with its noise, never below zero."""
        if pen not in self.flow:
            return 0.0
        measured = max(0.0, self.flow[pen] + (self.random.gauss(0.0, self.noise) if self.noise else 0.0))
        return float(self.reading(f"pen{pen}", measured))

    def pen_alarms(self, pen: int, value: float) -> int:
        if pen in self.forced_alarms:
            return self.forced_alarms[pen]
        return LOW_FLOW_ALARM if pen in self.flow and value < self.low_alarm else 0

    # -- registers ----------------------------------------------------------------------------

    def register_map(self) -> list[SimData]:
        return [
            SimData(PEN_VALUES, count=2 * PENS, values=0, datatype=DataType.REGISTERS, readonly=True),
            SimData(PEN_ALARMS, count=PENS, values=0, datatype=DataType.REGISTERS, readonly=True),
        ]

    def read_registers(self, function_code: int, address: int, count: int) -> list[int]:
        wanted = range(address, address + count)
        pens = {(a - PEN_VALUES) // 2 for a in wanted if PEN_VALUES <= a < PEN_VALUES + 2 * PENS}
        pens |= {a - PEN_ALARMS for a in wanted if PEN_ALARMS <= a < PEN_ALARMS + PENS}
        registers: dict[int, int] = {}
        for pen in sorted(pens):
            value = self.pen_value(pen)
            high, low = float32_registers([value])
            registers[PEN_VALUES + 2 * pen], registers[PEN_VALUES + 2 * pen + 1] = high, low
            registers[PEN_ALARMS + pen] = self.pen_alarms(pen, value)
        return [registers[a] for a in wanted]

    # -- control port -------------------------------------------------------------------------

    def clear(self) -> None:
        with self.lock:
            super().clear()
            self.forced_alarms.clear()
            self.running = dict.fromkeys(FLOW_PENS, True)

    def _control_flow(self, pen: str, state: str) -> None:
        self.set_flow(int(pen), _on_off(state))

    def _control_alarm(self, pen: str, bits: str) -> None:
        number = _flow_pen(int(pen))
        if bits.lower() == "off":
            self.forced_alarms.pop(number, None)
            return
        value = int(bits, 0)
        if not 0 <= value <= 0x3F:
            raise ValueError(f"alarm bits are 0 to 0x3F (six alarms), not {bits}")
        self.forced_alarms[number] = value

    def _control_status(self) -> str:
        stopped = ",".join(str(pen) for pen in FLOW_PENS if not self.running[pen]) or "none"
        return f"{ModbusSimulator._control_status(self)} stopped={stopped}"

    def _control_help(self) -> str:
        return (
            f"{ModbusSimulator._control_help(self)} | flow PEN on|off | alarm PEN BITS|off "
            f"(pens {', '.join(map(str, FLOW_PENS))})"
        )

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **ModbusSimulator._CONTROL,
        "flow": _control_flow,
        "alarm": _control_alarm,
        "clear": clear,
        "status": _control_status,
        "help": _control_help,
    }


def _flow_pen(pen: int) -> int:
    if pen not in FLOW_PENS:
        raise ValueError(f"pen {pen} carries no flow; flow pens are {', '.join(map(str, FLOW_PENS))}")
    return pen


__all__ = ["FLOW_PENS", "PEN_ALARMS", "PEN_VALUES", "MinitrendSimulator"]
