"""The relay's variable-name rule and what each kind of variable accepts; plain Python, no Tango.

The name says what a variable holds, as in the EPICS relay it replaces: `<name>_<t><count>`,
`t` one of `f` (float64), `i` (int64), `c` (a string of at most count characters) and `b`
(boolean). Count 1 is a scalar, more a spectrum of exactly count values. An upper-case letter
makes a ring buffer of count entries (count 1 refused): each write appends a value or an array
and the oldest entries drop out; it starts empty. `C` is a ring of characters: a string of the
last count characters written. Numbers are finite: Tango refuses NaN and infinities as write
values, so a variable never holds one.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from device_servers.core.errors import RejectedValue

NAME_RULE = re.compile(r"^(?P<base>[A-Za-z][A-Za-z0-9_]*)_(?P<letter>[fibcFIBC])(?P<count>\d+)$")
MAX_NAME_LENGTH = 100
MAX_COUNT = 100_000
INT64 = (-(2**63), 2**63 - 1)
KINDS = {"f": "float64", "i": "int64", "c": "string", "b": "boolean"}
EXAMPLES = {"f": "3.5", "i": "42", "c": '"text"', "b": "true"}
RULE = (
    "<name>_<t><count>: name letters, digits and _ (starting with a letter), t one of f (float64), "
    "i (int64), c (string of at most count characters), b (boolean); count 1 a scalar, more an array of "
    "exactly count values; an upper-case t makes a ring buffer of count entries (count at least 2); "
    "e.g. temperature_f1, positions_i3, comment_c80, history_F100"
)

Value = float | int | bool | str | list[float] | list[int] | list[bool]


@dataclass(frozen=True)
class VariableSpec:
    """What one variable holds, read from its name."""

    name: str
    letter: str  # f, i, c or b
    count: int
    ring: bool

    @property
    def kind(self) -> str:
        return KINDS[self.letter]

    @property
    def is_array(self) -> bool:
        """Held as a Tango spectrum (strings and character rings are one string)."""
        return self.letter != "c" and self.count > 1

    @property
    def key(self) -> str:
        """Tango attribute names ignore case: two names with the same key are one attribute."""
        return self.name.lower()

    def describe(self) -> str:
        if self.letter == "c":
            held = f"the last {self.count} characters written" if self.ring else f"at most {self.count} characters"
            return f"{self.name} is a string of {held}"
        if self.ring:
            return f"{self.name} is a ring buffer of the last {self.count} {self.kind} values"
        if self.count == 1:
            return f"{self.name} is one {self.kind}"
        return f"{self.name} is an array of exactly {self.count} {self.kind} values"

    def empty(self) -> Value:
        """A ring buffer before its first write."""
        return "" if self.letter == "c" else []

    def from_json(self, text: str) -> Value:
        """The value a `Put` gives, as JSON text, checked; raises RejectedValue saying what is allowed."""
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise RejectedValue(
                f"{text!r} is not JSON ({exc}): {self.describe()}; give e.g. {self.example()}"
            ) from exc
        return self.checked(value)

    def example(self) -> str:
        one = EXAMPLES[self.letter]
        if self.letter == "c":
            return one
        if self.ring:
            return f"{one} or [{one}, {one}]"
        return one if self.count == 1 else "[" + ", ".join([one] * min(self.count, 3)) + (", ...]" if self.count > 3 else "]")

    def checked(self, value: Any) -> Value:
        """A decoded value (plain Python) checked against the kind and count; the value to store or append."""
        if self.letter == "c":
            if not isinstance(value, str):
                raise RejectedValue(f"{self.describe()}; got {_shown(value)}, give a JSON string, e.g. {self.example()}")
            return self.checked_text(value)
        if self.count == 1 or (self.ring and not isinstance(value, list)):
            return self._element(value)
        if not isinstance(value, list):
            raise RejectedValue(f"{self.describe()}; got {_shown(value)}, give a JSON array, e.g. {self.example()}")
        self.check_length(len(value))
        return [self._element(element) for element in value]

    def checked_text(self, text: str) -> str:
        if len(text) > self.count:
            raise RejectedValue(
                f"{self.describe()}; got {len(text)} characters"
                + (" in one write" if self.ring else "")
            )
        return text

    def check_length(self, length: int) -> None:
        """An array written to an array variable: exactly count values, or 1 to count for a ring buffer."""
        if self.ring and not 1 <= length <= self.count:
            raise RejectedValue(f"{self.describe()}; a write appends 1 to {self.count} values, got {length}")
        if not self.ring and length != self.count:
            raise RejectedValue(f"{self.describe()}; got {length} values")

    def _element(self, value: Any) -> float | int | bool:
        if self.letter == "b":
            if isinstance(value, bool):
                return value
            raise RejectedValue(f"{self.describe()}; got {_shown(value)}, give true or false")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RejectedValue(f"{self.describe()}; got {_shown(value)}, give a number, e.g. {EXAMPLES[self.letter]}")
        if self.letter == "f":
            try:
                number = float(value)
            except OverflowError:  # an integer beyond float64
                number = math.inf
            if not math.isfinite(number):  # Tango refuses them as write values: refused here before anything changes
                raise RejectedValue(f"{self.describe()}; got {_shown(value)}, give a finite number (no NaN or infinity)")
            return number
        if not isinstance(value, int):
            raise RejectedValue(f"{self.describe()}; got {_shown(value)}, give a whole number, e.g. 42")
        if not INT64[0] <= value <= INT64[1]:
            raise RejectedValue(f"{self.describe()}; {value} is outside int64 [{INT64[0]}, {INT64[1]}]")
        return value

    def written(self, current: Value, value: Value) -> Value:
        """The variable's new value after writing a checked `value`: replaced, or appended to a ring."""
        if not self.ring:
            return value
        if self.letter == "c":
            return (current + value)[-self.count :]
        appended = value if isinstance(value, list) else [value]
        return (list(current) + appended)[-self.count :]

    def in_range(self, value: Value, low: float | None, high: float | None) -> None:
        """Numbers of a write against the variable's configured min/max (Tango's own check does not
        cover a Put); raises RejectedValue naming the range."""
        if self.letter not in "fi" or (low is None and high is None):
            return
        for number in value if isinstance(value, list) else [value]:
            if (low is not None and number < low) or (high is not None and number > high) or math.isnan(number):
                allowed = f"[{-math.inf if low is None else low:g}, {math.inf if high is None else high:g}]"
                raise RejectedValue(f"{number!r} is outside the range of {self.name}: allowed {allowed}")


