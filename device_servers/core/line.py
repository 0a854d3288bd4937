"""Lines: the connections to instruments, each opened once per process and shared by the devices on it.

A line is one serial port, one socket, one GPIB address or one Modbus unit. Several Tango devices
can hang on it: the three axes of an ESP301 on one RS-232 port, Zaber stages on one daisy chain,
the channels of a TEC controller behind one TCP connection. A device does not open its line; it
attaches to it by its `Url`, and every device of the process naming the same `Url` gets the same
`Line` object:

    line = attach_line("socket://moxa:4001", "lab/esp301/2", on_lost, framing=..., timeout=0.5)
    ...
    line.release("lab/esp301/2")        # closed when the last device has left

So the line has one owner, the process, and these rules:

- it is opened once (`connect`: whoever finds it closed opens it; the others find it open) and
  stays open while any device is attached; a device's Init, FAULT or deletion leaves it open
  for the others;
- a transport failure (a drop, a time-out, garbage: a `LinkError`) is the line's: `lost` closes
  it and tells every attached device (each goes FAULT and reconnects; the first reopens it);
  `generation` counts the openings, so a device knows whether the line was reopened since it
  configured its instrument, and a late report of an old failure does not close a new
  connection;
- the settings of the first device make the line; a device asking for other settings is
  refused (`LineConflict`, naming both devices and what differs);
- what several drivers on one line share (one controller object, one sequence counter, the
  list of devices on a daisy chain) is `line.one(kind, *key)`: made once per line, kept while
  the line lives.

Transports are registered by URL scheme (`register_transport`); a URL whose scheme is not
registered yet loads `device_servers.core.<scheme>_link`, which registers itself, so a new
transport is a module of its own and nothing here changes. A URL without a scheme is a device
path (/dev/ttyUSB0) and goes to the transport registered for "".

`Line` is what every transport shares and all the poll loop needs: open, close, is_open, the
lock, the users. Byte streams (`link.Link`: serial, socket, GPIB address) add framed
transactions; Modbus (`modbus_link.ModbusLink`) adds register reads and writes.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Self, TypeVar

from .errors import LinkError

T = TypeVar("T")
E = TypeVar("E", bound=LinkError)

#: After a failed opening, how long `connect` answers with that failure instead of trying again:
#: the devices of one line do not each knock on a dead instrument.
RETRY_S = 0.5


class LineLock:
    """A reentrant lock that knows whether the calling thread holds it."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._owner: int | None = None
        self._depth = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not self._lock.acquire(blocking, timeout):
            return False
        self._owner = threading.get_ident()
        self._depth += 1
        return True

    def release(self) -> None:
        self._depth -= 1
        if not self._depth:
            self._owner = None
        self._lock.release()

    def held(self) -> bool:
        """Whether the calling thread holds the lock (a callback run inside a transaction)."""
        return self._owner == threading.get_ident()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class LineConflict(ValueError):
    """Two devices name one line with different settings."""


