"""What the window knows of the lab without ever asking on the GUI thread.

`LabWatch` lists the devices of the whole Tango database (every few seconds, so a device added
later shows up), and gives each device a thread of its own that reads its State every half
second with a one-second time-out. That is how the window learns within a second or two that
a server died or hangs, where Taurus (through the Tango client library) notices only at its
10 s keep-alive check and shows stale values in green until then. When a device answers again
its interface (attributes, commands) is read anew on the same thread and announced, so panels
opened while it was down fill in.

`Background` runs other blocking work (Taurus model creation, writes, commands) on a small
pool and hands the result back on the GUI thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import tango
from taurus.external.qt import Qt

PERIOD = 0.5  # seconds between two State reads of one device
TIMEOUT_MS = 1000  # a device that does not answer within this is shown as not answering
LIST_PERIOD = 5.0  # seconds between two listings of the database's devices
SKIPPED_CLASSES = {"DServer", "DataBase"}
NOT_EXPORTED = "its server is not running (not exported in the database)"
OVERSEER_PERIOD = 0.2  # seconds between two looks for calls in flight too long
NOT_RUNNING_PERIOD = 2.0  # seconds between two looks at a device whose server the database says is not running


@dataclass(frozen=True)
class Health:
    """A device as the window last saw it: answering (with its State) or not (with why)."""

    alive: bool
    state: str = "UNKNOWN"
    reason: str = ""
    since: float = field(default_factory=time.time, compare=False)


@dataclass(frozen=True)
class DeviceInfo:
    """A device's interface, read when it answered."""

    name: str
    tango_class: str
    attributes: tuple  # tango.AttributeInfoEx, declaration order
    commands: tuple  # tango.CommandInfo

    @property
    def attribute_names(self) -> list[str]:
        return [info.name for info in self.attributes]

    def attribute(self, name: str):
        return next((info for info in self.attributes if info.name.lower() == name.lower()), None)


def reason_of(error: tango.DevFailed, timeout_s: float = TIMEOUT_MS / 1000) -> str:
    """What a person needs to know of a failed call, in a few words."""
    reasons = {err.reason for err in error.args}
    if reasons & {"API_DeviceTimedOut", "API_DeviceTimeout"} or any("TIMEOUT" in r for r in reasons):
        return f"not answering within {timeout_s:g} s"
    if "API_DeviceNotExported" in reasons:
        return NOT_EXPORTED
    if "DB_DeviceNotDefined" in reasons:
        return "not defined in the database"
    if reasons & {"API_CantConnectToDevice", "API_ServerNotRunning"} or any("TRANSIENT" in r for r in reasons):
        return "its server does not answer (not running?)"
    return error.args[0].desc.strip().splitlines()[0] if error.args else "unreachable"


class Background(Qt.QObject):
    """Blocking work on threads; `then(result, error)` runs on the GUI thread afterwards."""

    _done = Qt.pyqtSignal(object, object, object)

    def __init__(self, workers: int = 4, parent=None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="gui-background")
        self._done.connect(self._deliver, Qt.Qt.QueuedConnection)
        self._closed = False

    def run(self, job: Callable[[], object], then: Callable[[object, Exception | None], None] | None = None) -> None:
        def work() -> None:
            try:
                result, error = job(), None
            except Exception as exc:  # noqa: BLE001 - handed to `then`, which says it to the user
                result, error = None, exc
            if then is not None and not self._closed:
                try:
                    self._done.emit(then, result, error)
                except RuntimeError:  # the window is gone
                    pass

        if not self._closed:
            self._pool.submit(work)

    def _deliver(self, then, result, error) -> None:
        try:
            then(result, error)
        except RuntimeError as exc:  # a widget deleted while its work ran
            if "deleted" not in str(exc):
                raise

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)


