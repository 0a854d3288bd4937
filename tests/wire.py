"""A raw conversation with an instrument (or its simulator) over TCP, as `nc host port` shows it.

Protocol tests write the manual's bytes and compare what comes back, byte for byte. Replies are
cut with the protocol's own framing (the one the driver and the simulator share), so a test
reads whole frames, terminators and checksums included:

    with Wire(port, Lines(b"\\r\\n")) as wire:
        assert wire.ask(b"*IDN?\\n") == b"Cryo-con,24C,204683,1.07A\\r\\n"
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterable
from typing import Self

from device_servers.core.framing import Framing, Lines

NEWLINES = Lines(b"\n")


class Wire:
    """One TCP connection: `send` bytes, `receive` the next whole frame, `silent` for none."""

    def __init__(self, port: int, framing: Framing = NEWLINES, *, host: str = "127.0.0.1",
                 timeout: float = 10.0) -> None:
        self.framing = framing
        self.timeout = timeout
        self.socket = socket.create_connection((host, port), timeout=timeout)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.socket.close()

    def send(self, data: bytes) -> None:
        self.socket.sendall(data)

    def receive(self, timeout: float | None = None) -> bytes:
        """The next whole frame as it came (terminator included); fails when none comes in time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while (parts := self.framing.split(self.pending)) is None:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no whole frame arrived in time; got {self.pending!r} so far"
            self.socket.settimeout(remaining)
            try:
                chunk = self.socket.recv(4096)
            except TimeoutError:
                continue
            finally:
                self.socket.settimeout(self.timeout)
            assert chunk, f"the other side closed the connection; got {self.pending!r} so far"
            self.pending += chunk
        frame, self.pending = parts
        return frame

    def ask(self, data: bytes, timeout: float | None = None) -> bytes:
        self.send(data)
        return self.receive(timeout)

    def converse(self, exchanges: Iterable[tuple[bytes, bytes | re.Pattern[bytes] | None]]) -> None:
        """Send each request in turn; where a reply is given (bytes, or a pattern for a reply that
        varies) the next whole frame must be it, where it is None the request gets no reply (so
        the frame that comes next is the next request's)."""
        for request, reply in exchanges:
            if reply is None:
                self.send(request)
                continue
            answer = self.ask(request)
            matches = reply.fullmatch(answer) if isinstance(reply, re.Pattern) else answer == reply
            assert matches, f"{request!r} was answered {answer!r}, not {reply!r}"

    def silent(self, seconds: float = 0.3) -> bool:
        """Whether nothing (not even a part of a frame) arrives within `seconds`."""
        if self.pending:
            return False
        self.socket.settimeout(seconds)
        try:
            self.pending = self.socket.recv(4096)
        except TimeoutError:
            return True
        finally:
            self.socket.settimeout(self.timeout)
        return False

    def closed_by_peer(self, seconds: float = 5.0) -> bool:
        """Whether the other side closes the connection within `seconds` (a server that drops)."""
        self.socket.settimeout(seconds)
        try:
            while chunk := self.socket.recv(4096):
                self.pending += chunk
            return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.socket.settimeout(self.timeout)
