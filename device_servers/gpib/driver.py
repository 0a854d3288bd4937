"""Driver of the Prologix GPIB-ETHERNET controller: one host talking to the instruments on its bus.

Pure Python over a `Link` (`socket://prologix:1234`): usable from a script as well as from the
`GpibBus` device, which is the controller's only client (it takes one TCP client at a time).

    bus = Prologix(SerialLink("socket://192.168.1.20:1234"))
    bus.link.open(); bus.configure()
    bus.query(14, b"READ?\\n", timeout=1.0)    # b"+1.234E-09A,+1.0E+02,+0.0E+00\\n"

On connect the controller is put in controller mode with read-after-write off (`++auto 0`): a
query is the message, then `++read eoi`. `++addr` goes out only when the address changes and
`++read_tmo_ms` only when the time-out does. Instrument data is sent exactly as the caller gives
it: CR, LF, ESC and `+` are escaped, so the instrument receives the caller's own terminator,
with EOI on the last byte (`++eos 3`, `++eoi 1`), and no caller can slip a `++` command in.

The controller has no error reply: when an instrument stays silent, its `++read eoi` ends after
`read_tmo_ms` with nothing sent to the host. So every read is followed by `++ver`, whose known
reply marks where the instrument's answer ends: the bytes before it are the reply (possibly
none), and a late byte can never be taken for the next query's reply. A controller that does not
answer `++ver` in time is a lost link.
"""

from __future__ import annotations

from ..core.errors import InstrumentError, LinkError, RejectedValue, shown
from ..core.link import Link
from .prologix_protocol import ADDRESSES, LINES, READ_TIMEOUT_MS, TCP_PORT, VERSION_PREFIX, escape

__all__ = ["ADDRESSES", "LINES", "TCP_PORT", "NoReply", "Prologix", "check_address", "check_timeout", "escape"]

#: Time beyond the read time-out for the controller to end the read and answer `++ver`.
CONTROLLER_MARGIN_S = 0.5
#: Sent on every connect: controller mode, no read-after-write, the caller's bytes as they are
#: (no terminator added, EOI on the last byte), nothing added to replies; no EEPROM writes for
#: every address change (`++savecfg 0` first, as the manual advises for frequent changes).
CONFIGURATION = (b"++savecfg 0", b"++mode 1", b"++auto 0", b"++eoi 1", b"++eos 3", b"++eot_enable 0")


class NoReply(InstrumentError):
    """The instrument at an address did not answer within the time-out; the bus itself works."""

    def __init__(self, address: int, timeout: float) -> None:
        super().__init__(f"GPIB address {address} did not answer within {timeout:g} s")
        self.address = address


def check_address(address: int) -> int:
    if address not in ADDRESSES:
        raise RejectedValue(f"GPIB address {address} is not a primary address 0 to 30")
    return address


def check_timeout(timeout: float) -> int:
    """The time-out in whole milliseconds, as `++read_tmo_ms` takes it."""
    milliseconds = round(timeout * 1000)
    low, high = READ_TIMEOUT_MS
    if not low <= milliseconds <= high:
        raise RejectedValue(f"time-out {timeout:g} s is outside the controller's {low} to {high} ms")
    return milliseconds


class Prologix:
    """A Prologix GPIB-ETHERNET controller in controller mode."""

    def __init__(self, link: Link) -> None:
        self.link = link
        link.listen(Prologix, self._stray)
        self.version = ""
        #: Bytes that arrived when no read was waiting (should stay empty: counted to show it).
        self.stray_bytes = 0
        self._address: int | None = None
        self._read_timeout_ms: int | None = None

    def configure(self) -> str:
        """Bring a fresh connection into the configuration the driver relies on; returns `++ver`."""
        with self.link.lock:
            self._address = self._read_timeout_ms = None
            self._send(b"".join(command + b"\n" for command in CONFIGURATION))
            self.version = self.read_version()
            return self.version

    def read_version(self) -> str:
        """`++ver`: a cheap round trip that shows the controller answers."""
        reply = self.link.transaction(b"++ver\n", framing=LINES)
        if not reply.startswith(VERSION_PREFIX):
            raise InstrumentError(f"{self.link.url} is not a Prologix controller: ++ver gave {shown(reply)}")
        return reply.decode("ascii", errors="replace").strip()

    def write(self, address: int, message: bytes) -> None:
        """Send `message` (with its terminator, if the instrument wants one) to `address`."""
        with self.link.lock:
            self._send(self._select(address) + escape(message) + b"\n")

    def query(self, address: int, message: bytes, timeout: float) -> bytes:
        """Send `message` to `address` and return the instrument's reply, as sent."""
        return self._exchange(address, escape(message) + b"\n", timeout)

    def read(self, address: int, timeout: float) -> bytes:
        """The instrument's next reply, up to its EOI; `NoReply` when it stays silent `timeout` s."""
        return self._exchange(address, b"", timeout)

    def clear(self, address: int) -> None:
        """Selected Device Clear (`++clr`): the instrument drops its pending reply and input."""
        with self.link.lock:
            self._send(self._select(address) + b"++clr\n")

    # -- internals ------------------------------------------------------------------------------

    def _exchange(self, address: int, data: bytes, timeout: float) -> bytes:
        """`data` for `address`, then `++read eoi` and the `++ver` marker, in one write (one TCP
        segment: no wait on Nagle's algorithm between the parts); the reply is what precedes the
        marker."""
        milliseconds = check_timeout(timeout)
        with self.link.lock:
            request = self._select(address) + data
            if milliseconds != self._read_timeout_ms:
                request += b"++read_tmo_ms %d\n" % milliseconds
            request += b"++read eoi\n++ver\n"
            try:
                line = self.link.transaction(request, framing=LINES, timeout=timeout + CONTROLLER_MARGIN_S)
                self._read_timeout_ms = milliseconds
                reply = b""
                while not self._is_version(line):
                    reply += line
                    line = self.link.read_frame(timeout=CONTROLLER_MARGIN_S, framing=LINES)
            except LinkError:
                self._address = self._read_timeout_ms = None
                raise
            reply += line[: line.index(VERSION_PREFIX)]  # an instrument reply without LF runs into it
        if not reply:
            raise NoReply(address, timeout)
        return reply

    def _select(self, address: int) -> bytes:
        """`++addr` when the address changes, else nothing."""
        check_address(address)
        if address == self._address:
            return b""
        self._address = address
        return b"++addr %d\n" % address

    def _send(self, data: bytes) -> None:
        try:
            self.link.transaction(data, reply=False, framing=LINES)
        except LinkError:
            self._address = self._read_timeout_ms = None
            raise

    def _is_version(self, line: bytes) -> bool:
        return VERSION_PREFIX in line and line.endswith(b"\r\n") and (
            not self.version or line.endswith(self.version.encode("ascii") + b"\r\n")
        )

    def _stray(self, payload: bytes) -> None:
        self.stray_bytes += len(payload)
