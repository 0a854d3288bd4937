"""The NGC control server's operations over a link (no Tango, no threads of its own).

A `NOK` answer is an `InstrumentError` with the server's words; a reply that is neither OK nor
NOK is garbage (the link is lost). A frame is fetched in pieces of `FETCH_MAX` bytes, each one
locked exchange, so a status poll or an abort waits at most one piece behind a transfer, and
the transfer can be given up between pieces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ..core.errors import GarbledReply, InstrumentError, LinkError, RejectedValue, shown
from ..core.framing import FramingError, block_data
from ..core.link import Link
from .protocol import DATABASE, EXPOSURE, FETCH_MAX, READ_MODES, REPLIES, database_value, request

T = TypeVar("T")


class FetchCut(InstrumentError):
    """A frame's transfer ended before all of its bytes came."""


@dataclass(frozen=True)
class Progress:
    """How the exposure under way goes, from the online database."""

    active: bool
    exposure: str  # expStatusName: idle, integrating, reading, success, aborted
    count_down: float
    frame_count: int


@dataclass(frozen=True)
class Summary:
    """The control server's online database, as a poll reads it."""

    state: str
    clocks: bool
    sequencer: bool
    run_no: int
    progress: Progress


class Ngc:
    def __init__(self, link: Link) -> None:
        self.link = link

    def ask(self, command: str, *arguments: object) -> str:
        """Send one command; its answer after `OK`."""
        payload = self.link.transaction(request(command, *arguments), framing=REPLIES)
        text = payload.decode("ascii", errors="replace")
        if text.startswith("NOK"):
            raise InstrumentError(f"the NGC refused {command}: {text[3:].strip()}")
        if text != "OK" and not text.startswith("OK "):
            raise self.link.lost(GarbledReply(f"{self.link.url}: {shown(payload)} is no answer to {command}"))
        return text[3:]

    def read(self, attribute: str) -> str:
        """One attribute of the online database (dbRead)."""
        try:
            return database_value(self.ask("dbRead", attribute), attribute)
        except ValueError as exc:
            raise self.link.lost(GarbledReply(f"{self.link.url}: {exc}")) from None

    def progress(self, values: dict[str, str] | None = None) -> Progress:
        """The exposure's progress (from `values` read already, or read now)."""
        values = values or self._read_all(EXPOSURE)
        return self._parsed(lambda: Progress(
            active=values["system.subStateName"] == "active", exposure=values["exposure.expStatusName"],
            count_down=float(values["exposure.countDown"]), frame_count=int(values["exposure.frameCount"]),
        ))

    def summary(self) -> Summary:
        values = self._read_all(DATABASE)
        return self._parsed(lambda: Summary(
            state=values["system.stateName"], clocks=values["cldc_0.statusName"] == "enabled",
            sequencer=values["seq_0.statusName"] == "running", run_no=int(values["exposure.runNo"]),
            progress=self.progress(values),
        ))

    def _read_all(self, names: tuple[str, ...]) -> dict[str, str]:
        with self.link.lock:
            return {name: self.read(name) for name in names}

    def _parsed(self, make: Callable[[], T]) -> T:
        try:
            return make()
        except ValueError as exc:
            raise self.link.lost(GarbledReply(f"{self.link.url}: an online database value {exc}")) from None

    def status(self, parameter: str) -> str:
        return self.ask("status", parameter)

    def setup(self, values: dict[str, object]) -> None:
        """Set setup parameters at once (all or none: the server checks each first)."""
        self.ask("setup", *(word for pair in values.items() for word in pair))

    def command(self, name: str) -> None:
        """start, stop, abort, online, standby, off, reset."""
        self.ask(name)

    def clocks(self, enable: bool) -> None:
        self.ask("cldc", 0, "enable" if enable else "disable")

    def sequencer(self, start: bool) -> None:
        self.ask("seq", 0, "start" if start else "stop")

    def geometry(self) -> tuple[int, int]:
        """The frame's width and height, pixels."""
        return self.window()[1:]

    def window(self) -> tuple[str, int, int]:
        """The read-out speed, and the frame's width and height in pixels."""
        with self.link.lock:
            mode, width, height = (self.status(name) for name in ("DET.READ.CURNAME", "DET.WIN1.NX", "DET.WIN1.NY"))
        try:
            return mode, int(width), int(height)
        except ValueError as exc:
            raise self.link.lost(GarbledReply(f"{self.link.url}: a window size {exc}")) from None

    def set_read_mode(self, mode: str) -> str:
        if mode not in READ_MODES:
            raise RejectedValue(f"the read mode must be one of {', '.join(READ_MODES)}, not {mode!r}")
        self.setup({"DET.READ.CURNAME": mode})
        return self.status("DET.READ.CURNAME")

    def fetch_image(
        self, frame: int, width: int, height: int, keep_going: Callable[[], bool] = lambda: True,
        progress: Callable[[int, int], None] = lambda done, total: None,
    ) -> np.ndarray | None:
        """Frame number `frame` as uint16 (height x width), or None when `keep_going` said no
        between two pieces. `FetchCut` when the server stops sending."""
        total = width * height * 2
        data = bytearray()
        while len(data) < total:
            if not keep_going():
                return None
            length = min(FETCH_MAX, total - len(data))
            try:
                payload = self.link.transaction(request("fetch", frame, len(data), length), framing=REPLIES)
            except LinkError as exc:
                raise FetchCut(f"frame transfer cut short after {len(data)} of {total} bytes: {exc}") from exc
            if payload.startswith(b"NOK"):
                raise InstrumentError(f"the NGC refused to send frame {frame}: {payload[3:].decode(errors='replace')}")
            try:
                piece = block_data(payload)
            except FramingError as exc:
                raise FetchCut(f"frame transfer cut short after {len(data)} of {total} bytes: {exc}") from None
            if len(piece) != length:
                raise FetchCut(f"frame transfer cut short: {len(piece)} of {length} bytes at {len(data)}")
            data += piece
            progress(len(data), total)
        return np.frombuffer(bytes(data), "<u2").reshape(height, width)
