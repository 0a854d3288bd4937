"""Driver of the Honeywell Minitrend recorder's Modbus TCP interface, for the pens it records.

Pure Python over a `ModbusLink`: usable from a script as well as from the Tango device.

    driver = Minitrend(link_for_url("modbus://192.168.1.30:502/1"))
    driver.link.open()
    driver.read_pens([0, 1, 2, 3, 8, 9])       # {0: 2.31, 1: 1.87, ...}  (the pens' units: l/min)
    driver.read_status([0, 1, 2, 3, 8, 9])     # values and alarm bits, in two requests

Pen i's value is an IEEE 754 float32 in input registers 0x18C0 + 2i, high word first; its six
alarms are bits 0 to 5 of the input register 0x1980 + i (minitrend_protocol.py). The pens asked for are read in one
request spanning them, their alarms in a second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.errors import RejectedValue
from ..core.modbus_link import ModbusLink
from ..core.registers import WordOrder, float32_values
from .minitrend_protocol import ALARM_BITS, PEN_ALARMS, PEN_VALUES, PENS, TCP_PORT, UNIT

__all__ = ["ALARM_BITS", "PENS", "PEN_ALARMS", "PEN_VALUES", "TCP_PORT", "UNIT", "Minitrend", "PenStatus"]


@dataclass(frozen=True)
class PenStatus:
    value: float | None  # in the pen's engineering units; None: the recorder has no valid value
    alarms: int  # bits 0 to 5: the pen's alarms 1 to 6

    @property
    def active_alarms(self) -> list[int]:
        """The numbers (1 to 6) of the pen's alarms that are on."""
        return [bit + 1 for bit in range(6) if self.alarms >> bit & 1]


class Minitrend:
    """The pens of a Honeywell Minitrend (QX / GR) recorder."""

    def __init__(self, link: ModbusLink, *, word_order: WordOrder = "big") -> None:
        if word_order not in ("big", "little"):
            raise ValueError(f"word order is big (high word first) or little, not {word_order!r}")
        self.link = link
        self.word_order = word_order

    def read_pens(self, pens: Sequence[int]) -> dict[int, float | None]:
        """The values of `pens`, in one request from the lowest to the highest."""
        first, last = _span(pens)
        registers = self.link.read_input_registers(PEN_VALUES + 2 * first, 2 * (last - first + 1))
        values = float32_values(registers, self.word_order)
        return {pen: _finite(values[pen - first]) for pen in pens}

    def read_alarms(self, pens: Sequence[int]) -> dict[int, int]:
        """The alarm bits of `pens`, in one request."""
        first, last = _span(pens)
        registers = self.link.read_input_registers(PEN_ALARMS + first, last - first + 1)
        return {pen: registers[pen - first] & ALARM_BITS for pen in pens}

    def read_status(self, pens: Sequence[int]) -> dict[int, PenStatus]:
        """Values and alarms of `pens`, in two requests under one hold of the link."""
        with self.link.lock:
            values = self.read_pens(pens)
            alarms = self.read_alarms(pens)
        return {pen: PenStatus(values[pen], alarms[pen]) for pen in pens}


def _span(pens: Sequence[int]) -> tuple[int, int]:
    if not pens:
        raise RejectedValue("no pens to read: name at least one of pens 0 to 15")
    if outside := [pen for pen in pens if pen not in PENS]:
        raise RejectedValue(f"the recorder's pens are 0 to 15, not {outside[0]}")
    return min(pens), max(pens)


def _finite(value: float) -> float | None:
    """A pen whose input has failed reads NaN or infinity: that is no value."""
    return value if math.isfinite(value) else None
