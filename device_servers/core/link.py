"""A connection to one instrument, opened from a pyserial URL.

The same code drives a simulator (`socket://localhost:5024`), an Ethernet-serial adapter, a local
port (`/dev/ttyUSB0`) or an RFC 2217 server (`rfc2217://host:port`): only the URL changes.

Every exchange holds one lock and discards stale input first, so a reply always belongs to its
query even after an earlier query timed out. Every read has a deadline; nothing blocks forever.
"""

from __future__ import annotations

import threading
import time
from typing import Self

import serial

from .errors import LinkError


class Link:
    """Line- or length-framed request/reply over a pyserial URL."""

    def __init__(
        self,
        url: str,
        *,
        write_terminator: bytes = b"\n",
        read_terminator: bytes = b"\n",
        timeout: float = 1.0,
        encoding: str = "ascii",
        **serial_options: object,
    ) -> None:
        self.url = url
        self.write_terminator = write_terminator
        self.read_terminator = read_terminator
        self.timeout = timeout
        self.encoding = encoding
        self.serial_options = serial_options
        self._port: serial.SerialBase | None = None
        self.lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Link({self.url!r})"

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def open(self) -> None:
        """Open the connection (again); raises `LinkError` saying why it could not."""
        with self.lock:
            self.close()
            try:
                self._port = serial.serial_for_url(
                    self.url, timeout=self.timeout, write_timeout=self.timeout, **self.serial_options
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                raise LinkError(f"cannot open {self.url}: {_reason(exc)}") from exc

    def close(self) -> None:
        with self.lock:
            port, self._port = self._port, None
            if port is not None:
                try:
                    port.close()
                except (serial.SerialException, OSError):
                    pass

    def __enter__(self) -> Self:
        if not self.is_open:
            self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- line framing -------------------------------------------------------------------------

    def write_line(self, line: str) -> None:
        """Send one line (the write terminator is added); expects no reply."""
        with self.lock:
            self._discard_stale_input()
            self._write(line.encode(self.encoding) + self.write_terminator)

    def query(self, line: str, timeout: float | None = None) -> str:
        """Send one line and return the reply line, without its terminator."""
        with self.lock:
            self._discard_stale_input()
            self._write(line.encode(self.encoding) + self.write_terminator)
            reply = self.read_until(self.read_terminator, timeout, what=line)
        return reply[: -len(self.read_terminator)].decode(self.encoding, errors="replace")

    def read_line(self, timeout: float | None = None) -> str:
        """Read one unsolicited line (streaming instruments)."""
        with self.lock:
            reply = self.read_until(self.read_terminator, timeout, what="a line")
        return reply[: -len(self.read_terminator)].decode(self.encoding, errors="replace")

    # -- binary framing -----------------------------------------------------------------------

    def exchange(self, request: bytes, reply_length: int, timeout: float | None = None) -> bytes:
        """Send a binary frame and read exactly `reply_length` bytes back."""
        with self.lock:
            self._discard_stale_input()
            self._write(request)
            return self.read_exact(reply_length, timeout, what=request.hex(" "))

    def read_exact(self, length: int, timeout: float | None = None, what: str = "") -> bytes:
        port = self._require_open()
        data = bytearray()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while len(data) < length:
            port.timeout = max(deadline - time.monotonic(), 0.0)
            chunk = self._read(port.read, length - len(data))
            if not chunk:
                self._fail(f"{len(data)} of {length} bytes in reply to {what or 'request'}")
            data += chunk
        return bytes(data)

    def read_until(self, terminator: bytes, timeout: float | None = None, what: str = "") -> bytes:
        port = self._require_open()
        port.timeout = self.timeout if timeout is None else timeout
        data = self._read(port.read_until, terminator)
        if not data.endswith(terminator):
            received = f", got {data!r} so far" if data else ""
            self._fail(f"no reply to {what!r} within {port.timeout:g} s{received}")
        return data

    # -- internals ----------------------------------------------------------------------------

    def _require_open(self) -> serial.SerialBase:
        if self._port is None:
            raise LinkError(f"{self.url} is not connected")
        return self._port

    def _write(self, data: bytes) -> None:
        port = self._require_open()
        try:
            port.write(data)
            port.flush()
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise LinkError(f"write to {self.url} failed: {_reason(exc)}") from exc

    def _read(self, method, *args):
        try:
            return method(*args)
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise LinkError(f"read from {self.url} failed: {_reason(exc)}") from exc

    def _discard_stale_input(self) -> None:
        port = self._require_open()
        try:
            port.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise LinkError(f"{self.url} dropped: {_reason(exc)}") from exc

    def _fail(self, message: str) -> None:
        """A silent or truncated reply leaves the framing unknown: drop the line, report it."""
        self.close()
        raise LinkError(f"{self.url}: {message}")


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
