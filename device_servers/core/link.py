"""The connection to one instrument: open, close, and one locked transaction with a deadline.

`link_for_url` picks the transport from the `Url` scheme:

    socket://host:port, /dev/ttyUSB0, rfc2217://host:port   a byte stream through pyserial
    gpib://lab/gpib/1/14                                     address 14 behind a `GpibBus` device
    modbus://host:502/1                                      Modbus TCP unit 1 (register requests)

Every transaction holds the link's lock (reentrant: a driver holds it across a multi-step
exchange such as Pfeiffer's request-then-enquire), so a reply always belongs to its request.
Frames that arrive unasked (a stage reporting it stopped) are handed to `unsolicited`, not
thrown away. Every read has a deadline; a silent or cut-short reply closes the link, since the
framing is then unknown, and the device reconnects.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Self

import serial

from .errors import LinkError, shown
from .framing import Framing, FramingError, Lines

LINES = Lines(b"\n")


class Link:
    """What the poll loop and the drivers use, whatever the transport."""

    def __init__(
        self,
        url: str,
        *,
        framing: Framing = LINES,
        write_terminator: bytes = b"\n",
        timeout: float = 1.0,
        encoding: str = "ascii",
    ) -> None:
        self.url = url
        self.framing = framing
        self.write_terminator = write_terminator
        self.timeout = timeout
        self.encoding = encoding
        self.lock = threading.RLock()
        #: Called with the payload of every frame that arrives unasked (or is not the reply wanted).
        self.unsolicited: Callable[[bytes], None] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    @property
    def is_open(self) -> bool:
        raise NotImplementedError

    def open(self) -> None:
        """Open the connection (again); raises `LinkError` saying why it could not."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def transaction(
        self,
        request: bytes,
        *,
        reply: bool = True,
        framing: Framing | None = None,
        accept: Callable[[bytes], bool] | None = None,
        timeout: float | None = None,
    ) -> bytes | None:
        """Send `request` (as is: framing it is the driver's job) and return the payload of the
        reply frame, or None when `reply` is False. Frames for which `accept` is false are
        routed to `unsolicited` and the wait goes on, within the one deadline."""
        raise NotImplementedError

    def route_waiting(self) -> None:
        """Hand every complete frame that has arrived unasked to `unsolicited`, without waiting."""

    def __enter__(self) -> Self:
        if not self.is_open:
            self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- text instruments -----------------------------------------------------------------------

    def query(self, line: str, timeout: float | None = None) -> str:
        """Send one line (the write terminator is added) and return the reply line's text."""
        reply = self.transaction(self._encode(line), timeout=timeout)
        return reply.decode(self.encoding, errors="replace")

    def write_line(self, line: str) -> None:
        """Send one line that gets no reply."""
        self.transaction(self._encode(line), reply=False)

    def _encode(self, line: str) -> bytes:
        return line.encode(self.encoding) + self.write_terminator


