"""A link to one GPIB instrument through the `GpibBus` device that owns the bus.

    gpib://lab/gpib/1/14                          address 14 behind the bus device lab/gpib/1
    gpib://tango://host:10000/lab/gpib/1/14       the same, with the bus device's full name

A driver runs on it exactly as on a serial link: `transaction` sends the request (framed by the
driver, terminator included) with the bus device's `QueryBytes` or `WriteBytes`, and cuts the
reply bytes with the same framing, so the driver does not know which transport it runs on. Every
byte crosses intact both ways, NUL included: an IEEE 488.2 binary block (a waveform) as well as
a text line. The time-out is
how long the instrument may take to start its reply (the Prologix accepts 1 ms to 3 s); waiting
for a turn on a busy bus comes on top of it.

A bus device that does not answer, a Prologix it has lost, or an address that does not answer
in time is a `LinkError` (the device using the link goes FAULT and reconnects); a reply the
framing cannot cut is a `GarbledReply`, as on a serial link. The scheme registers itself:
`line_for_url("gpib://...")` loads this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tango

from .errors import InstrumentError, LinkError, RejectedValue, shown
from .framing import Framing, FramingError
from .line import register_transport
from .link import Link

#: The instrument's reply time-out the Prologix accepts, in ms.
TIMEOUT_MS = (1, 3000)
#: Beyond the reply time-out, how long a call may wait for its turn on the bus (the bus device's
#: QueueTimeout, 10 s by default) plus the Tango round trip.
QUEUE_ALLOWANCE_S = 15.0


def parse_gpib_url(url: str) -> tuple[str, int]:
    """(bus device name, primary address) of `gpib://<bus device>/<address>`."""
    rest = url.removeprefix("gpib://")
    device, _, address = rest.rpartition("/")
    if not device or not address.isdigit() or not 0 <= int(address) <= 30:
        raise ValueError(f"{url!r} is not gpib://<bus device>/<address 0 to 30>, e.g. gpib://lab/gpib/1/14")
    return device, int(address)


class GpibLink(Link):
    """Address `address` on the bus that the `GpibBus` device `bus_device` serves."""

    def __init__(self, url: str, *, serial_options: Any = None, **options: Any) -> None:
        """`serial_options` are the bus's business (its controller's line), not this address's."""
        super().__init__(url, **options)
        self.bus_device, self.address = parse_gpib_url(url)
        self._proxy: tango.DeviceProxy | None = None
        self._proxy_timeout_ms = 0
        self._buffer = b""

    @property
    def is_open(self) -> bool:
        return self._proxy is not None

    def open(self) -> None:
        """Reach the bus device and check that it has its controller."""
        with self.lock:
            self.close()
            try:
                proxy = tango.DeviceProxy(self.bus_device)
                state = proxy.state()
                status = proxy.status() if state == tango.DevState.FAULT else ""
            except tango.DevFailed as exc:
                raise LinkError(f"bus device {self.bus_device} does not answer: {_description(exc)}") from exc
            if state == tango.DevState.FAULT:
                raise LinkError(f"bus device {self.bus_device} is FAULT: {status}")
            self._proxy = proxy
            self._proxy_timeout_ms = 0

    def close(self) -> None:
        with self.lock:
            self._proxy = None
            self._buffer = b""

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
        seconds = self.timeout if timeout is None else timeout
        timing = [min(max(round(seconds * 1000), TIMEOUT_MS[0]), TIMEOUT_MS[1]), self.address]
        message = (f"address={self.address} timeout_ms={timing[0]}", request)
        with self.lock:
            self.route_waiting(framing)
            if not reply:
                self._call("WriteBytes", message, seconds)
                return None
            self._buffer = self._call("QueryBytes", message, seconds)
            while True:
                while (parts := self._split(framing)) is None:
                    # the instrument's reply so far ends without a whole frame: read on
                    try:
                        self._buffer += self._call("Read", timing, seconds)
                    except LinkError as exc:
                        raise LinkError(f"{exc}; got {shown(self._buffer)} so far") from exc
                frame, self._buffer = parts
                payload = framing.payload(frame)
                if accept is None or accept(payload):
                    return payload
                self._route(payload)
                if not self._buffer:
                    self._buffer = self._call("Read", timing, seconds)

    def read_frame(self, timeout: float | None = None, framing: Framing | None = None) -> bytes:
        """The payload of the next frame the instrument sends, asked for or not."""
        framing = framing or self.framing
        seconds = self.timeout if timeout is None else timeout
        timing = [min(max(round(seconds * 1000), TIMEOUT_MS[0]), TIMEOUT_MS[1]), self.address]
        with self.lock:
            while (parts := self._split(framing)) is None:
                self._buffer += self._call("Read", timing, seconds)
            frame, self._buffer = parts
            return framing.payload(frame)

    def route_waiting(self, framing: Framing | None = None) -> None:
        """Frames left over from the last reply go to the listeners; an unfinished rest is dropped."""
        framing = framing or self.framing
        with self.lock:
            while self._buffer and (parts := self._split(framing)) is not None:
                frame, self._buffer = parts
                self._route(framing.payload(frame))
            self._buffer = b""

    # -- internals ------------------------------------------------------------------------------

    def _split(self, framing: Framing) -> tuple[bytes, bytes] | None:
        try:
            return framing.split(self._buffer)
        except FramingError as exc:
            self.lost(exc)
            raise

    def _call(self, name: str, argument: Any, seconds: float) -> bytes:
        if self._proxy is None:
            raise LinkError(f"{self.url} is not connected")
        proxy = self._proxy
        wanted = round((seconds + QUEUE_ALLOWANCE_S) * 1000)
        try:
            if wanted != self._proxy_timeout_ms:
                proxy.set_timeout_millis(wanted)
                self._proxy_timeout_ms = wanted
            result = proxy.command_inout(name, argument)
        except tango.DevFailed as exc:
            reason = exc.args[0].reason
            if reason == "ValueRejected":
                raise RejectedValue(f"{self.bus_device}: {exc.args[0].desc}") from exc
            if reason == "InstrumentError":
                raise InstrumentError(exc.args[0].desc) from exc
            what = f"{name} {shown(argument[1])}" if name != "Read" else name
            # GpibTimeout, GpibBusy, a lost Prologix, an unreachable bus device
            raise self.lost(LinkError(f"{what} via {self.bus_device} to address {self.address}: "
                                      f"{_description(exc)}")) from exc
        return b"" if result is None else bytes(result[1])


register_transport("gpib", GpibLink)


def _description(exc: tango.DevFailed) -> str:
    """The first description of a DevFailed, which says what went wrong, in one line."""
    return " ".join(exc.args[0].desc.split())[:300]
