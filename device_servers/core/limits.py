"""An allowed numeric range, declared once: the driver checks values against it before anything
is sent, and the device shows it as the attribute's min/max in Jive and Taurus."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import RejectedValue


@dataclass(frozen=True)
class Limits:
    low: float
    high: float
    unit: str = ""

    def check(self, what: str, value: float) -> float:
        """`value` as a float, or `RejectedValue` saying what is allowed."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise RejectedValue(f"{what} must be a number {self}, not {value!r}") from None
        if not (math.isfinite(number) and self.low <= number <= self.high):
            raise RejectedValue(f"{what} {value!r} is out of range: allowed {self}")
        return number

    def __str__(self) -> str:
        return f"{self.low:g} to {self.high:g}{' ' + self.unit if self.unit else ''}"
