"""The base of every tangolab hardware device: connect, poll into a cache, push events, reconnect.

A device subclass declares its attributes with `polled(...)`, builds its driver in
`create_driver`, and maps one instrument round trip to attribute values in `poll`. Everything
else (the poll thread, serving reads from the cache, change and archive events, FAULT with a
reason and reconnection with back-off, turning driver errors into `DevFailed`) happens here once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from tango import AttrQuality, AttrWriteType, DevState, Except
from tango.server import Device, attribute, device_property

from .errors import InstrumentError, LinkError, RejectedValue
from .link import Link

T = TypeVar("T")

#: Reconnection waits grow from the first to the last value and stay there.
RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 5.0)

VALID, WARNING, ALARM, INVALID = (
    AttrQuality.ATTR_VALID, AttrQuality.ATTR_WARNING, AttrQuality.ATTR_ALARM, AttrQuality.ATTR_INVALID
)


class polled(attribute):
    """An attribute whose reads come from the poll cache and whose changes are pushed as events.

    Thresholds are the standard Tango ones (`abs_change`, `archive_abs_change`, `archive_period`,
    editable from Jive); the poll loop pushes every new value and Tango drops those that moved
    less than the threshold.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.placeholder = _placeholder(kwargs.get("dtype", float))
        if "abs_change" in kwargs:
            kwargs.setdefault("archive_abs_change", kwargs["abs_change"])
        kwargs.setdefault("archive_period", 60_000)
        super().__init__(
            change_event_implemented=True,
            change_event_detect=True,
            archive_event_implemented=True,
            archive_event_detect=True,
            **kwargs,
        )

    def __set_name__(self, owner: type, name: str) -> None:
        placeholder = self.placeholder
        self.fget = lambda device: device.cached(name, placeholder)


def writable(**kwargs: Any) -> polled:
    """A polled attribute that can be written; the device defines `write_<name>`."""
    return polled(access=AttrWriteType.READ_WRITE, **kwargs)


