"""Request then acknowledge: the instrument first says whether it understood a request, and only
on a second, one-byte enquiry sends the answer (Pfeiffer's mnemonics protocol: TPG 26x, 36x, 300).

    host: PR1 CR LF            gauge: ACK CR LF           (NAK CR LF: not understood)
    host: ENQ                  gauge: 0,1.0000E-03 CR LF

Both steps run under the link's one lock, so no other request slips in between, and each read
has the link's deadline: a silent instrument is a `LinkError`, a NAK a `NotAcknowledged` (the
instrument's refusal, an `InstrumentError`) that names the request, anything else where the
acknowledgement belongs a `GarbledReply`.

    PFEIFFER.query(link, b"PR1\\r\\n")    # -> b"0,1.0000E-03"
    PFEIFFER.command(link, b"UNI,0\\r\\n")  # acknowledged, nothing to enquire
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import GarbledReply, InstrumentError, shown
from .framing import Framing
from .link import Link


class NotAcknowledged(InstrumentError):
    """The instrument answered NAK: it did not understand the request or refused its value."""

    def __init__(self, request: bytes) -> None:
        super().__init__(f"{shown(request.rstrip())} was not acknowledged (NAK)")
        self.request = request


@dataclass(frozen=True)
class Acknowledged:
    """The bytes of one request-then-acknowledge protocol (payloads, without their line end)."""

    ack: bytes = b"\x06"
    nak: bytes = b"\x15"
    enquiry: bytes = b"\x05"

    def command(
        self, link: Link, request: bytes, *, framing: Framing | None = None, timeout: float | None = None
    ) -> None:
        """Send `request` (with its terminator) and require the acknowledgement."""
        with link.lock:
            self._acknowledge(link, request, framing, timeout)

    def query(
        self, link: Link, request: bytes, *, framing: Framing | None = None, timeout: float | None = None
    ) -> bytes:
        """Send `request`, require the acknowledgement, enquire, and return the answer's payload."""
        with link.lock:
            self._acknowledge(link, request, framing, timeout)
            return link.transaction(self.enquiry, framing=framing, timeout=timeout)

    def _acknowledge(self, link: Link, request: bytes, framing: Framing | None, timeout: float | None) -> None:
        answer = link.transaction(request, framing=framing, timeout=timeout)
        if answer == self.nak:
            raise NotAcknowledged(request)
        if answer != self.ack:
            raise GarbledReply(f"expected ACK or NAK to {shown(request.rstrip())}, got {shown(answer)}")


#: Pfeiffer Vacuum's mnemonics protocol (ASCII ACK 0x06, NAK 0x15, ENQ 0x05).
PFEIFFER = Acknowledged()
