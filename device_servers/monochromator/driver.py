"""Driver of a Newport Cornerstone 130B/260B monochromator over RS-232 (or a serial server).

Pure Python over a `Link` (Lines ending in LF, statements sent with CR LF):

    mono = Cornerstone(link_for_url("/dev/ttyUSB0", framing=Lines(b"\\n"), write_terminator=b"\\r\\n"))
    mono.connect()
    mono.go_to(632.8)           # GOWAVE 632.8, ERROR?, *OPC: returns once the drive set off
    mono.read_status()          # Status(wavelength=512.4, ..., busy=True) on the way

Every statement's echo is read and must be the statement (anything else is garbage on the line);
every command is followed by `ERROR?`, so a refusal is an `InstrumentError` in the manual's words.
A motion's end is learnt as the manual advises: `*OPC` after it, then `*ESR?` at each status
read until bit 0 says every pending operation has ended (`busy`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..core.errors import GarbledReply, InstrumentError, shown
from ..core.link import Link
from .protocol import DRIVE_RANGE, FILTERS, OPERATION_COMPLETE, error_words, parse_grating

T = TypeVar("T")


@dataclass(frozen=True)
class Status:
    wavelength: float  # nm, where the drive is now
    grating: int
    lines: int  # per mm, of the grating in use
    label: str
    filter: int
    shutter_open: bool
    #: A motion (wavelength, grating, filter) has not ended yet.
    busy: bool


class Cornerstone:
    """One Cornerstone monochromator: statements with their echo, motions followed to their end."""

    model = "Cornerstone"

    def __init__(self, link: Link) -> None:
        self.link = link
        self.identity = ""
        #: Whether a `*OPC` awaits its bit in `*ESR?` (a motion may still run).
        self.busy = False

    def connect(self) -> None:
        """Open the link and configure (scripts; a device's line is opened by the device)."""
        self.link.open()
        self.configure()

    def close(self) -> None:
        self.link.close()

    def configure(self) -> None:
        """Wavelengths in nm; learn the identity; find out when whatever moves now ends."""
        self.identity = self.query("INFO?")
        self.command("UNITS NM")
        self._await_end()

    # -- operations -----------------------------------------------------------------------------

    def read_status(self) -> Status:
        with self.link.lock:
            if self.busy:
                self.busy = not int(self._number("*ESR?")) & OPERATION_COMPLETE
            wavelength = self._number("WAVE?")
            number, lines, label = self._parsed("GRAT?", parse_grating)
            filter_position = int(self._number("FILTER?"))
            shutter = self.query("SHUTTER?")
            if shutter not in ("O", "C"):
                raise GarbledReply(f"SHUTTER? was answered {shown(shutter)}, not O or C")
            return Status(wavelength, number, lines, label, filter_position, shutter == "O", self.busy)

    def go_to(self, nm: float) -> None:
        """Start the drive towards `nm`; refused (error 3) beyond the grating's span."""
        self._start(f"GOWAVE {DRIVE_RANGE.check('wavelength', nm):.3f}")

    def change_grating(self, number: int) -> None:
        self._start(f"GRAT {int(number)}")

    def change_filter(self, number: int) -> None:
        self._start(f"FILTER {int(FILTERS.check('filter', number))}")

    def set_shutter(self, open_: bool) -> bool:
        """Open or close the shutter; the state read back."""
        with self.link.lock:
            self.command(f"SHUTTER {'O' if open_ else 'C'}")
            return self.query("SHUTTER?") == "O"

    def abort(self) -> None:
        """Stop the wavelength drive (and the filter wheel) where it is."""
        self.command("ABORT")

    # -- statements -----------------------------------------------------------------------------

    def command(self, statement: str) -> None:
        """Send a command, read its echo, then `ERROR?`: InstrumentError if it was refused."""
        with self.link.lock:
            self._echoed(statement)
            code = int(self._number("ERROR?"))
        if code:
            raise InstrumentError(f"the {self.model} refused {statement!r}: {error_words(code)}")

    def query(self, statement: str) -> str:
        """The answer to a query (after its echo)."""
        with self.link.lock:
            self._echoed(statement)
            return self._text(self.link.read_frame())

    # -- internals ------------------------------------------------------------------------------

    def _start(self, statement: str) -> None:
        with self.link.lock:
            self._number("*ESR?")  # an old completion must not end this motion
            self.command(statement)
            self._await_end()

    def _await_end(self) -> None:
        self._echoed("*OPC")
        self.busy = True

    def _echoed(self, statement: str) -> None:
        echo = self._text(self.link.transaction(statement.encode("ascii") + self.link.write_terminator))
        if echo != statement:
            raise GarbledReply(f"the echo of {statement!r} came back as {shown(echo)}")

    def _number(self, statement: str) -> float:
        return self._parsed(statement, float)

    def _parsed(self, statement: str, parse: Callable[[str], T]) -> T:
        answer = self.query(statement)
        try:
            return parse(answer)
        except ValueError:
            raise GarbledReply(f"{statement} was answered {shown(answer)}") from None

    def _text(self, payload: bytes) -> str:
        try:
            return payload.decode("ascii")
        except UnicodeDecodeError:
            raise GarbledReply(f"the {self.model} sent no text: {shown(payload)}") from None
