"""Byte-stream lines: a serial port, a socket, a GPIB address; one locked transaction with a deadline.

    socket://host:port, rfc2217://host:port, /dev/ttyUSB0   `SerialLink`, through pyserial
    gpib://lab/gpib/1/14                                     `GpibLink`, address 14 behind a GpibBus

A `Link` is a `Line` (device_servers/core/line.py: one per process and URL, shared by the
devices on it, reconnected once for all of them) that carries bytes. Every transaction holds the
line's lock (reentrant: a driver holds it across a multi-step exchange such as Pfeiffer's
request-then-enquire), so a reply always belongs to its request. Every read has a deadline.

Frames that arrive unasked (a stage reporting it stopped) go to every driver that listens
(`listen(key, listener)`): each driver on the line hears each of them and takes its own.

A transport failure closes the line and tells every device on it (`Line.lost`): a silent or cut
short reply (`LinkError`), bytes that are no frame of the protocol or no text of its encoding
(`GarbledReply`: where the next frame starts is unknown). Only the transport knows it failed;
what the instrument answers in its own words is the driver's to judge (`InstrumentError`).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Hashable
from typing import Any

import serial

from .errors import GarbledReply, LinkError, shown
from .framing import Framing, FramingError, Lines
from .line import Line, line_for_url, register_transport

LINES = Lines(b"\n")

#: A driver's handler of frames that arrive unasked; it gets each one's payload.
Listener = Callable[[bytes], None]


#: Bytes one read takes at most after the first has come; while a long frame is being read, up to
#: as many as have come (at most `MAX_READ_SIZE`): a camera's megabytes arrive in a few reads, not
#: in hundreds of appends each copying all that came before.
READ_SIZE = 1 << 12
MAX_READ_SIZE = 1 << 20


class Link(Line):
    """A line that carries bytes, cut into frames: what text and binary instrument drivers use."""

    def __init__(
        self,
        url: str,
        *,
        framing: Framing = LINES,
        write_terminator: bytes = b"\n",
        timeout: float = 1.0,
        encoding: str = "ascii",
    ) -> None:
        super().__init__(url, timeout=timeout)
        self.framing = framing
        self.write_terminator = write_terminator
        self.encoding = encoding
        self._listeners: dict[Hashable, Listener] = {}

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
        reply frame, or None when `reply` is False. Frames for which `accept` is false go to the
        listeners and the wait goes on, within the one deadline."""
        raise NotImplementedError

    def read_frame(self, timeout: float | None = None, framing: Framing | None = None) -> bytes:
        """The payload of the next frame, asked for or not (instruments that stream)."""
        raise NotImplementedError

    def route_waiting(self, framing: Framing | None = None) -> None:
        """Hand every complete frame that has arrived unasked to the listeners, without waiting."""

    # -- frames nobody asked for -----------------------------------------------------------------

    def listen(self, key: Hashable, listener: Listener) -> None:
        """`listener` hears every frame that arrives unasked, as do the others on this line.
        `key` names the consumer (a driver's class and its device number): listening again under
        it replaces the earlier listener, as a driver built again by its device's Init does."""
        with self.lock:
            self._listeners[key] = listener

    def unlisten(self, key: Hashable) -> None:
        with self.lock:
            self._listeners.pop(key, None)

    @property
    def listening(self) -> bool:
        """Whether any driver listens for unasked frames (the idle poll loop then looks for them)."""
        return bool(self._listeners)

    def _route(self, payload: bytes) -> None:
        for listener in list(self._listeners.values()):
            listener(payload)

    # -- text instruments -----------------------------------------------------------------------

    def query(self, line: str, timeout: float | None = None) -> str:
        """Send one line (the write terminator is added) and return the reply line's text; a
        reply that is no text of the encoding is garbage (`GarbledReply`), never U+FFFD."""
        reply = self.transaction(self._encode(line), timeout=timeout)
        try:
            return reply.decode(self.encoding)
        except UnicodeDecodeError:
            raise self.lost(GarbledReply(
                f"{self.url}: the reply to {shown(line)} is no {self.encoding} text: {shown(reply)}"
            )) from None

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
                    self.port_url(), timeout=self.timeout, write_timeout=self.timeout, **self.serial_options
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                raise LinkError(f"cannot open {self.url}: {_reason(exc)}") from exc
            tcp = getattr(self._port, "_socket", None)  # socket:// (pyserial keeps it private)
            if tcp is not None:  # a short request right after another must not wait ~40 ms for Nagle
                tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def port_url(self) -> str:
        """What pyserial opens: the URL itself (a subclass may look the port up at each opening)."""
        return self.url

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
            if self._port is None:
                return
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

    def _read_frame(self, framing: Framing, deadline: float, what: str) -> bytes:
        while (parts := self._split(framing)) is None:
            remaining = deadline - time.monotonic()
            size = min(max(READ_SIZE, len(self._buffer)), MAX_READ_SIZE)
            chunk = self._read_some(remaining, size) if remaining > 0 else b""
            if not chunk:
                got = f", got {shown(self._buffer)} so far" if self._buffer else ""
                self._fail(f"no reply {what}{got}")
            self._buffer += chunk
        frame, self._buffer = parts
        return frame

    def _split(self, framing: Framing) -> tuple[bytes, bytes] | None:
        try:
            return framing.split(self._buffer)
        except FramingError as exc:
            self.lost(exc)  # nothing after garbage can be trusted to start a frame
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
            raise self._failure(f"write to {self.url} failed: {_reason(exc)}") from exc

    def _read_some(self, timeout: float, size: int = READ_SIZE) -> bytes:
        """What has arrived, waiting up to `timeout` for the first byte (pyserial's socket
        `in_waiting` says only 0 or 1, so the rest is read without waiting)."""
        port = self._require_open()
        try:
            port.timeout = timeout
            data = port.read(1)
            if data:
                port.timeout = 0
                data += port.read(size)
            return data
        except (serial.SerialException, OSError) as exc:
            raise self._failure(f"read from {self.url} failed: {_reason(exc)}") from exc

    def _waiting(self) -> int:
        port = self._require_open()
        try:
            return port.in_waiting
        except (serial.SerialException, OSError) as exc:
            raise self._failure(f"{self.url} dropped: {_reason(exc)}") from exc

    def _read_available(self) -> bytes:
        waiting = self._waiting()
        return self._read_some(0.0) if waiting else b""

    def _fail(self, message: str) -> None:
        """A silent or truncated reply leaves the framing unknown: drop the line, report it."""
        raise self._failure(f"{self.url}: {message}")

    def _failure(self, message: str) -> LinkError:
        return self.lost(LinkError(message))


#: Whatever pyserial opens: device paths and its URL handlers.
for _scheme in ("", "socket", "rfc2217", "loop", "spy", "alt", "hwgrep"):
    register_transport(_scheme, SerialLink)

#: A new, unshared line for a script or a test (devices attach to theirs: line.attach_line).
link_for_url = line_for_url


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
