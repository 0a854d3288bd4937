"""`GpibBus`: one GPIB bus behind a Prologix GPIB-ETHERNET controller, shared by every client.

The Prologix takes one TCP client at a time, so this device is the only one that talks to it;
device servers in other processes and plain scripts reach an instrument through its commands,
usually through a `gpib://lab/gpib/1/14` link (device_servers/core/gpib_link.py):

    bus.Query([[1000, 14], ["READ?\\n"]])   # ('gpib', b'+1.234E-09A,+1.0E+02,+0.0E+00\\n')
    bus.Write([[1000, 15], ["C0X"]])
    bus.Read([1000, 14])                     # the next reply, without sending anything
    bus.QueryBytes(("address=17 timeout_ms=1000", b"DATA #41024...\\n"))   # any bytes, NUL too

Arguments: `[timeout_ms, address]` (the instrument's time to start its reply, 1 to 3000 ms: the
controller's `++read_tmo_ms` range) and the message with its terminator. `Query` and `Write`
take it as a string whose characters are the bytes (latin-1: every byte but NUL, which a Tango
string cannot carry: for people at Jive or itango); `QueryBytes` and `WriteBytes` take
`DevEncoded` ("address=N timeout_ms=T", bytes), every byte as it is: what a `gpib://` link
sends, so an IEEE 488.2 binary block (an arbitrary waveform) crosses intact. Replies are
`DevEncoded` ("gpib", bytes): every byte intact, terminator included, so a client's framing cuts
them exactly as on a direct link.

Each client call waits in a queue of its address; one bus thread serves the queues in turn
(round robin, so a busy or silent address cannot starve the others) and holds the controller
for one whole exchange at a time. While a call waits for its turn and its reply it lets go of
the device's Tango monitor (`AutoTangoAllowThreads`), so other clients' calls, State and
attribute reads go on meanwhile; every other device of the process keeps Tango's own
serialisation (the server is not switched to NO_SYNC).

Why a `HardwareDevice`: the base already gives what the controller link needs (open from the
`Url`, FAULT with the reason when the Prologix is lost, reconnection with back-off, polled
attributes with events). Its poll is a heartbeat, `++ver`, sent only when no exchange has shown
the controller alive since the last poll. An address that stops answering is not a lost link:
its clients get `GpibTimeout`, the device goes ALARM naming the address, the other addresses
keep working, and ON returns when it answers again.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import tango
from tango import AutoTangoAllowThreads, DevState, Except
from tango.server import command, device_property

from ..core.errors import InstrumentError, LinkError, RejectedValue
from ..core.hardware import HardwareDevice, polled
from ..core.link import Link
from ..core.server import serve
from .driver import ADDRESSES, LINES, NoReply, Prologix, check_address, check_timeout

#: Spectrum attributes indexed by GPIB primary address.
SLOTS = len(ADDRESSES)


@dataclass
class Request:
    """One client call waiting for the bus."""

    address: int
    message: bytes | None  # None: read only
    reply: bool
    timeout: float
    done: threading.Event = field(default_factory=threading.Event)
    started: bool = False
    result: bytes | None = None
    error: Exception | None = None


class GpibBus(HardwareDevice):
    """A GPIB bus through a Prologix GPIB-ETHERNET controller: queues per address, served in turn."""

    Url = device_property(dtype=str, mandatory=True, doc="The Prologix controller: socket://host:1234")
    PollPeriod = device_property(
        dtype=float, default_value=1.0, doc="Seconds between heartbeats (++ver) while the bus is idle"
    )
    QueueTimeout = device_property(
        dtype=float, default_value=10.0,
        doc="Seconds a call may wait for its turn on the bus before it is refused (GpibBusy)",
    )

    framing = LINES

    queries = polled(
        dtype=(int,), max_dim_x=SLOTS,
        doc="Exchanges completed per GPIB address (queries, reads and writes); index = address",
    )
    timeouts = polled(dtype=(int,), max_dim_x=SLOTS, doc="Replies not received in time, per GPIB address")
    addresses = polled(dtype=(int,), max_dim_x=SLOTS, doc="GPIB addresses that clients have used")
    queued = polled(dtype=int, doc="Calls waiting for the bus now")
    lastError = polled(dtype=str, doc="The last failure on the bus, with its time")

    # -- life cycle -----------------------------------------------------------------------------

    def init_device(self) -> None:
        self._turn = threading.Condition()
        self._queues: dict[int, deque[Request]] = {}
        self._last_served = -1
        self._served = [0] * SLOTS
        self._timed_out = [0] * SLOTS
        self._silent: dict[int, str] = {}
        self._last_error = ""
        self._alive_at = 0.0
        self._bus_stop = threading.Event()
        super().init_device()
        self._worker = threading.Thread(
            target=self._serve_queues, args=(self._bus_stop,), name=f"bus {self.get_name()}", daemon=True
        )
        self._worker.start()

    def delete_device(self) -> None:
        self._bus_stop.set()
        with self._turn:
            self._turn.notify_all()
        self._worker.join(timeout=5)
        with self._turn:
            for queue in self._queues.values():
                for request in queue:
                    request.error = LinkError(f"{self.get_name()} is shutting down")
                    request.done.set()
                queue.clear()
        super().delete_device()

    # -- HardwareDevice -------------------------------------------------------------------------

    def create_driver(self, link: Link) -> Prologix:
        return Prologix(link)

    def on_connect(self) -> None:
        self.driver.configure()
        self._alive_at = time.monotonic()
        self.info_stream(f"{self.Url}: {self.driver.version}")

    def poll(self) -> dict[str, Any]:
        if time.monotonic() - self._alive_at > self.PollPeriod:
            self.driver.read_version()
            self._alive_at = time.monotonic()
        with self._turn:
            waiting = sum(len(queue) for queue in self._queues.values())
            seen = sorted(self._queues)
        return {
            "queries": list(self._served),
            "timeouts": list(self._timed_out),
            "addresses": seen,
            "queued": waiting,
            "lastError": self._last_error,
        }

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        silent = dict(self._silent)
        if silent:
            others = [str(a) for a in values["addresses"] if a not in silent]
            answering = f"; address(es) {', '.join(others)} answer" if others else ""
            return DevState.ALARM, "; ".join(silent.values()) + answering
        return DevState.ON, f"Connected to {self.driver.version or self.Url}"

    # -- commands -------------------------------------------------------------------------------

    @command(
        dtype_in=tango.DevVarLongStringArray, doc_in="[[timeout_ms, address], [message]]",
        dtype_out=tango.DevEncoded, doc_out="('gpib', the reply's bytes as the instrument sent them)",
    )
    def Query(self, argument: Any) -> tuple[str, bytes]:
        """Send a message to the instrument at an address and return its reply."""
        timeout_ms, address, message = _unpack(argument)
        return "gpib", self._submit(address, message, timeout_ms, reply=True)

    @command(dtype_in=tango.DevVarLongStringArray, doc_in="[[timeout_ms, address], [message]]")
    def Write(self, argument: Any) -> None:
        """Send a message that gets no reply to the instrument at an address."""
        timeout_ms, address, message = _unpack(argument)
        self._submit(address, message, timeout_ms, reply=False)

    @command(
        dtype_in=tango.DevEncoded, doc_in="('address=N timeout_ms=T', the message's bytes, terminator included)",
        dtype_out=tango.DevEncoded, doc_out="('gpib', the reply's bytes as the instrument sent them)",
    )
    def QueryBytes(self, argument: Any) -> tuple[str, bytes]:
        """Send any bytes (a binary block too) to the instrument at an address; return its reply."""
        timeout_ms, address, message = _unpack_bytes(argument)
        return "gpib", self._submit(address, message, timeout_ms, reply=True)

    @command(dtype_in=tango.DevEncoded, doc_in="('address=N timeout_ms=T', the message's bytes, terminator included)")
    def WriteBytes(self, argument: Any) -> None:
        """Send any bytes that get no reply to the instrument at an address."""
        timeout_ms, address, message = _unpack_bytes(argument)
        self._submit(address, message, timeout_ms, reply=False)

    @command(
        dtype_in=tango.DevVarLongArray, doc_in="[timeout_ms, address]",
        dtype_out=tango.DevEncoded, doc_out="('gpib', the reply's bytes as the instrument sent them)",
    )
    def Read(self, argument: Any) -> tuple[str, bytes]:
        """Read the next reply of the instrument at an address, sending nothing."""
        if len(argument) != 2:
            _refuse("Read takes [timeout_ms, address]", "Read")
        timeout_ms, address = (int(value) for value in argument)
        return "gpib", self._submit(address, None, timeout_ms, reply=True)

    # -- the queues -----------------------------------------------------------------------------

    def _submit(self, address: int, message: bytes | None, timeout_ms: int, *, reply: bool) -> bytes | None:
        """Queue a call, wait for its turn and its end; failures become DevFailed saying why."""
        origin = f"{self.get_name()} address {address}"
        try:
            check_address(address)
            timeout = check_timeout(timeout_ms / 1000) / 1000
        except RejectedValue as exc:
            _refuse(f"{exc}; nothing was sent", origin)
        request = Request(address, message, reply, timeout)
        with self._turn:
            self._queues.setdefault(address, deque()).append(request)
            self._turn.notify_all()
        busy = ""
        with AutoTangoAllowThreads(self):  # other clients' calls go on while this one waits
            if not request.done.wait(self.QueueTimeout):
                with self._turn:
                    if not request.started:
                        self._queues[address].remove(request)
                        busy = f"({self._waiting()} call(s) waiting)"
                if not busy:  # it has the bus: the driver's deadlines end it
                    request.done.wait(timeout + self.Timeout + 5)
        if busy:
            Except.throw_exception(
                "GpibBusy", f"GPIB address {address}: no turn on the bus within {self.QueueTimeout:g} s "
                f"{busy}; nothing was sent", origin,
            )
        error = request.error
        if error is None and not request.done.is_set():
            error = LinkError(f"no end of the exchange with address {address}")
        if isinstance(error, NoReply):
            Except.throw_exception("GpibTimeout", str(error), origin)
        if isinstance(error, LinkError):
            Except.throw_exception("LinkError", f"Prologix {self.Url}: {error}", origin)
        if isinstance(error, RejectedValue):
            _refuse(f"{error}; nothing was sent", origin)
        if error is not None:
            Except.throw_exception("InstrumentError", f"GPIB address {address}: {error}", origin)
        return request.result

    def _waiting(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def _next(self) -> Request | None:
        """The next call, taking the addresses in turn after the one served last."""
        addresses = sorted(address for address, queue in self._queues.items() if queue)
        if not addresses:
            return None
        later = [address for address in addresses if address > self._last_served]
        self._last_served = (later or addresses)[0]
        return self._queues[self._last_served].popleft()

    def _serve_queues(self, stop: threading.Event) -> None:
        while True:
            with self._turn:
                while not stop.is_set() and (request := self._next()) is None:
                    self._turn.wait()
                if stop.is_set():
                    return
                request.started = True
            try:
                self._carry_out(request)
            except Exception as exc:  # noqa: BLE001 - a bug fails one call, not the bus thread
                request.error = exc
            finally:
                request.done.set()

    def _carry_out(self, request: Request) -> None:
        address = request.address
        try:
            if not self.link.is_open:
                raise LinkError("not connected (reconnecting)")
            if request.message is None:
                request.result = self.driver.read(address, request.timeout)
            elif request.reply:
                request.result = self.driver.query(address, request.message, request.timeout)
            else:
                self.driver.write(address, request.message)
        except NoReply as exc:
            self._timed_out[address] += 1
            self._silent[address] = f"GPIB address {address} silent since {_now()} ({exc})"
            self._failed(exc)
            raise
        except LinkError as exc:
            self.link.lost(exc)  # the controller's line: the poll loop shows FAULT and reconnects
            self._failed(exc)
            raise
        except InstrumentError as exc:
            self._failed(exc)
            raise
        self._served[address] += 1
        self._alive_at = time.monotonic()
        if self._silent.pop(address, None) is not None:
            self._wake.set()  # back to ON now, not at the next poll

    def _failed(self, exc: Exception) -> None:
        self._last_error = f"{_now()} {exc}"
        self._wake.set()  # the poll loop shows it (and reconnects a lost link) now


def _unpack(argument: Any) -> tuple[int, int, bytes]:
    numbers, texts = argument
    if len(numbers) != 2 or len(texts) != 1:
        _refuse("expected [[timeout_ms, address], [message]]", "GpibBus")
    try:
        message = texts[0].encode("latin-1")
    except UnicodeEncodeError:
        _refuse("the message must hold bytes (latin-1 characters) only", "GpibBus")
    return int(numbers[0]), int(numbers[1]), message


def _unpack_bytes(argument: Any) -> tuple[int, int, bytes]:
    """(timeout_ms, address, message) of ("address=N timeout_ms=T", bytes)."""
    header, message = argument
    try:
        fields = dict(field.split("=", 1) for field in header.split())
        return int(fields["timeout_ms"]), int(fields["address"]), bytes(message)
    except (KeyError, ValueError):
        _refuse(f"expected ('address=N timeout_ms=T', bytes), not the header {header!r}", "GpibBus")
        raise  # not reached: _refuse raises


def _refuse(description: str, origin: str) -> None:
    Except.throw_exception("ValueRejected", description, origin)


def _now() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def main() -> None:
    serve(GpibBus)


if __name__ == "__main__":
    main()
