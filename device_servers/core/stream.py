"""Streams: a device that acquires continuously publishes its samples as numbered blocks.

A streaming device mixes `Streaming` into its Tango class, declares its `channels` and builds
its `Source` in `create_source`; everything else happens here once:

    class Oscilloscope(Streaming, Device):
        channels = (Channel("deflection", "V"), Channel("piezo", "um"))

        def create_source(self) -> Source:
            return MyBoardSource(...)          # open / read / close, LinkError when lost

        def init_device(self):
            super().init_device()              # Streaming starts its threads here

(with `HardwareDevice`: `class ForceSpectrometer(Streaming, HardwareDevice)`, Streaming first.)

What a client sees:

- `block` (DevEncoded, format `BLOCK_FORMAT`): one change event per block, every block, nothing
  compared (no threshold on samples) and never an archive event. A block carries, atomically,
  its counter, the time of its first sample, the sample period and the samples of every channel
  (`tangolab.blocks.Block.decode(event.attr_value.value)`: the format is shared with clients).
  Counters are consecutive as the source delivered the blocks: a counter missing at a client is
  a block the device dropped (the next block says how many in `dropped_before`) or one lost on
  the way to that client.
- `<channel>View` (spectrum, the channel's unit): the last `ViewSeconds` of the channel as
  min/max pairs per pixel, `[min0, max0, min1, max1, ...]`, at most `ViewRate` (<= 10) updates a
  second: what Taurus and the GUI draw, at any sample rate.
- `blocksProduced`, `blocksDropped`, `streamGaps`, `samplingRate`, `channelNames`, `channelUnits`.

Why a DevEncoded and not an IMAGE of channels x samples: an image cannot carry the counter, the
first-sample time and the period in the same event as its samples (a second attribute would be
a second event, and the pair could be torn); one DevEncoded is one ZeroMQ message, bytes copied
once, whatever the sample type (int16 from an ADC stays 2 bytes a sample).

Losing the source (`read` raising `LinkError`, or no block for `StreamTimeout` s) makes the
device FAULT with the reason at once, counts a gap in `streamGaps`, and reconnects with back-off;
the first block after it says why samples before it are missing (`gap_before`): a recorder
writes a gap there, never samples that were not measured.

The acquisition thread only reads the source into a bounded buffer (`StreamBuffer` blocks), so
a slow publisher never stalls the source (a ZeroMQ socket past its high-water mark would drop
silently); a full buffer drops the incoming block and counts it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

import numpy as np
from tango import AttrQuality, CmdArgType, DevFailed, DevState
from tango.server import Device, attribute, device_property

from tangolab.blocks import BLOCK_FORMAT, SAVE_CHANNEL, Block

from .errors import LinkError, for_tango
from .hardware import HardwareDevice, set_state_and_status

#: Seconds between tries to reopen a lost source: from the first to the last, then the last.
REOPEN_DELAYS_S = (0.1, 0.25, 0.5, 1.0, 2.0)
#: The most decimated views a second, whatever ViewRate says.
MAX_VIEW_RATE = 10.0
#: The longest a source's read waits, so that the acquisition thread sees silence and its stop.
READ_WAIT_S = 0.05

VALID, INVALID = AttrQuality.ATTR_VALID, AttrQuality.ATTR_INVALID


@dataclass(frozen=True)
class Channel:
    """One signal of a stream: its name (also its view's prefix: `<name>View`) and unit."""

    name: str
    unit: str = ""
    description: str = ""


@dataclass(frozen=True)
class Samples:
    """What a source delivers at a time: samples of every channel, `data[channel, sample]`.

    `missed` says why samples just before these never reached the source (its own counter
    jumped, the board overflowed); "" when they follow the previous ones."""

    first_time: float
    period: float
    data: np.ndarray
    missed: str = ""


class Source(Protocol):
    """Where a stream's samples come from; only the acquisition thread calls it.

    `open` and `read` raise `LinkError` when the source is unreachable or lost; `read` returns
    None when nothing came within `timeout` seconds."""

    def open(self) -> None: ...

    def read(self, timeout: float) -> Samples | None: ...

    def close(self) -> None: ...


class MinMaxView:
    """The last `pixels` pixels of every channel, each the min and max of `per_pixel` samples.

    Samples are reduced as they come (a block costs one pass over it), so a view is ready at
    any rate; what is left over of a pixel waits for the next block."""

    def __init__(self, channels: int, pixels: int) -> None:
        self.channels, self.pixels = channels, pixels
        self.per_pixel = 0
        self._clear()

    def _clear(self) -> None:
        self.mins = np.empty((self.channels, 0))
        self.maxs = np.empty((self.channels, 0))
        self._rest = np.empty((self.channels, 0))

    def add(self, samples: np.ndarray, per_pixel: int) -> None:
        """Reduce new samples; a new `per_pixel` (the rate changed) starts the view again."""
        if per_pixel != self.per_pixel:
            self.per_pixel = per_pixel
            self._clear()
        samples = np.concatenate((self._rest, samples), axis=1) if self._rest.shape[1] else samples
        whole = samples.shape[1] // per_pixel * per_pixel
        self._rest = samples[:, whole:].astype(float)
        if whole:
            pixels = samples[:, :whole].reshape(self.channels, -1, per_pixel)
            self.mins = np.concatenate((self.mins, pixels.min(axis=2)), axis=1)[:, -self.pixels:]
            self.maxs = np.concatenate((self.maxs, pixels.max(axis=2)), axis=1)[:, -self.pixels:]

    def view(self, channel: int) -> np.ndarray:
        """`[min0, max0, min1, max1, ...]` of one channel, oldest pixel first."""
        return np.column_stack((self.mins[channel], self.maxs[channel])).ravel()


class SyntheticSource:
    """A source that needs no instrument: ramps that give every sample's index away
    (`data[c, i] = first_index + i + c * channel_offset`), paced in real time, in blocks of
    `block_samples`; for demonstrations, tests and benchmarks. Samples are due when their
    time has come, so a reader that fell behind catches up at once."""

    def __init__(self, channels: int, rate: float, block_samples: int, channel_offset: float = 1e12,
                 dtype: Any = np.float64) -> None:
        self.channels, self.period, self.block_samples = channels, 1.0 / rate, block_samples
        self.offsets = (np.arange(channels) * channel_offset).astype(dtype)[:, None]
        self.dtype = dtype
        self.start: float | None = None
        self.index = 0  # of the next sample to deliver

    def open(self) -> None:
        if self.start is None:
            self.start = time.time()
        else:  # the samples due while closed were never delivered, as on a board that kept sampling
            self.index = self._due_index(time.time())

    def _due_index(self, now: float) -> int:
        """The first sample of the block being sampled now."""
        return int((now - self.start) / self.period) // self.block_samples * self.block_samples

    def read(self, timeout: float) -> Samples | None:
        ready = self.start + (self.index + self.block_samples) * self.period
        wait = ready - time.time()
        if wait > timeout:
            time.sleep(timeout)
            return None
        if wait > 0:
            time.sleep(wait)
        first = self.index
        self.index += self.block_samples
        ramp = np.arange(first, first + self.block_samples).astype(self.dtype)  # integer types wrap round
        return Samples(self.start + first * self.period, self.period, ramp[None, :] + self.offsets)

    def close(self) -> None:
        pass


class Streaming(Device):
    """A device that acquires continuously and publishes blocks (see the module's docstring).

    A class declares `channels` and `create_source`; `on_stream_lost` / `on_stream_back` say
    what losing the source does to the device's state (FAULT with the reason, by default)."""

    channels: ClassVar[Sequence[Channel]] = ()

    StreamTimeout = device_property(
        dtype=float, default_value=0.5,
        doc="Seconds without a block after which the source counts as lost (FAULT, a gap counted)",
    )
    StreamBuffer = device_property(
        dtype=int, default_value=32, doc="Blocks held between the source and their events; more are dropped"
    )
    ViewSeconds = device_property(dtype=float, default_value=1.0, doc="Seconds of signal each <channel>View shows")
    ViewPixels = device_property(dtype=int, default_value=500, doc="Min/max pairs in each <channel>View")
    ViewRate = device_property(
        dtype=float, default_value=MAX_VIEW_RATE, doc=f"<channel>View updates a second (at most {MAX_VIEW_RATE:g})"
    )

    # -- what a device class provides ---------------------------------------------------------

    def create_source(self) -> Source:
        """The source of this device's samples (not opened yet: the acquisition thread opens it)."""
        raise NotImplementedError

    def on_stream_lost(self, reason: str) -> None:
        """The source is lost (the reason says how and since when): FAULT, unless overridden."""
        set_state(self, DevState.FAULT, reason)

    def on_stream_back(self) -> None:
        """Blocks come (again, after a loss): ON, unless overridden; a HardwareDevice's poll loop
        is woken to set the state its instrument is in."""
        if isinstance(self, HardwareDevice):
            self._wake.set()
        else:
            set_state(self, DevState.ON, f"Streaming {len(self.channels)} channel(s)")

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        """With `HardwareDevice`: a lost stream is FAULT whatever the poll found."""
        if self._lost is not None:
            return DevState.FAULT, self._lost[0]
        return super().operating_state(values)  # type: ignore[misc]  # HardwareDevice's

    # -- life cycle ---------------------------------------------------------------------------

    def init_device(self) -> None:
        self._buffer: deque[Block] = deque()
        self._ready = threading.Condition()
        self._produced = 0  # blocks the source delivered, dropped ones included
        self._dropped = 0
        self._gaps = 0
        self._pending_drops = 0  # dropped since the last block buffered: told by the next one
        self._pending_gap = ""  # why samples before the next block buffered are missing
        self._lost: tuple[str, float] | None = None  # (reason, since) while the source is lost
        self._period = 0.0
        self._last_block: tuple[str, bytes, float, AttrQuality] | None = None
        super().init_device()  # a HardwareDevice's poll loop starts here and may ask operating_state
        self._view = MinMaxView(len(self.channels), max(1, self.ViewPixels))
        self._stream_stop = threading.Event()
        for name in ("State", "Status", "block", "blocksProduced", "blocksDropped", "streamGaps", "samplingRate"):
            self.set_change_event(name, True, False)
        if self.get_state() in (DevState.UNKNOWN, DevState.INIT):
            set_state(self, DevState.INIT, "Waiting for the first block")
        self._add_views()
        self._source = self.create_source()
        self._stream_threads = [
            threading.Thread(target=target, args=(self._stream_stop,), name=f"{what} {self.get_name()}", daemon=True)
            for target, what in ((self._acquire, "acquire"), (self._publish, "publish"))
        ]
        for thread in self._stream_threads:
            thread.start()

    def _add_views(self) -> None:
        """`<channel>View` for each channel (kept across Init: added once)."""
        for index, channel in enumerate(self.channels):
            name = f"{channel.name}View"
            try:
                self.get_device_attr().get_attr_by_name(name)
                continue
            except DevFailed:
                pass
            self.add_attribute(attribute(
                name=name, dtype=(float,), max_dim_x=2 * max(1, self.ViewPixels), unit=channel.unit,
                fget=lambda device, *_, index=index: device._view.view(index),
                doc=f"{channel.name}: min and max of each pixel, [min0, max0, min1, max1, ...], over the last "
                "ViewSeconds, oldest first",
            ))
            self.set_change_event(name, True, False)

    def delete_device(self) -> None:
        self._stream_stop.set()
        with self._ready:
            self._ready.notify_all()
        for thread in self._stream_threads:
            thread.join(timeout=2 * READ_WAIT_S + 1)
        self._source.close()
        super().delete_device()

    # -- attributes ---------------------------------------------------------------------------

    @attribute(dtype=CmdArgType.DevEncoded, doc="The last block: counter, first-sample time, period and "
               "samples of every channel (tangolab.blocks.Block.decode); one change event per block")
    def block(self) -> tuple[str, bytes, float, AttrQuality]:
        return self._last_block or (BLOCK_FORMAT, b"", time.time(), INVALID)

    @attribute(dtype=int, doc="Blocks the source delivered since the device started, dropped ones included")
    def blocksProduced(self) -> int:
        return self._produced

    @attribute(dtype=int, doc="Blocks the device dropped because its buffer was full (its events fell behind)")
    def blocksDropped(self) -> int:
        return self._dropped

    @attribute(dtype=int, doc="Interruptions of the stream: the source lost, or samples it missed")
    def streamGaps(self) -> int:
        return self._gaps

    @attribute(dtype=float, unit="Hz", doc="Samples per second and channel, from the last block")
    def samplingRate(self) -> float:
        return 1.0 / self._period if self._period else 0.0

    @attribute(dtype=(str,), max_dim_x=64, doc="The channels of each block, in order")
    def channelNames(self) -> list[str]:
        return [channel.name for channel in self.channels]

    @attribute(dtype=(str,), max_dim_x=64, doc="The unit of each channel, in order")
    def channelUnits(self) -> list[str]:
        return [channel.unit for channel in self.channels]

    # -- the acquisition thread: source -> buffer ---------------------------------------------

    def _acquire(self, stop: threading.Event) -> None:
        source, is_open, failures = self._source, False, 0
        last_block = time.monotonic()
        while not stop.is_set():
            try:
                if not is_open:
                    source.open()
                    is_open, last_block = True, time.monotonic()
                samples = source.read(READ_WAIT_S)
            except LinkError as exc:
                if is_open:
                    source.close()
                    is_open = False
                self._lose(f"{type(exc).__name__}: {exc}")
                stop.wait(REOPEN_DELAYS_S[min(failures, len(REOPEN_DELAYS_S) - 1)])
                failures += 1
                continue
            except Exception as exc:  # noqa: BLE001 - a bug must show as FAULT, not end the stream
                self._lose(f"the source failed: {type(exc).__name__}: {exc}")
                stop.wait(REOPEN_DELAYS_S[-1])
                continue
            if samples is None:
                silent = time.monotonic() - last_block
                if silent > self.StreamTimeout:
                    self._lose(f"no block for {silent:.1f} s")
                continue
            failures, last_block = 0, time.monotonic()
            self._take(samples)

    def _lose(self, reason: str) -> None:
        if self._lost is not None:
            return
        since = time.time()
        self._gaps += 1
        self._lost = (f"Stream lost: {reason} (since {_clock(since)})", since)
        self.error_stream(self._lost[0])
        self.on_stream_lost(self._lost[0])

    def _take(self, samples: Samples) -> None:
        """Number a source's samples and buffer them as a block, or drop them if the buffer is full."""
        counter = self._produced
        self._produced += 1
        if self._lost is not None:
            reason, since = self._lost
            self._pending_gap = _joined(self._pending_gap, f"{reason.removesuffix(')')} until {_clock(time.time())})")
            self._lost = None
            self.info_stream(f"Stream back after {time.time() - since:.1f} s")
            self.on_stream_back()
        elif counter == 0:
            self.on_stream_back()
        if samples.missed:
            self._gaps += 1
            self._pending_gap = _joined(self._pending_gap, samples.missed)
        with self._ready:
            if len(self._buffer) >= max(1, self.StreamBuffer):
                self._dropped += 1
                self._pending_drops += 1
                return
            self._buffer.append(Block(counter, samples.first_time, samples.period, samples.data,
                                      self._pending_drops, self._pending_gap))
            self._pending_drops, self._pending_gap = 0, ""
            self._ready.notify()

    # -- the publishing thread: buffer -> events ----------------------------------------------

    def _publish(self, stop: threading.Event) -> None:
        view_every = 1.0 / min(max(self.ViewRate, 0.1), MAX_VIEW_RATE)
        next_view = time.monotonic()
        while not stop.is_set():
            with self._ready:
                if not self._buffer:
                    self._ready.wait(max(0.0, next_view - time.monotonic()))
                block = self._buffer.popleft() if self._buffer else None
            try:
                if block is not None:
                    self._push_block(block)
                if time.monotonic() >= next_view:
                    next_view = time.monotonic() + view_every
                    self._push_views()
            except Exception as exc:  # noqa: BLE001 - the stream must outlive one failed push
                self.error_stream(f"publishing the stream: {type(exc).__name__}: {exc}")

    def _push_block(self, block: Block) -> None:
        encoded = block.encode()
        self._last_block = (*encoded, block.first_time, VALID)
        self._period = block.period
        self.push_change_event("block", *encoded, block.first_time, VALID)
        per_pixel = max(1, round(self.ViewSeconds / block.period / max(1, self.ViewPixels)))
        self._view.add(block.samples, per_pixel)

    def _push_views(self) -> None:
        now = time.time()
        for index, channel in enumerate(self.channels):
            self.push_change_event(f"{channel.name}View", self._view.view(index), now, VALID)
        for name, value in (("blocksProduced", self._produced), ("blocksDropped", self._dropped),
                            ("streamGaps", self._gaps), ("samplingRate", 1.0 / self._period if self._period else 0.0)):
            self.push_change_event(name, value, now, VALID)


def set_state(device: Device, state: DevState, status: str) -> None:
    set_state_and_status(device, state, for_tango(status))


def _clock(when: float) -> str:
    return datetime.fromtimestamp(when).strftime("%H:%M:%S.%f")[:-3]


def _joined(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second


__all__ = [
    "BLOCK_FORMAT",
    "SAVE_CHANNEL",
    "Block",
    "Channel",
    "MinMaxView",
    "Samples",
    "Source",
    "Streaming",
    "SyntheticSource",
]
