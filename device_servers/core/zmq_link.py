"""A line to instruments that speak through a ZeroMQ broker (the epz boards), through pyzmq.

    zmq://raspberry                    the broker on raspberry: producers publish to 6661,
                                       subscribers listen on 6669, files are fetched from 6000
    zmq://127.0.0.1:16661/16669/16000  the same three ports, spelled out

A broker is no byte stream: messages are whole (one string, or several parts), go to whoever
subscribed to their prefix, and nothing says that the peer went away. So a `ZmqLink` is a
`Line` (shared, reconnected once for all its devices, see line.py) that offers:

    link.publish("NANOUP:CMD:SET_PGAIN:0.3")                          nothing comes back
    link.exchange("NANOUP:REQPAR:GET_PGAIN", "NANOUP:SNDPAR:Q:")     -> "NANOUP:SNDPAR:Q:0.3"
    with link.subscriber("NANOUP:BLOCK:") as blocks:                  a socket of its own, for a
        parts = blocks.receive(timeout=0.05)                          stream's thread
    link.fetch()                                                      -> the file, from ROUTER

A broker that does not answer within the deadline is a `LinkError` (the line is closed; its
devices go FAULT and reconnect). ZeroMQ itself reconnects a socket whose peer came back, and
loses what was published before a subscription reached the publisher (the "slow joiner"): an
exchange sends its request again every `RESEND_S` until the reply comes, so the first request
after a (re)connection gets through. The scheme registers itself: `line_for_url("zmq://...")`
loads this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import zmq

from .errors import LinkError
from .line import Line, register_transport

DEFAULT_PORTS = (6661, 6669, 6000)
#: How often an unanswered exchange sends its request again (slow joiners, a broker back).
RESEND_S = 0.2
#: Messages a subscriber keeps before ZeroMQ drops new ones (a stream's reader fell behind).
RECEIVE_HWM = 10_000


def parse_zmq_url(url: str) -> tuple[str, tuple[int, int, int]]:
    """(host, (publish port, subscribe port, file port)) of `zmq://host[:pub][/sub[/files]]`."""
    parts = urlsplit(url)
    example = "e.g. zmq://raspberry or zmq://127.0.0.1:6661/6669/6000"
    try:
        ports = [parts.port] + [int(p) for p in parts.path.strip("/").split("/") if p]
    except ValueError:
        ports = [-1]
    chosen = tuple(port if port is not None else default for port, default in
                   zip(ports + [None] * (3 - len(ports)), DEFAULT_PORTS, strict=True)) if len(ports) <= 3 else ()
    if parts.scheme != "zmq" or not parts.hostname or len(chosen) != 3 or not all(0 < p < 65536 for p in chosen):
        raise ValueError(f"{url!r} is not zmq://<host>[:<publish port>][/<subscribe port>[/<file port>]], {example}")
    return parts.hostname, chosen  # type: ignore[return-value]


class Subscriber:
    """A SUB socket of its own on the broker, for one thread (a stream's): `receive` the next
    message's parts, None when none came in time. A context manager: it closes on exit."""

    def __init__(self, context: zmq.Context, address: str, prefixes: tuple[str, ...]) -> None:
        self.socket = context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVHWM, RECEIVE_HWM)
        for prefix in prefixes:
            self.socket.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        self.socket.connect(address)

    def receive(self, timeout: float) -> list[bytes] | None:
        if not self.socket.poll(int(timeout * 1000)):
            return None
        return self.socket.recv_multipart()

    def close(self) -> None:
        self.socket.close(linger=0)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class ZmqLink(Line):
    """Publish to a broker and hear its replies; streams and file fetches on sockets of their own."""

    def __init__(self, url: str, *, timeout: float = 1.0, **_byte_stream_settings: Any) -> None:
        """The settings of byte streams (framing, serial options) have no meaning here."""
        super().__init__(url, timeout=timeout)
        self.host, (self.publish_port, self.subscribe_port, self.file_port) = parse_zmq_url(url)
        self.context = zmq.Context.instance()
        self._publisher: zmq.Socket | None = None
        self._replies: zmq.Socket | None = None
        self._subscribed: set[str] = set()

    def address(self, port: int) -> str:
        return f"tcp://{self.host}:{port}"

    @property
    def is_open(self) -> bool:
        return self._publisher is not None

    def open(self) -> None:
        """Connect to the broker. ZeroMQ connects in the background, so an absent broker shows
        only as the first exchange's silence."""
        with self.lock:
            self.close()
            try:
                publisher = self.context.socket(zmq.PUB)
                publisher.setsockopt(zmq.LINGER, 0)
                publisher.connect(self.address(self.publish_port))
                replies = self.context.socket(zmq.SUB)
                replies.setsockopt(zmq.LINGER, 0)
                replies.connect(self.address(self.subscribe_port))
            except zmq.ZMQError as exc:
                raise LinkError(f"cannot connect to {self.url}: {exc}") from exc
            self._publisher, self._replies = publisher, replies
            self._subscribed = set()

    def close(self) -> None:
        with self.lock:
            for socket in (self._publisher, self._replies):
                if socket is not None:
                    socket.close(linger=0)
            self._publisher = self._replies = None

    # -- messages --------------------------------------------------------------------------------

    def publish(self, message: str | bytes) -> None:
        """Send one message to the broker; nothing comes back."""
        with self.lock:
            self._require_open().send(_bytes(message))

    def exchange(self, request: str | bytes, reply_prefix: str, *,
                 accept: Callable[[str], bool] | None = None, timeout: float | None = None) -> str:
        """Publish `request` and return the first message after it that starts with
        `reply_prefix` (and that `accept` takes); `request` is sent again every RESEND_S while
        none comes. Silence until the deadline is a `LinkError` (the line is closed)."""
        seconds = self.timeout if timeout is None else timeout
        with self.lock:
            publisher = self._require_open()
            replies = self._replies
            if reply_prefix not in self._subscribed:
                replies.setsockopt(zmq.SUBSCRIBE, reply_prefix.encode())
                self._subscribed.add(reply_prefix)
            while replies.poll(0):  # what came for earlier requests is stale now
                replies.recv_multipart()
            deadline = time.monotonic() + seconds
            resend = 0.0
            while (now := time.monotonic()) < deadline:
                if now >= resend:
                    publisher.send(_bytes(request))
                    resend = now + RESEND_S
                if not replies.poll(int(1000 * max(0.001, min(resend, deadline) - now))):
                    continue
                text = replies.recv_multipart()[0].decode("ascii", errors="replace")
                if text.startswith(reply_prefix) and (accept is None or accept(text)):
                    return text
            raise self.lost(LinkError(f"{self.url}: no {reply_prefix!r} reply to {_bytes(request)!r} "
                                      f"within {seconds:g} s"))

    def subscriber(self, *prefixes: str) -> Subscriber:
        """A socket of its own that hears the messages starting with `prefixes` (for one thread)."""
        return Subscriber(self.context, self.address(self.subscribe_port), prefixes)

    def fetch(self, request: bytes = b"fetch", timeout: float | None = None) -> bytes:
        """A file from the instrument's ROUTER: `request`, then chunks until an empty one."""
        seconds = self.timeout if timeout is None else timeout
        dealer = self.context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        try:
            dealer.connect(self.address(self.file_port))
            dealer.send(request)
            chunks = []
            while dealer.poll(int(seconds * 1000)):
                chunk = dealer.recv()
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
            raise LinkError(f"{self.url}: the file fetch from port {self.file_port} stopped after "
                            f"{sum(map(len, chunks))} bytes: nothing for {seconds:g} s")
        finally:
            dealer.close(linger=0)

    def _require_open(self) -> zmq.Socket:
        if self._publisher is None:
            raise LinkError(f"{self.url} is not connected")
        return self._publisher


def _bytes(message: str | bytes) -> bytes:
    return message.encode("ascii") if isinstance(message, str) else message


register_transport("zmq", ZmqLink)