class Line:
    """One connection to instruments, shared by the devices of this process attached to it."""

    def __init__(self, url: str, *, timeout: float = 1.0) -> None:
        self.url = url
        self.timeout = timeout
        #: Held for each whole exchange (reentrant: a driver holds it across a multi-step one).
        self.lock = LineLock()
        #: How many times `connect` has opened the line.
        self.generation = 0
        self.settings: dict[str, Any] = {}
        self._users: dict[str, Callable[[LinkError], None] | None] = {}
        self._made_by = ""
        self._parts: dict[Hashable, Any] = {}
        self._refused: tuple[float, LinkError] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- the transport ---------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        raise NotImplementedError

    def open(self) -> None:
        """Open the connection (again); raises `LinkError` saying why it could not."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        if not self.is_open:
            self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- one line, several devices ---------------------------------------------------------------

    @property
    def users(self) -> list[str]:
        """The devices attached, in the order they came."""
        return list(self._users)

    def connect(self) -> int:
        """Open the line unless it is open; return its generation. A failed opening is answered
        again for RETRY_S without a new try."""
        with self.lock:
            if self.is_open:
                return self.generation
            if self._refused is not None and time.monotonic() - self._refused[0] < RETRY_S:
                raise self._refused[1]
            try:
                self.open()
            except LinkError as exc:
                self._refused = (time.monotonic(), exc)
                raise
            self._refused = None
            self.generation += 1
            return self.generation

    def lost(self, error: E, generation: int | None = None) -> E:
        """The transport failed: close the line and tell every attached device; returns `error`
        (`raise line.lost(LinkError(...))`). A failure seen on an earlier `generation` (the line
        was reopened since) changes nothing."""
        with self.lock:
            if not self.is_open or (generation is not None and generation != self.generation):
                return error
            self.close()
            told = [notify for notify in self._users.values() if notify is not None]
        for notify in told:
            notify(error)
        return error

    def release(self, user: str) -> None:
        """`user` leaves the line; the last one to leave closes it."""
        with _registry_lock:
            self._users.pop(user, None)
            if self._users:
                return
            if _lines.get(self.url) is self:
                del _lines[self.url]
        with self.lock:
            self.close()

    def one(self, kind: Callable[..., T], *key: Hashable) -> T:
        """The one `kind(self, *key)` of this line, made on first use: what the drivers on one
        line share (the ESP301 controller of three axes, the MeCom device of two channels)."""
        with self.lock:
            part = self._parts.get((kind, *key))
            if part is None:
                part = self._parts[(kind, *key)] = kind(self, *key)
            return part


# -- transports by URL scheme ---------------------------------------------------------------------

_transports: dict[str, Callable[..., Line]] = {}


def register_transport(scheme: str, make: Callable[..., Line]) -> None:
    """`make(url, **settings)` opens the URLs of `scheme` ("" for device paths such as /dev/ttyUSB0)."""
    _transports[scheme] = make


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def line_for_url(url: str, **settings: Any) -> Line:
    """A new, unshared line of the transport the URL's scheme names (scripts, tests)."""
    scheme = scheme_of(url)
    if scheme not in _transports and scheme.isidentifier():
        try:
            importlib.import_module(f"{__package__}.{scheme}_link")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{scheme}_link":
                raise
    if scheme not in _transports:
        known = ", ".join(f"{name}://" for name in sorted(_transports) if name)
        raise ValueError(
            f"no transport for {url!r}: no module {__package__}.{scheme}_link; schemes loaded so far: {known} "
            "(gpib_link, modbus_link... load with their first URL); or a device path such as /dev/ttyUSB0"
        )
    return _transports[scheme](url, **settings)


# -- the lines of this process ------------------------------------------------------------------

_lines: dict[str, Line] = {}
_registry_lock = threading.Lock()


def attach_line(
    url: str, user: str, on_lost: Callable[[LinkError], None] | None = None, **settings: Any
) -> Line:
    """The line `url` of this process for the device `user`, made with `settings` by the first
    device; `on_lost(error)` is called when the transport fails (from whichever thread saw it:
    record and wake, nothing more). `LineConflict` when the line was made with other settings."""
    with _registry_lock:
        line = _lines.get(url)
        if line is None:
            line = _lines[url] = line_for_url(url, **settings)
            line.settings, line._made_by = dict(settings), user
        elif differences := _differences(line.settings, settings):
            raise LineConflict(
                f"{user} and {line._made_by} name one line, {url}, with different settings: "
                f"{'; '.join(f'{name} {theirs!r} for {line._made_by}, {mine!r} for {user}' for name, theirs, mine in differences)}"
                ". Give every device on one line the same settings"
            )
        line._users[user] = on_lost
        return line


def _differences(made: dict[str, Any], asked: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(setting, as made, as asked) for each setting that differs (serial options one by one)."""
    flat_made, flat_asked = _flat(made), _flat(asked)
    return [
        (name, flat_made.get(name), flat_asked.get(name))
        for name in sorted(flat_made.keys() | flat_asked.keys())
        if flat_made.get(name) != flat_asked.get(name)
    ]


def _flat(settings: dict[str, Any]) -> dict[str, Any]:
    flat = {name: value for name, value in settings.items() if not isinstance(value, dict)}
    for value in settings.values():
        if isinstance(value, dict):
            flat.update(value)
    return flat