class LabWatch(Qt.QObject):
    """Devices of the database, their health and their interface, as Qt signals."""

    listed = Qt.pyqtSignal(dict)  # device name -> Tango class, whole database
    health = Qt.pyqtSignal(str, object)  # device, Health (on every change)
    described = Qt.pyqtSignal(str, object)  # device, DeviceInfo (when it answers after not answering)

    def __init__(self, tango_host: str, period: float = PERIOD, timeout_ms: int = TIMEOUT_MS, parent=None) -> None:
        super().__init__(parent)
        self.tango_host = tango_host
        self.period, self.timeout_ms = period, timeout_ms
        self.devices: dict[str, str] = {}
        self.healths: dict[str, Health] = {}
        self.infos: dict[str, DeviceInfo] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._calling: dict[str, float] = {}  # device -> when its State call in flight started
        self._lister = threading.Thread(target=self._list_loop, name="gui-watch-list", daemon=True)
        self._overseer = threading.Thread(target=self._overseer_loop, name="gui-watch-overseer", daemon=True)

    def start(self) -> None:
        self._lister.start()
        self._overseer.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in [self._lister, self._overseer, *self._threads.values()]:
            if thread.is_alive():
                thread.join(timeout=3)

    def full(self, device: str) -> str:
        return f"tango://{self.tango_host}/{device}"

    def watch(self, device: str) -> None:
        """Watch a device even if the database listing has not shown it yet."""
        with self._lock:
            if device in self._threads or self._stop.is_set():
                return
            thread = threading.Thread(target=self._device_loop, args=(device,), name=f"gui-watch {device}", daemon=True)
            self._threads[device] = thread
        thread.start()

    # -- threads --------------------------------------------------------------------------------

    def _emit(self, signal, *args) -> None:
        if not self._stop.is_set():
            try:
                signal.emit(*args)
            except RuntimeError:  # the window is gone
                self._stop.set()

    def _list_loop(self) -> None:
        host, _, port = self.tango_host.rpartition(":")
        database = None
        while not self._stop.is_set():
            try:
                database = database or tango.Database(host, int(port))
                found = {}
                for server in database.get_server_list():
                    pairs = list(database.get_device_class_list(server))
                    for name, tango_class in zip(pairs[::2], pairs[1::2]):
                        if tango_class not in SKIPPED_CLASSES:
                            found[name.lower()] = tango_class
            except tango.DevFailed:
                database = None  # the database is down: try again next time, keep what we had
            else:
                if found != self.devices:
                    self.devices = found
                    self._emit(self.listed, dict(found))
                for name in found:
                    self.watch(name)
            self._stop.wait(LIST_PERIOD)

    def _device_loop(self, device: str) -> None:
        proxy = None
        described = False
        while not self._stop.is_set():
            started = time.monotonic()
            self._calling[device] = started
            try:
                if proxy is None:
                    proxy = tango.DeviceProxy(self.full(device))
                    proxy.set_timeout_millis(self.timeout_ms)
                state = proxy.state()
                if not described:
                    self._describe(device, proxy)
                    described = True
                health = Health(True, str(state))
            except tango.DevFailed as error:
                health = Health(False, "UNKNOWN", reason_of(error, self.timeout_ms / 1000))
                described = False  # read the interface again when it is back (it may have changed)
            finally:
                self._calling.pop(device, None)
            self._report(device, health)
            period = NOT_RUNNING_PERIOD if health.reason == NOT_EXPORTED else self.period
            self._stop.wait(max(0.0, period - (time.monotonic() - started)))

    def _overseer_loop(self) -> None:
        """A hung server (stopped, deadlocked, swapping) holds a call far longer than its time-out
        (omniORB: 3-5 s on a stopped process): say so once a call is late, not when it returns."""
        late = self.timeout_ms / 1000
        while not self._stop.wait(OVERSEER_PERIOD):
            now = time.monotonic()
            for device, started in list(self._calling.items()):
                if now - started > late and self.healths.get(device, Health(True)).alive:
                    self._report(device, Health(False, "UNKNOWN", f"not answering within {late:g} s"))

    def _report(self, device: str, health: Health) -> None:
        """Announce a device's health if it changed (alive kept since when it became so)."""
        with self._lock:
            last = self.healths.get(device)
            if last is not None and (health.alive, health.state, health.reason) == (last.alive, last.state, last.reason):
                return
            if last is not None and last.alive == health.alive:
                health = Health(health.alive, health.state, health.reason, last.since)
            self.healths[device] = health
        self._emit(self.health, device, health)

    def _describe(self, device: str, proxy: tango.DeviceProxy) -> None:
        proxy.set_timeout_millis(3000)
        try:
            info = DeviceInfo(
                device,
                proxy.info().dev_class,
                tuple(proxy.attribute_list_query_ex()),
                tuple(proxy.command_list_query()),
            )
        finally:
            proxy.set_timeout_millis(self.timeout_ms)
        self.infos[device] = info
        self._emit(self.described, device, info)
