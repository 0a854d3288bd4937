"""How text instruments spell things: the numbers, flags and words of an answer, and the short
and long forms of a command header as a manual writes them (`[SENSe[1]:]CURRent[:DC]:RANGe?`).

Pure text, no link and no Tango: drivers (through `core.scpi`), protocol modules and simulators
read and write the same spellings from here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable
from typing import Any

from .errors import GarbledReply, shown

# -- parsers: the text of one answer -> a value, or ValueError ---------------------------------


def number(text: str) -> float:
    """A finite number: `12.000`, `+1.2E-09`."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def integer(text: str) -> int:
    return int(text)


def flag(text: str) -> bool:
    """`1` or `0`."""
    if text.strip() not in ("0", "1"):
        raise ValueError("expected 0 or 1")
    return text.strip() == "1"


def on_off(text: str) -> bool:
    """`ON` or `OFF`, padded or not."""
    return {"ON": True, "OFF": False}[text.strip().upper()]


def word(choices: Collection[str]) -> Callable[[str], str]:
    """One of `choices`, whatever its case and padding (`MAN  ` -> 'MAN')."""

    def parse(text: str) -> str:
        value = text.strip().upper()
        if value not in choices:
            raise ValueError(f"not one of {', '.join(choices)}")
        return value

    return parse


def scpi_error(text: str) -> tuple[int, str]:
    """An entry of the SCPI error queue: `-113,"Undefined header"` -> (-113, 'Undefined header')."""
    code, comma, message = text.partition(",")
    if not comma:
        raise ValueError("expected <code>,\"<message>\"")
    return int(code), message.strip().strip('"')


def parsed(parse: Callable[[str], Any], answer: str, what: str) -> Any:
    """`parse(answer)`, or a GarbledReply saying what could not be read from what."""
    try:
        return parse(answer)
    except (ValueError, KeyError, IndexError) as exc:
        raise GarbledReply(f"cannot read the {what} from {shown(answer)}: {exc}") from None


# -- the manual's headers ---------------------------------------------------------------------


def header_pattern(spec: str, *, any_length: bool = False) -> re.Pattern[str]:
    """A header as a manual writes it (`[SENSe[1]:]CURRent[:DC]:RANGe?`: upper case the short form,
    brackets what may be left out) as a pattern taking the short or the long form of each
    keyword, in any case, with or without a leading `:`; `any_length` takes the short form
    followed by any letters instead (`TEMPer` for `TEMPerature`, `SETPOINT` for `SETPt`, as the
    Cryo-Con reads keywords)."""

    def keyword(match: re.Match[str]) -> str:
        short, rest = re.escape(match[1]), match[2].upper()
        if any_length:
            return f"{short}[A-Z]*"
        return f"{short}(?:{re.escape(rest)})?" if rest else short

    body = spec.removesuffix("?").replace("[", "(?:").replace("]", ")?")
    pattern = re.sub(r"([A-Z*]+)([a-z]*)", keyword, body)
    return re.compile(":?" + pattern + ("\\?" if spec.endswith("?") else ""), re.IGNORECASE)


class Headers:
    """The headers of a manual's command table: which one a header spells."""

    def __init__(self, specs: Iterable[str], *, any_length: bool = False) -> None:
        self.patterns = {spec: header_pattern(spec, any_length=any_length) for spec in specs}

    def find(self, header: str) -> str | None:
        """The spec `header` spells, or None."""
        return next((spec for spec, pattern in self.patterns.items() if pattern.fullmatch(header.strip())), None)