class HardwareDevice(Device):
    """A Tango device in front of one instrument reached through a `Link`."""

    Url = device_property(
        dtype=str,
        mandatory=True,
        doc="pyserial URL of the instrument: socket://host:port, /dev/ttyUSB0, rfc2217://host:port",
    )
    PollPeriod = device_property(
        dtype=float, default_value=0.5, doc="Seconds between two polls of the instrument"
    )
    Timeout = device_property(
        dtype=float, default_value=1.0, doc="Seconds to wait for one reply before the link counts as lost"
    )

    #: Extra keyword arguments of the `Link` (terminators, baud rate); set by each device class.
    link_options: ClassVar[dict[str, Any]] = {}

    # -- what a device class provides ---------------------------------------------------------

    def create_driver(self, link: Link) -> Any:
        """Return the instrument driver built on `link`."""
        raise NotImplementedError

    def on_connect(self) -> None:
        """Bring the instrument into the configuration the device relies on (after each connect)."""

    def poll(self) -> dict[str, Any]:
        """Read the instrument once; return attribute name → value (None = no valid reading)."""
        raise NotImplementedError

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        """State and status while the link is up; ON unless the device knows better."""
        return DevState.ON, "Connected"

    # -- Tango life cycle ---------------------------------------------------------------------

    def init_device(self) -> None:
        super().init_device()
        self._cache: dict[str, tuple[Any, float, AttrQuality]] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.link = Link(self.Url, timeout=self.Timeout, **self.link_options)
        self.driver = self.create_driver(self.link)
        self.set_change_event("State", True, False)
        self.set_change_event("Status", True, False)
        self._set_state(DevState.INIT, f"Connecting to {self.Url}")
        self._thread = threading.Thread(
            target=self._poll_loop, args=(self._stop, self.link), name=f"poll {self.get_name()}", daemon=True
        )
        self._thread.start()

    def delete_device(self) -> None:
        self._stop.set()
        self._wake.set()
        # an open() can take pyserial's 5 s connect time-out; the thread ends on its own stop
        # event and link even if it outlives this wait (Init makes new ones)
        self._thread.join(timeout=self.Timeout + 6)
        self.link.close()
        super().delete_device()

    def dev_state(self) -> DevState:
        return self.get_state()

    def dev_status(self) -> str:
        return self.get_status()

    # -- reads and writes ---------------------------------------------------------------------

    def cached(self, name: str, placeholder: Any = 0.0) -> tuple[Any, float, AttrQuality]:
        """The last polled (value, time, quality) of `name`; INVALID until a valid reading."""
        value, when, quality = self._cache.get(name, (None, time.time(), INVALID))
        return (placeholder, when, INVALID) if value is None else (value, when, quality)

    def send(self, operation: Callable[..., T], *args: Any) -> T:
        """Run a driver operation for a client; errors become a DevFailed a person can act on."""
        origin = f"{self.get_name()} {getattr(operation, '__name__', 'operation')}{args}"
        try:
            result = operation(*args)
        except RejectedValue as exc:
            Except.throw_exception("ValueRejected", f"{exc}; nothing was sent to the instrument", origin)
        except LinkError as exc:
            self.link.close()
            Except.throw_exception("LinkError", f"{exc}; the request may not have reached the instrument", origin)
        except InstrumentError as exc:
            Except.throw_exception("InstrumentError", str(exc), origin)
        self._wake.set()
        return result

    # -- the poll loop ------------------------------------------------------------------------

    def _poll_loop(self, stop: threading.Event, link: Link) -> None:
        failures = 0
        lost_since: float | None = None
        while not stop.is_set():
            started = time.monotonic()
            try:
                if not link.is_open:
                    link.open()
                    self.on_connect()
                values = self.poll()
            except (LinkError, InstrumentError) as exc:
                link.close()
                lost_since = lost_since or time.time()
                delay = RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)]
                failures += 1
                if not stop.is_set():
                    self._fault(exc, lost_since, failures, delay)
                stop.wait(delay)
                continue
            except Exception as exc:  # noqa: BLE001 - a bug must show as FAULT, not kill the thread
                self._fault(exc, lost_since or time.time(), failures, self.PollPeriod)
                stop.wait(self.PollPeriod)
                continue
            if stop.is_set():
                break
            if failures:
                self.info_stream(f"{self.Url} answers again after {failures} failed attempt(s)")
            failures, lost_since = 0, None
            self._publish(values)
            self._wake.wait(max(self.PollPeriod - (time.monotonic() - started), 0.0))
            self._wake.clear()
        link.close()

    def _publish(self, values: dict[str, Any]) -> None:
        now = time.time()
        in_alarm = []
        for name, value in values.items():
            quality = INVALID if value is None else self._quality(name, value)
            if quality is ALARM:
                in_alarm.append(name)
            self._store(name, value, now, quality)
        state, status = self.operating_state(values)
        if in_alarm and state in (DevState.ON, DevState.RUNNING):
            state = DevState.ALARM
            status = f"{status}; out of alarm limits: {', '.join(in_alarm)}"
        self._set_state(state, status)

    def _store(self, name: str, value: Any, when: float, quality: AttrQuality) -> None:
        """Cache a reading and offer it as events; Tango drops those below the thresholds."""
        if value is None:  # keep the last value, marked INVALID, so subscribers see the loss
            value = self._cache.get(name, (None,))[0]
        self._cache[name] = (value, when, quality)
        if value is not None:
            self.push_change_event(name, value, when, quality)
            self.push_archive_event(name, value, when, quality)

    def _quality(self, name: str, value: Any) -> AttrQuality:
        """ALARM or WARNING by the attribute's limits as configured now (Jive can change them)."""
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return VALID
        config = self.get_device_attr().get_attr_by_name(name).get_properties()
        for quality, low, high in (
            (ALARM, config.min_alarm, config.max_alarm),
            (WARNING, config.min_warning, config.max_warning),
        ):
            low, high = _number(low), _number(high)
            if (low is not None and value < low) or (high is not None and value > high):
                return quality
        return VALID

    def _fault(self, exc: BaseException, since: float, attempts: int, retry_in: float) -> None:
        for name, (value, _, _) in list(self._cache.items()):
            self._store(name, value, time.time(), INVALID)
        stamp = datetime.fromtimestamp(since).strftime("%Y-%m-%d %H:%M:%S")
        if self.get_state() != DevState.FAULT:
            self.error_stream(f"{type(exc).__name__}: {exc}")  # once per outage, to the lab's log
        self._set_state(
            DevState.FAULT,
            f"{type(exc).__name__}: {exc} (failing since {stamp}, {attempts} attempt(s); "
            f"next try in {retry_in:g} s)",
        )

    def _set_state(self, state: DevState, status: str) -> None:
        changed = state != self.get_state()
        if changed or status != self.get_status():
            self.set_state(state)
            self.set_status(status)
            if changed:
                self.push_change_event("State")
            self.push_change_event("Status")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # "Not specified"
        return None


def _placeholder(dtype: Any) -> Any:
    """A value of the attribute's type for when there is none: clients see only INVALID."""
    if dtype in (str, "str", "DevString"):
        return ""
    if dtype in (float, "float", "DevDouble", "DevFloat"):
        return float("nan")
    if dtype in (bool, "bool", "DevBoolean"):
        return False
    return 0