class SerialLink(Link):
    """A byte stream opened from a pyserial URL: the same code drives a simulator
    (`socket://localhost:5024`), an Ethernet-serial adapter, a local port or an RFC 2217 server."""

    def __init__(self, url: str, *, serial_options: dict[str, Any] | None = None, **options: Any) -> None:
        super().__init__(url, **options)
        self.serial_options = serial_options or {}
        self._port: serial.SerialBase | None = None
        self._buffer = b""

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def open(self) -> None:
        with self.lock:
            self.close()
            try:
                self._port = serial.serial_for_url(
                    self.url, timeout=self.timeout, write_timeout=self.timeout, **self.serial_options
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                raise LinkError(f"cannot open {self.url}: {_reason(exc)}") from exc
            tcp = getattr(self._port, "_socket", None)  # socket:// (pyserial keeps it private)
            if tcp is not None:  # a short request right after another must not wait ~40 ms for Nagle
                tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        with self.lock:
            port, self._port = self._port, None
            self._buffer = b""
            if port is not None:
                try:
                    port.close()
                except (serial.SerialException, OSError):
                    pass

    def transaction(
        self,
        request: bytes,
        *,
        reply: bool = True,
        framing: Framing | None = None,
        accept: Callable[[bytes], bool] | None = None,
        timeout: float | None = None,
    ) -> bytes | None:
        framing = framing or self.framing
        with self.lock:
            self.route_waiting(framing)
            self._write(request)
            if not reply:
                return None
            seconds = self.timeout if timeout is None else timeout
            deadline = time.monotonic() + seconds
            while True:
                payload = framing.payload(self._read_frame(framing, deadline, f"to {shown(request)} within {seconds:g} s"))
                if accept is None or accept(payload):
                    return payload
                self._route(payload)

    def read_frame(self, timeout: float | None = None, framing: Framing | None = None) -> bytes:
        """The payload of the next frame, asked for or not (instruments that stream)."""
        framing = framing or self.framing
        with self.lock:
            seconds = self.timeout if timeout is None else timeout
            return framing.payload(self._read_frame(framing, time.monotonic() + seconds, f"within {seconds:g} s"))

    def route_waiting(self, framing: Framing | None = None) -> None:
        framing = framing or self.framing
        with self.lock:
            if not (self._buffer or self._waiting()):
                return
            self._buffer += self._read_available()
            while (parts := self._split(framing)) is not None:
                frame, self._buffer = parts
                self._route(framing.payload(frame))
            if self._buffer:  # the rest of a frame is on its way: wait for it, but not forever
                frame = self._read_frame(framing, time.monotonic() + self.timeout, "to complete an unasked frame")
                self._route(framing.payload(frame))

    # -- internals ------------------------------------------------------------------------------

    def _route(self, payload: bytes) -> None:
        if self.unsolicited is not None:
            self.unsolicited(payload)

    def _read_frame(self, framing: Framing, deadline: float, what: str) -> bytes:
        while (parts := self._split(framing)) is None:
            remaining = deadline - time.monotonic()
            chunk = self._read_some(remaining) if remaining > 0 else b""
            if not chunk:
                got = f", got {shown(self._buffer)} so far" if self._buffer else ""
                self._fail(f"no reply {what}{got}")
            self._buffer += chunk
        frame, self._buffer = parts
        return frame

    def _split(self, framing: Framing) -> tuple[bytes, bytes] | None:
        try:
            return framing.split(self._buffer)
        except FramingError:
            self.close()  # nothing after garbage can be trusted to start a frame
            raise

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

    def _read_some(self, timeout: float) -> bytes:
        """What has arrived, waiting up to `timeout` for the first byte (pyserial's socket
        `in_waiting` says only 0 or 1, so the rest is read without waiting)."""
        port = self._require_open()
        try:
            port.timeout = timeout
            data = port.read(1)
            if data:
                port.timeout = 0
                data += port.read(4096)
            return data
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise LinkError(f"read from {self.url} failed: {_reason(exc)}") from exc

    def _waiting(self) -> int:
        port = self._require_open()
        try:
            return port.in_waiting
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise LinkError(f"{self.url} dropped: {_reason(exc)}") from exc

    def _read_available(self) -> bytes:
        waiting = self._waiting()
        return self._read_some(0.0) if waiting else b""

    def _fail(self, message: str) -> None:
        """A silent or truncated reply leaves the framing unknown: drop the line, report it."""
        self.close()
        raise LinkError(f"{self.url}: {message}")


def link_for_url(url: str, **options: Any) -> Link:
    """The transport the URL's scheme names, with the device's link settings."""
    if url.startswith(("gpib://", "modbus://")):  # message transports: no serial settings
        options.pop("serial_options", None)
        if url.startswith("gpib://"):
            from .gpib_link import GpibLink

            return GpibLink(url, **options)
        from .modbus_link import ModbusLink

        return ModbusLink(url, **options)
    return SerialLink(url, **options)


_shared: dict[str, Link] = {}
_shared_lock = threading.Lock()


def shared_link(url: str, **options: Any) -> Link:
    """One link per URL in this process, for devices that share one line: the axes of a
    multi-axis controller on one serial port. Its lock keeps each transaction whole; the first
    device's options make the link."""
    with _shared_lock:
        if url not in _shared:
            _shared[url] = link_for_url(url, **options)
        return _shared[url]


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
