"""The base of every tangolab hardware device: attach to a line, poll into a cache, push events, reconnect.

A device subclass declares its attributes with `polled(...)` and `writable(...)`, builds its
driver in `create_driver`, and maps one instrument round trip to attribute values in `poll`.
Everything else happens here once: the line (picked by the `Url` scheme, with the device's own
line settings), the poll thread, reads served from the cache, change and archive events, FAULT
with a reason and reconnection with back-off, writes that run the driver operation the
attribute names, frames the instrument sends unasked, and driver errors turned into `DevFailed`.

    setpoint1 = writable(dtype=float, unit="K", writes=(CryoCon24C.set_setpoint, 1),
                         limits=SETPOINT_LIMITS)

writes `cryo.setpoint1 = 80` as `driver.set_setpoint(1, 80.0)`; SETPOINT_LIMITS are the
attribute's min/max, so Jive and Taurus show and enforce them.

Lines (device_servers/core/line.py). Devices of one process whose `Url` is the same share one
line: nothing to declare but the `Url` (the axes of an ESP301, Zaber stages on one chain, TEC
channels behind one connection). A device attaches at Init and leaves at delete, so its Init,
its FAULT or its end never closes the line under the others; it configures its instrument
(`on_connect`) whenever the line was (re)opened since it last did. Settings that differ from the
line's (another baud rate) leave the device FAULT, naming both devices.

Failure versus refusal (device_servers/core/errors.py):

- a `LinkError` (a drop, a time-out, garbage: `GarbledReply`) is the line's: it is closed, every
  device on it goes FAULT ("failing since"), and each reconnects with back-off; the first to
  come back reopens the line, the others find it open;
- an `InstrumentError` is the instrument's own refusal, and only that operation fails: a write
  or command raises a DevFailed with the instrument's words; a value `poll` reads with
  `Refused.of(read, ...)` goes INVALID with the reason in the Status while the device stays ON;
  a whole poll refused leaves every value INVALID and the device ALARM. The line stays up.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from tango import AttrQuality, AttrWriteType, DevState, Except, WAttribute
from tango.server import Device, attribute, device_property

from .errors import InstrumentError, LinkError, RejectedValue, for_tango, shown
from .framing import Framing, Lines
from .limits import Limits
from .line import Line, LineConflict, attach_line
from .link import Link

T = TypeVar("T")

#: Reconnection waits grow from the first to the last value and stay there.
RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 5.0)
#: The relative change threshold of numbers declared without one: any change worth printing.
ANY_CHANGE = 1e-9
#: How often the idle poll loop looks for frames the instrument sent unasked.
UNSOLICITED_CHECK_S = 0.05

VALID, WARNING, ALARM, INVALID = (
    AttrQuality.ATTR_VALID, AttrQuality.ATTR_WARNING, AttrQuality.ATTR_ALARM, AttrQuality.ATTR_INVALID
)

@dataclass(frozen=True)
class Refused:
    """A value `poll` could not read because the instrument refused it (its words in `reason`):
    the attribute goes INVALID and the reason shows in the Status; the device stays ON and the
    line up. `Refused.of` turns one read's `InstrumentError` into it:

        return {"sinkTemperature": Refused.of(channel.read_sink_temperature), ...}
    """

    reason: str

    @staticmethod
    def of(read: Callable[..., T], *args: Any) -> T | Refused:
        """`read(*args)`, or `Refused` with the instrument's words when it refuses (a
        `LinkError` still goes up: a failed line is no refusal)."""
        try:
            return read(*args)
        except InstrumentError as exc:
            return Refused(str(exc))


#: A driver operation an attribute write runs: the unbound method, then its leading arguments;
#: the written value comes last (`(CryoCon24C.set_setpoint, 1)` → `driver.set_setpoint(1, v)`).
Operation = Callable[..., Any] | tuple[Any, ...]


class polled(attribute):
    """An attribute whose reads come from the poll cache and whose changes are pushed as events.

    Thresholds are the standard Tango ones (`abs_change`, `archive_abs_change`, `archive_period`,
    editable from Jive); the poll loop pushes every new value and Tango drops those that moved
    less than the threshold. `writes` names the driver operation a write runs, `limits` the
    range it accepts (shown as min/max); an enum attribute hands the driver the label.
    """

    def __init__(self, *, writes: Operation | None = None, limits: Limits | None = None, **kwargs: Any) -> None:
        dtype = kwargs.get("dtype", float)
        self.placeholder = _placeholder(dtype)
        self.labels = [member.name for member in dtype] if _is_enum(dtype) else None
        self.operation = (writes,) if callable(writes) else writes
        if writes is not None:
            kwargs["access"] = AttrWriteType.READ_WRITE
        if limits is not None:
            kwargs.setdefault("min_value", limits.low)
            kwargs.setdefault("max_value", limits.high)
            if limits.unit:
                kwargs.setdefault("unit", limits.unit)
        if _is_number(dtype) and not ({"abs_change", "rel_change"} & kwargs.keys()):
            # Tango refuses change-event subscriptions to a number with no threshold: say "any change"
            kwargs["rel_change"] = ANY_CHANGE
        if "abs_change" in kwargs:
            kwargs.setdefault("archive_abs_change", kwargs["abs_change"])
        if "rel_change" in kwargs and "archive_abs_change" not in kwargs:
            kwargs.setdefault("archive_rel_change", kwargs["rel_change"])
        kwargs.setdefault("archive_period", 60_000)
        super().__init__(
            change_event_implemented=True,
            change_event_detect=True,
            archive_event_implemented=True,
            archive_event_detect=True,
            **kwargs,
        )
        if "name" in kwargs:  # added at run time: no class body to name it
            self.__set_name__(None, kwargs["name"])

    def __set_name__(self, owner: type | None, name: str) -> None:
        placeholder = self.placeholder
        self.fget = lambda device, *_: device.cached(name, placeholder)
        if self.operation is not None:
            self.fset = lambda device, value, *_: device.write_through(self, name, _written(value))


def writable(*, writes: Operation, **kwargs: Any) -> polled:
    """A polled attribute that a client writes through the driver operation `writes`."""
    return polled(writes=writes, **kwargs)


class HardwareDevice(Device):
    """A Tango device in front of one instrument reached through a `Link`."""

    Url = device_property(
        dtype=str,
        mandatory=True,
        doc="Where the instrument is: socket://host:port, /dev/ttyUSB0, rfc2217://host:port, "
        "gpib://<bus device>/<address>, modbus://host:port/<unit>",
    )
    PollPeriod = device_property(
        dtype=float, default_value=0.5, doc="Seconds between two polls of the instrument"
    )
    Timeout = device_property(
        dtype=float, default_value=1.0, doc="Seconds to wait for one reply before the link counts as lost"
    )
    BaudRate = device_property(dtype=int, default_value=9600, doc="Serial links: bits per second")
    Parity = device_property(dtype=str, default_value="N", doc="Serial links: N, E, O, M or S")
    StopBits = device_property(dtype=float, default_value=1, doc="Serial links: 1, 1.5 or 2")
    Handshake = device_property(
        dtype=str, default_value="none", doc="Serial links: none, rtscts (hardware) or xonxoff (software)"
    )

    #: How the instrument's replies are cut into frames, and what ends each line sent.
    framing: ClassVar[Framing] = Lines(b"\n")
    write_terminator: ClassVar[bytes] = b"\n"

    # -- what a device class provides ---------------------------------------------------------

    def create_driver(self, link: Line) -> Any:
        """Return the instrument driver built on `link` (the line this device is attached to)."""
        raise NotImplementedError

    def on_connect(self) -> None:
        """Bring the instrument into the configuration the device relies on (after each connect)."""

    def poll(self) -> dict[str, Any]:
        """Read the instrument once; return attribute name → value (None = no valid reading,
        `Refused(reason)` = the instrument refused to give it)."""
        raise NotImplementedError

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        """State and status while the link is up; ON unless the device knows better. A value
        the instrument refused is None here (its reason is added to the status)."""
        return DevState.ON, "Connected"

    def poll_period(self) -> float:
        """Seconds until the next poll; a device polls faster while something moves."""
        return self.PollPeriod

    def create_link(self) -> Line:
        """The line the `Url` names, shared with the devices of this process on it (made with
        this device's settings if it is the first); `LineConflict` if it has other settings."""
        return attach_line(self.Url, self.get_name(), self._line_lost, **self.link_options())

    def link_options(self) -> dict[str, Any]:
        """This device's line settings (framing, time-out, serial options) from its properties:
        every device on one line must give the same."""
        handshake = self.Handshake.strip().lower()
        if handshake not in ("none", "rtscts", "xonxoff"):
            raise ValueError(f"Handshake {self.Handshake!r} is not one of none, rtscts, xonxoff")
        serial_options = {
            "baudrate": self.BaudRate,
            "parity": self.Parity.strip().upper()[:1],
            "stopbits": self.StopBits,
            "rtscts": handshake == "rtscts",
            "xonxoff": handshake == "xonxoff",
        }
        return {
            "framing": self.framing,
            "write_terminator": self.write_terminator,
            "timeout": self.Timeout,
            "serial_options": serial_options,
        }

    # -- Tango life cycle ---------------------------------------------------------------------

    def init_device(self) -> None:
        super().init_device()
        self._cache: dict[str, tuple[Any, float, AttrQuality]] = {}
        self._cache_lock = threading.RLock()
        self._unasked: list[tuple[dict[str, Any], float]] = []  # published on the poll thread
        self._written_at: dict[str, float] = {}  # monotonic time each attribute's last write ended
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        #: The line's generation this device configured its instrument at (None: not yet).
        self._configured: int | None = None
        #: A failure of the line that another device (or a client's call) saw, for the poll loop.
        self._line_failure: LinkError | None = None
        self.set_change_event("State", True, False)
        self.set_change_event("Status", True, False)
        self._set_state(DevState.INIT, f"Connecting to {self.Url}")
        try:
            self.link = self.create_link()
        except LineConflict as exc:
            self.link = self.driver = None
            self.error_stream(str(exc))
            self._set_state(DevState.FAULT, f"Refused: {exc}; then run Init")
            return
        self.driver = self.create_driver(self.link)
        self._thread = threading.Thread(
            target=self._poll_loop, args=(self._stop, self.link), name=f"poll {self.get_name()}", daemon=True
        )
        self._thread.start()

    def delete_device(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            # an open() can take pyserial's 5 s connect time-out; the thread ends on its own stop
            # event even if it outlives this wait (Init makes new ones)
            self._thread.join(timeout=self.Timeout + 6)
        if self.link is not None:
            self.link.release(self.get_name())  # closed only if no other device is on it
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

    def call_driver(self, operation: Callable[..., T], *args: Any) -> T:
        """Run a driver operation for a client; errors become a DevFailed a person can act on."""
        origin = for_tango(f"{self.get_name()} {getattr(operation, '__name__', 'operation')}{args}")
        generation = self.link.generation
        try:
            result = operation(*args)
        except RejectedValue as exc:
            Except.throw_exception("ValueRejected", for_tango(f"{exc}; nothing was sent to the instrument"), origin)
        except LinkError as exc:
            self.link.lost(exc, generation)  # the line's failure: every device on it hears of it
            Except.throw_exception(
                "LinkError", for_tango(f"{exc}; the request may not have reached the instrument"), origin
            )
        except InstrumentError as exc:
            Except.throw_exception("InstrumentError", for_tango(str(exc)), origin)
        self._wake.set()
        return result

    def write_through(self, declared: polled, name: str, value: Any) -> None:
        """A client's write: the attribute's driver operation, then the value read back is what
        the next read returns (or the value written, when the operation returns nothing)."""
        operation, *leading = declared.operation
        sent = declared.labels[value] if declared.labels else value
        bound = operation.__get__(self.driver, type(self.driver))  # names itself in errors
        read_back = self.call_driver(bound, *leading, sent)
        if read_back is None:
            read_back = value
        elif declared.labels and isinstance(read_back, str):
            read_back = declared.labels.index(read_back)
        self._store(name, read_back, time.time(), self._quality(name, read_back), written=True)
        self._wake.set()

    def publish(self, values: dict[str, Any], when: float | None = None) -> None:
        """Cache values and push their events now (from a write, a command or an unasked frame).

        From a thread that holds the line (an unasked frame met during anyone's exchange, this
        device's poll thread) they are pushed by the poll thread once it lets go of the line:
        pushing an event may wait for the device's monitor, which a client's command holds
        while it waits for the line."""
        when = time.time() if when is None else when
        if threading.current_thread() is self._thread:
            self._unasked.append((values, when))
        elif self.link is not None and self.link.lock.held():
            self._unasked.append((values, when))
            self._wake.set()
        else:
            self._push(values, when)

    def _push(self, values: dict[str, Any], when: float) -> None:
        for name, value in values.items():
            self._store(name, value, when, INVALID if value is None else self._quality(name, value))

    def _push_unasked(self) -> None:
        while self._unasked:
            self._push(*self._unasked.pop(0))

    def add_polled_attribute(self, name: str, **kwargs: Any) -> None:
        """An attribute added at run time that behaves as a declared `polled` one: reads from
        the cache, events, quality by its alarm limits. `poll` (or `publish`) gives its value."""
        self.add_attribute(polled(name=name, **kwargs))
        self.set_change_event(name, True, True)  # what the declared ones get from their metadata
        self.set_archive_event(name, True, True)

    # -- the poll loop ------------------------------------------------------------------------

    def _poll_loop(self, stop: threading.Event, line: Line) -> None:
        failures = 0
        lost_since: float | None = None
        while not stop.is_set():
            started = time.monotonic()
            generation: int | None = None
            try:
                if (failure := self._line_failure) is not None:  # seen by another device
                    self._line_failure = None
                    raise failure
                generation = line.connect()
                configuring = generation != self._configured
                if configuring:  # the line is new to this device, or was reopened since
                    self._configured = None
                    self.on_connect()
                    self._configured = generation
                values = self.poll()
            except LinkError as exc:
                if generation is not None:
                    line.lost(exc, generation)
                lost_since = lost_since or time.time()
                delay = RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)]
                failures += 1
                if not stop.is_set():
                    self._fault(exc, lost_since, failures, delay)
                stop.wait(delay)
                continue
            except InstrumentError as exc:  # a refusal: the line stays up
                if self._configured is None:  # the instrument refused its configuration
                    lost_since = lost_since or time.time()
                    delay = RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)]
                    failures += 1
                    self._fault(exc, lost_since, failures, delay)
                    stop.wait(delay)
                else:
                    self._refused(exc)
                    self._idle(line, started + self.poll_period())
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
            self._push_unasked()
            self._publish_poll(values, configuring, started)
            self._idle(line, started + self.poll_period())

    def _line_lost(self, error: LinkError) -> None:
        """The line failed under another device or a client's call: the poll loop shows it."""
        if threading.current_thread() is not self._thread:
            self._line_failure = error
            self._wake.set()

    def _idle(self, line: Line, until: float) -> None:
        """Wait for the next poll (or a write's wake-up), handing on frames sent unasked."""
        listening = isinstance(line, Link) and line.listening
        while (remaining := until - time.monotonic()) > 0:
            if self._wake.wait(min(remaining, UNSOLICITED_CHECK_S) if listening else remaining):
                break
            if listening and line.is_open:
                generation = line.generation
                try:
                    line.route_waiting()
                except LinkError as exc:  # a drop, or garbage a driver found among the unasked frames
                    line.lost(exc, generation)
                    self._fault(exc, time.time(), 1, 0.0)  # the loop reconnects at once
                    break
                except InstrumentError as exc:
                    self.warn_stream(f"an unasked frame was refused: {exc}")
                finally:
                    self._push_unasked()
        self._wake.clear()

    def _publish_poll(self, values: dict[str, Any], connected_now: bool, started: float) -> None:
        now = time.time()
        in_alarm = []
        refused = {name: value.reason for name, value in values.items() if isinstance(value, Refused)}
        values = {name: None if name in refused else value for name, value in values.items()}
        for name, value in values.items():
            quality = INVALID if value is None else self._quality(name, value)
            if quality is ALARM:
                in_alarm.append(name)
            self._store(name, value, now, quality, polled_at=started)
        if connected_now:
            self._set_write_values(values)
        state, status = self.operating_state(values)
        if in_alarm and state in (DevState.ON, DevState.RUNNING):
            state = DevState.ALARM
            status = f"{status}; out of alarm limits: {', '.join(in_alarm)}"
        if refused:
            by_reason: dict[str, list[str]] = {}
            for name, why in refused.items():
                by_reason.setdefault(why, []).append(name)
            status += "; refused by the instrument: " + "; ".join(
                f"{', '.join(names)}: {why}" for why, names in by_reason.items()
            )
        self._set_state(*self.overrule_state(values, state, status))

    def overrule_state(self, values: dict[str, Any], state: DevState, status: str) -> tuple[DevState, str]:
        """The state and status a poll settles on, last word: a running long operation keeps
        MOVING or RUNNING (device_servers/core/operations.py); as found otherwise."""
        return state, status

    def _refused(self, exc: InstrumentError) -> None:
        """A whole poll refused: no value is known, the line stays up, the next poll comes as usual."""
        for name, (value, _, _) in list(self._cache.items()):
            self._store(name, value, time.time(), INVALID)
        self._set_state(DevState.ALARM, f"The instrument refused the reading: {exc} (the line stays up)")

    def _set_write_values(self, values: dict[str, Any]) -> None:
        """A client's write widget shows what the instrument holds, not a default."""
        attributes = self.get_device_attr()
        for name, value in values.items():
            if value is None:
                continue
            attr = attributes.get_attr_by_name(name)
            if attr.get_writable() == AttrWriteType.READ_WRITE:
                attributes.get_w_attr_by_name(name).set_write_value(value)

    def _store(
        self, name: str, value: Any, when: float, quality: AttrQuality, *,
        polled_at: float | None = None, written: bool = False,
    ) -> None:
        """Cache a reading and offer it as events; Tango drops those below the thresholds.

        A value a client wrote (read back) is newer than a poll that began before the write
        ended: that poll's reading of it is dropped. Checking and caching are one step under
        the lock; pushing is outside it, since a push may wait for the device's monitor, which
        a client's write holds while it stores its read-back here."""
        with self._cache_lock:
            if written:
                self._written_at[name] = time.monotonic()
            elif polled_at is not None and self._written_at.get(name, 0.0) >= polled_at:
                return
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
        set_state_and_status(self, state, for_tango(status))


