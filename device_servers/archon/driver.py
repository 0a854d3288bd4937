"""The Archon's operations over a link (no Tango, no threads of its own).

Every request carries the next message reference and its reply must carry it back; a refusal
(`?id`) is an `InstrumentError` whose words come from the controller's log (read at once with
FETCHLOG). A frame is fetched in chunks of blocks, each chunk one locked exchange, so a status
poll or an abort waits at most one chunk behind a transfer, and the transfer can be given up
between chunks.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core.errors import GarbledReply, InstrumentError, LinkError, shown
from ..core.link import Link
from .protocol import (
    BLOCK_BYTES,
    BLOCK_FRAME_BYTES,
    BUFFER_BASE,
    POWER_STATES,
    RAILS,
    FetchReplies,
    blocks_for,
    fastloadparam,
    fetch,
    keys,
    rconfig,
    request,
)

#: Blocks fetched in one locked exchange (1 MB: ~10 ms on a gigabit LAN, what a poll or an Abort may wait).
CHUNK_BLOCKS = 1024
#: Configuration lines read at most (the controller's own limit is far above a working one).
MAX_CONFIG_LINES = 4096
#: Log lines read at most after a refusal, looking for its reason.
MAX_LOG_LINES = 16


@dataclass(frozen=True)
class Status:
    power: str
    power_good: bool
    overheat: bool
    backplane_temperature: float
    ccd_temperature: float | None
    rails: dict[str, float]
    log_lines: int


@dataclass(frozen=True)
class Buffer:
    complete: bool
    frame: int
    width: int
    height: int
    lines: int


@dataclass(frozen=True)
class Frame:
    read_buffer: int
    write_buffer: int
    buffers: dict[int, Buffer]


@dataclass(frozen=True)
class Timing:
    """What the configuration says an exposure will take and give."""

    width: int
    height: int
    overscan: int
    pixel_ns: int

    @property
    def readout_s(self) -> float:
        return self.width * self.height * self.pixel_ns * 1e-9


class FetchCut(LinkError):
    """A frame transfer ended before its last block."""


class Archon:
    def __init__(self, link: Link) -> None:
        self.link = link
        self._references = itertools.cycle(range(256))

    def ask(self, command: str) -> str:
        """Send one command and return its answer's text (after `<id`)."""
        with self.link.lock:
            reference = next(self._references)
            payload = self.link.transaction(request(reference, command))
            text = payload.decode("ascii", errors="replace")
            if text == f"?{reference:02X}":
                raise InstrumentError(f"the Archon refused {command}: {self._reason()}")
            if not text.startswith(f"<{reference:02X}"):
                raise self.link.lost(GarbledReply(f"{self.link.url}: {shown(payload)} is no reply to {command}"))
            return text[3:]

    def _reason(self) -> str:
        lines = []
        for _ in range(MAX_LOG_LINES):
            line = self.fetch_log()
            if line is None:
                break
            lines.append(line)
        return lines[-1] if lines else "its log says nothing"

    # -- readings ------------------------------------------------------------------------------

    def status(self) -> Status:
        values = keys(self.ask("STATUS"))
        try:
            heater = next((float(v) for k, v in values.items() if k.endswith("/TEMPA")), None)
            return Status(
                power=POWER_STATES.get(int(values["POWER"]), values["POWER"]),
                power_good=values["POWERGOOD"] == "1",
                overheat=values["OVERHEAT"] == "1",
                backplane_temperature=float(values["BACKPLANE_TEMP"]),
                ccd_temperature=heater,
                rails={rail: float(values.get(f"{rail}_V", "nan")) for rail in RAILS},
                log_lines=int(values["LOG"]),
            )
        except (KeyError, ValueError) as exc:
            raise self.link.lost(GarbledReply(f"{self.link.url}: a STATUS without {exc}")) from None

    def frame(self) -> Frame:
        values = keys(self.ask("FRAME"))
        try:
            buffers = {
                n: Buffer(complete=values[f"BUF{n}COMPLETE"] == "1", frame=int(values[f"BUF{n}FRAME"]),
                          width=int(values[f"BUF{n}WIDTH"]), height=int(values[f"BUF{n}HEIGHT"]),
                          lines=int(values[f"BUF{n}LINES"]))
                for n in BUFFER_BASE
            }
            return Frame(int(values["RBUF"]), int(values["WBUF"]), buffers)
        except (KeyError, ValueError) as exc:
            raise self.link.lost(GarbledReply(f"{self.link.url}: a FRAME without {exc}")) from None

    def fetch_log(self) -> str | None:
        """The oldest line of the controller's log, taken off it; None when it is empty."""
        line = self.ask("FETCHLOG")
        return None if line == "(null)" else line

    def configuration(self) -> dict[str, str]:
        config = {}
        for line in range(MAX_CONFIG_LINES):
            text = self.ask(rconfig(line))
            if not text:
                break
            key, _, value = text.partition("=")
            config[key] = value
        return config

    def timing(self) -> Timing:
        config = self.configuration()
        parameters = dict(
            value.strip('"').partition("=")[::2] for key, value in config.items() if key.startswith("PARAMETER")
            and key[9:].isdigit()
        )
        try:
            return Timing(int(config["PIXELCOUNT"]), int(config["LINECOUNT"]), int(config.get("OVERSCAN", 0)),
                          int(parameters["PixelNS"]))
        except (KeyError, ValueError) as exc:
            raise InstrumentError(f"the Archon's configuration has no usable {exc}") from None

    # -- operations ----------------------------------------------------------------------------

    def power_on(self) -> None:
        self.ask("POWERON")

    def power_off(self) -> None:
        self.ask("POWEROFF")

    def start_exposure(self, seconds: float) -> None:
        """Expose for `seconds` (to the millisecond), then read out into the write buffer."""
        with self.link.lock:
            self.ask(fastloadparam("IntMS", round(seconds * 1000)))
            self.ask(fastloadparam("Exposures", 1))

    def abort(self) -> None:
        self.ask(fastloadparam("Abort", 1))

    def fetch_image(
        self, buffer: int, width: int, height: int, keep_going: Callable[[], bool] = lambda: True,
        progress: Callable[[int, int], None] = lambda done, total: None,
    ) -> np.ndarray | None:
        """The frame in `buffer` as uint16 (height x width), or None when `keep_going` said no
        between two chunks. `FetchCut` when the controller stops sending."""
        total = blocks_for(width, height)
        data = bytearray()
        while (done := len(data) // BLOCK_BYTES) < total:
            if not keep_going():
                return None
            count = min(CHUNK_BLOCKS, total - done)
            try:
                data += self._fetch_chunk(BUFFER_BASE[buffer] + done * BLOCK_BYTES, count)
            except LinkError as exc:
                raise FetchCut(f"frame transfer cut short after {done} of {total} blocks: {exc}") from exc
            progress(len(data) // BLOCK_BYTES, total)
        return np.frombuffer(bytes(data[: width * height * 2]), "<u2").reshape(height, width)

    def _fetch_chunk(self, address: int, count: int) -> bytes:
        with self.link.lock:
            reference = next(self._references)
            data = self.link.transaction(request(reference, fetch(address, count)), framing=FetchReplies(count))
            if data == b"?%02X\n" % reference:
                raise InstrumentError(f"the Archon refused to send {count} blocks at {address:08X}: {self._reason()}")
        blocks = np.frombuffer(data, np.uint8).reshape(count, BLOCK_FRAME_BYTES)
        head = b"<%02X:" % reference
        if not (blocks[:, :4] == np.frombuffer(head, np.uint8)).all():
            raise self.link.lost(GarbledReply(f"{self.link.url}: a FETCH block without {head!r}"))
        return blocks[:, 4:].tobytes()
