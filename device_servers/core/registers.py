"""What 16-bit registers carry (Modbus): IEEE 754 float32 values in two registers each, high word
first ("big") or last ("little") as the instrument's manual says.

Pure encoding, no link: the Modbus transport, drivers and simulators share it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Literal

from .errors import GarbledReply

WordOrder = Literal["big", "little"]


def float32_values(registers: Sequence[int], word_order: WordOrder = "big") -> list[float]:
    """IEEE 754 single-precision values, two registers each; "big": the high word comes first."""
    if len(registers) % 2:
        raise GarbledReply(f"{len(registers)} registers are no whole number of float32 values")
    values = []
    for first, second in zip(registers[::2], registers[1::2], strict=True):
        high, low = (first, second) if word_order == "big" else (second, first)
        values.append(struct.unpack(">f", struct.pack(">HH", high, low))[0])
    return values


def float32_registers(values: Sequence[float], word_order: WordOrder = "big") -> list[int]:
    """The registers that carry `values` as float32, two each (the inverse of `float32_values`)."""
    registers: list[int] = []
    for value in values:
        high, low = struct.unpack(">HH", struct.pack(">f", value))
        registers += [high, low] if word_order == "big" else [low, high]
    return registers