def _written(value: Any) -> Any:
    """The value a client wrote: Tango hands an attribute added at run time its WAttribute."""
    return value.get_write_value() if isinstance(value, WAttribute) else value


def set_state_and_status(device: Device, state: DevState, status: str) -> None:
    """Set a device's state and status, pushing change events for what changed (the device
    declared State and Status as pushing their own events)."""
    changed = state != device.get_state()
    if changed or status != device.get_status():
        device.set_state(state)
        device.set_status(status)
        if changed:
            device.push_change_event("State")
        device.push_change_event("Status")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # "Not specified"
        return None


def _is_number(dtype: Any) -> bool:
    """int or float, scalar or array (enums and booleans need no threshold for change events)."""
    while isinstance(dtype, (tuple, list)):
        dtype = dtype[0]
    if _is_enum(dtype) or dtype in (bool, "bool", "DevBoolean"):
        return False
    return dtype in (int, float) or (isinstance(dtype, str) and dtype.lower().removeprefix("dev").startswith(
        ("double", "float", "short", "long", "ushort", "ulong", "int", "uint", "uchar")
    ))


def _is_enum(dtype: Any) -> bool:
    return isinstance(dtype, type) and issubclass(dtype, enum.Enum)


def _placeholder(dtype: Any) -> Any:
    """A value of the attribute's type for when there is none: clients see only INVALID."""
    if isinstance(dtype, (tuple, list)):  # a spectrum (one level) or an image (two)
        return [] if not isinstance(dtype[0], (tuple, list)) else [[]]
    if dtype in (str, "str", "DevString"):
        return ""
    if dtype in (float, "float", "DevDouble", "DevFloat"):
        return float("nan")
    if dtype in (bool, "bool", "DevBoolean"):
        return False
    return 0


__all__ = ["HardwareDevice", "Limits", "Refused", "polled", "shown", "writable"]