def parse_name(name: str) -> VariableSpec:
    """The spec a variable name stands for; raises RejectedValue with the rule when it breaks it."""
    if not isinstance(name, str) or not name:
        raise RejectedValue(f"a variable needs a name: {RULE}")
    if len(name) > MAX_NAME_LENGTH:
        raise RejectedValue(f"{name[:40]!r}... is {len(name)} characters long, at most {MAX_NAME_LENGTH} allowed")
    match = NAME_RULE.match(name)
    if match is None:
        raise RejectedValue(f"{name!r} is not a relay variable name: {RULE}")
    letter, digits = match["letter"], match["count"]
    count = int(digits)
    if count == 0:
        raise RejectedValue(f"{name!r} has a count of 0: the count is at least 1 (at least 2 for a ring buffer)")
    if digits != str(count):
        raise RejectedValue(f"{name!r}: write the count without leading zeros ({match['base']}_{letter}{count})")
    if count > MAX_COUNT:
        raise RejectedValue(f"{name!r} has a count of {count}: at most {MAX_COUNT} allowed")
    ring = letter.isupper()
    if ring and count == 1:
        raise RejectedValue(
            f"{name!r} is a ring buffer of 1 entry: a ring buffer holds at least 2 (use {match['base']}_"
            f"{letter.lower()}1 for a single value)"
        )
    return VariableSpec(name=name, letter=letter.lower(), count=count, ring=ring)


def _shown(value: Any, limit: int = 40) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
