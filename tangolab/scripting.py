"""Helpers for lab scripts: wait until something holds, with a bound, and say what did not happen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ConditionTimeout(TimeoutError):
    """The condition did not hold in time; the message says which and what was seen last."""


def wait_until(
    condition: Callable[[], T], timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> T:
    """Call `condition` until it returns something true, and return that; errors count as false."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = condition()
            if result:
                return result
            last = result
        except Exception as exc:  # noqa: BLE001 - a device still starting raises; keep waiting
            last = exc
        if time.monotonic() > deadline:
            raise ConditionTimeout(f"{what or condition!r} did not hold within {timeout:g} s (last: {last!r})")
        time.sleep(interval)
