"""The telescope's operations over a link (no Tango, no threads of its own): `ERR` answers are
the telescope's refusals (`InstrumentError`), anything but OK or ERR is garbage."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import GarbledReply, InstrumentError, shown
from ..core.link import Link
from .protocol import FOCUS_RANGE, OFFSET_RANGE, number_text


@dataclass(frozen=True)
class Position:
    ra: float
    dec: float
    in_position: bool
    focus: float


@dataclass(frozen=True)
class Weather:
    humidity: float
    dew_point: float
    air: float


class TelescopeLink:
    def __init__(self, link: Link) -> None:
        self.link = link

    def ask(self, request: str) -> list[str]:
        """The words of the answer after OK."""
        text = self.link.query(request)
        if text.startswith("ERR"):
            raise InstrumentError(f"the telescope refused {request}: {text[3:].strip()}")
        if text != "OK" and not text.startswith("OK "):
            raise self.link.lost(GarbledReply(f"{self.link.url}: {shown(text)} is no answer to {request}"))
        return text[3:].split()

    def _numbers(self, request: str, count: int) -> list[float]:
        words = self.ask(request)
        try:
            if len(words) != count:
                raise ValueError(f"{count} numbers expected")
            return [float(word) for word in words]
        except ValueError:
            raise self.link.lost(GarbledReply(f"{self.link.url}: {shown(' '.join(words))} answers {request}")) from None

    def position(self) -> Position:
        with self.link.lock:
            ra, dec = self._numbers("OFFSET?", 2)
            arrived = self.ask("INPOS?") == ["1"]
            (focus,) = self._numbers("FOCUS?", 1)
        return Position(ra, dec, arrived, focus)

    def weather(self) -> Weather:
        return Weather(*self._numbers("WEATHER?", 3))

    def offset(self, ra: float, dec: float) -> None:
        ra, dec = OFFSET_RANGE.check("the RA offset", ra), OFFSET_RANGE.check("the Dec offset", dec)
        self.ask(f"OFFSET {number_text(ra)} {number_text(dec)}")

    def set_focus(self, mm: float) -> None:
        self.ask(f"FOCUS {number_text(FOCUS_RANGE.check('the focus', mm))}")
