"""`tangolab record DEVICE --out run.h5`: a streaming device's blocks into an HDF5 file, nothing lost unsaid.

The file (format `tangolab.record.1`):

- `/` attributes: the device, when recording started and ended, the block counters received
  (`first_block`, `last_block`, `blocks_received`, `blocks_dropped_by_device`,
  `blocks_lost_on_the_way`), the device's own counters at the end, `complete`;
- `/parameters`: the device's scalar attributes when recording started, one HDF5 attribute
  each (`<name>.unit` beside it when it has a unit);
- one group per continuous recording: `stream`, or, when the device has a save flag (a channel
  named `save`, as the epz board's), one `window_0001`, `window_0002`, ... per save window (the
  samples while the flag was up; the flag itself is not written). In each, a dataset per channel
  (chunked, extendable; its `unit` as an attribute) and `segments`: rows (index, first_time,
  period) from which the time of every sample follows: sample i of a segment starting at `index`
  was taken at `first_time + (i - index) * period`;
- `/gaps`: every gap, one row each (time, seconds, samples, blocks, group, index, cause): samples
  that were never measured or never arrived are a gap row, never values in a dataset.

A gap's length comes from the block times (the source's clock), its cause from the counters and
the blocks: blocks the device dropped (its buffer was full), blocks lost between the device and
this recorder (Tango's missed events, this recorder's queue full), the source lost (said by the
device in the first block after it), the device restarted.

Complete or absent: the file is written as `<out>.part` and renamed to `<out>` once closed, so a
file under the asked name is always whole; Ctrl-C (or SIGTERM) ends the recording cleanly. TSV
files (`--tsv`) are numbered after the output, `run_0001.tsv`, one per group as the original epz
recorder wrote one per save window: a time column (seconds since the group's first sample) and
a column per channel, tab-separated, gaps as `#` lines; each also written whole or not at all.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import h5py
import numpy as np
import tango

from .blocks import SAVE_CHANNEL, Block
from .events import Intake, attribute_name, error_text, is_loss

FORMAT = "tangolab.record.1"
#: Blocks waiting in Tango's queue between two takes; past it they are lost (and said).
QUEUE_BLOCKS = 256
#: Samples per HDF5 chunk of a channel's dataset.
CHUNK = 65_536
#: The stream's own attributes, not parameters of the measurement.
STREAM_ATTRIBUTES = {"block", "blocksproduced", "blocksdropped", "streamgaps", "samplingrate", "state", "status"}
PROGRESS_EVERY_S = 0.5  # on a terminal, in place
PROGRESS_LINE_EVERY_S = 5.0  # into a file or a pipe, a line each
GAP_ROW = np.dtype([("time", "f8"), ("seconds", "f8"), ("samples", "i8"), ("blocks", "i8"),
                    ("group", h5py.string_dtype()), ("index", "i8"), ("cause", h5py.string_dtype())])
SEGMENT_ROW = np.dtype([("index", "i8"), ("first_time", "f8"), ("period", "f8")])


@dataclass
class Counts:
    """What the counters say about a recording."""

    first_block: int = -1
    last_block: int = -1
    received: int = 0
    dropped_by_device: int = 0
    lost_on_the_way: int = 0
    gaps: int = 0
    samples: int = 0  # per channel, written
    interruptions: int = 0  # the stream stopped and came back with nothing missing

    @property
    def lost(self) -> int:
        return self.dropped_by_device + self.lost_on_the_way


@dataclass
class Gap:
    time: float
    seconds: float
    samples: int
    blocks: int
    cause: str


@dataclass
class _Group:
    """One continuous recording in the file: `stream` or a save window."""

    h5: h5py.Group
    datasets: list[h5py.Dataset]
    tsv: _Tsv | None
    first_time: float
    length: int = 0
    period: float = 0.0
    continuous: bool = False  # the next samples follow the last ones (no new segment)


class _Tsv:
    """A numbered TSV file as epz wrote them, written as `.part` and renamed when complete."""

    def __init__(self, path: Path, names: list[str], units: list[str]) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.file = open(self.part, "w")  # noqa: SIM115 - closed by close()
        columns = ["time/s"] + [f"{name}/{unit}" if unit else name for name, unit in zip(names, units)]
        self.file.write("# " + "\t".join(columns) + "\n")

    def write(self, seconds: np.ndarray, samples: np.ndarray) -> None:
        np.savetxt(self.file, np.column_stack((seconds, samples.T)), fmt="%.10g", delimiter="\t")

    def note(self, text: str) -> None:
        self.file.write(f"# {text}\n")

    def close(self) -> None:
        self.file.close()
        os.replace(self.part, self.path)


class Recording:
    """One HDF5 file being written from blocks, in counter order (see the module's docstring)."""

    def __init__(self, out: Path, device: str, names: list[str], units: list[str],
                 parameters: dict[str, tuple[Any, str]], tsv: bool = False) -> None:
        self.out, self.part = out, out.with_name(out.name + ".part")
        self.names, self.units, self.tsv = names, units, tsv
        self.gated = SAVE_CHANNEL in names
        self.save_index = names.index(SAVE_CHANNEL) if self.gated else None
        self.written = [i for i, name in enumerate(names) if i != self.save_index]
        self.counts = Counts()
        self.last: Block | None = None
        self.notes: list[str] = []  # what the event path said since the last block: part of the next gap's cause
        self.group: _Group | None = None
        self.groups = 0
        self.tsv_files = 0
        self.file = h5py.File(self.part, "w")
        self.file.attrs.update(format=FORMAT, device=device, started=_iso(time.time()), complete=False,
                               channels=[names[i] for i in self.written])
        table = self.file.create_group("parameters")
        for name, (value, unit) in parameters.items():
            table.attrs[name] = value
            if unit:
                table.attrs[f"{name}.unit"] = unit
        self.gaps = self.file.create_dataset("gaps", (0,), GAP_ROW, maxshape=(None,), chunks=(64,))

    # -- what the recorder calls --------------------------------------------------------------

    def note(self, text: str) -> None:
        """Something the event path said (events missed, the device gone): the next gap's cause."""
        if text not in self.notes:
            self.notes.append(text)

    def add(self, block: Block) -> bool:
        """Write a block; False if it was one already written (a re-read of the last block)."""
        last = self.last
        restarted = False
        if last is not None and block.counter <= last.counter:
            if block.first_time < last.end_time - block.period / 2:
                return False
            restarted = True  # counters began again: a new server process
        gap = self._gap(last, block, restarted) if last is not None else None
        self.last = block
        counts = self.counts
        if counts.first_block < 0:
            counts.first_block = block.counter
        counts.last_block, counts.received = block.counter, counts.received + 1
        if gap is not None:
            self._write_gap(gap, block)
        if self.gated:
            self._add_gated(block)
        else:
            if self.group is None:
                self.group = self._open_group("stream", block.first_time)
            self._append(self.group, block.samples, block.first_time, block.period)
        return True

    def close(self, device_counters: dict[str, int]) -> None:
        """Finish the file and give it its name: from now on it is complete."""
        self._close_group()
        counts = self.counts
        self.file.attrs.update(
            ended=_iso(time.time()), first_block=counts.first_block, last_block=counts.last_block,
            blocks_received=counts.received, blocks_dropped_by_device=counts.dropped_by_device,
            blocks_lost_on_the_way=counts.lost_on_the_way, gap_count=counts.gaps, samples=counts.samples,
            interruptions=counts.interruptions, complete=True,
            **{f"device_{name}": value for name, value in device_counters.items()},
        )
        self.file.close()
        os.replace(self.part, self.out)

    def abandon(self) -> None:
        """After a failure: close what is open, leave only the `.part` files."""
        try:
            self.file.close()
        finally:
            if self.group is not None and self.group.tsv is not None:
                self.group.tsv.file.close()

    # -- gaps ---------------------------------------------------------------------------------

    def _gap(self, last: Block, block: Block, restarted: bool) -> Gap | None:
        """What is missing between two blocks, and why; None when nothing is."""
        missing = 0 if restarted else block.counter - last.counter - 1
        samples = round((block.first_time - last.end_time) / block.period)
        causes = []
        if restarted:
            causes.append("the device began its stream again (its block counter started anew)")
        if missing > 0:
            dropped = min(block.dropped_before, missing)
            on_the_way = missing - dropped
            self.counts.dropped_by_device += dropped
            self.counts.lost_on_the_way += on_the_way
            if dropped:
                causes.append(f"{dropped} block(s) dropped by the device (its buffer was full)")
            if on_the_way:
                causes.append(f"{on_the_way} block(s) lost between the device and the recorder")
        if block.gap_before:
            causes.append(block.gap_before)
        causes.extend(self.notes)
        self.notes = []
        if samples <= 0 and missing <= 0:
            if causes:
                self.counts.interruptions += 1
            return None
        self.counts.gaps += 1
        return Gap(last.end_time, max(samples, 0) * block.period, max(samples, 0), max(missing, 0),
                   "; ".join(causes) or "the time base jumped between two consecutive blocks")

    def _write_gap(self, gap: Gap, block: Block) -> None:
        group = self.group
        if group is not None:
            group.continuous = False
            if group.tsv is not None:
                group.tsv.note(f"gap: {gap.samples} samples ({gap.seconds:.6g} s) missing: {gap.cause}")
            if self.gated and not block.samples[self.save_index, 0]:
                self._close_group()  # the save flag went down somewhere in the gap
        row = (gap.time, gap.seconds, gap.samples, gap.blocks, group.h5.name.lstrip("/") if group else "",
               group.length if group else -1, gap.cause)
        self.gaps.resize((self.gaps.shape[0] + 1,))
        self.gaps[-1] = row

    # -- groups -------------------------------------------------------------------------------

    def _add_gated(self, block: Block) -> None:
        """Write the samples taken while the save flag was up, a group per save window."""
        up = block.samples[self.save_index] != 0
        edges = np.flatnonzero(np.diff(np.concatenate(([False], up, [False])).astype(np.int8)))
        for start, stop in zip(edges[::2], edges[1::2]):
            if start > 0 or self.group is None:
                self._close_group()
                self.groups += 1
                self.group = self._open_group(f"window_{self.groups:04d}", block.first_time + start * block.period)
            self._append(self.group, block.samples[:, start:stop], block.first_time + start * block.period,
                         block.period)
            if stop < block.length:
                self._close_group()
        if not up.any():
            self._close_group()

    def _open_group(self, name: str, first_time: float) -> _Group:
        h5 = self.file.create_group(name)
        h5.attrs["first_time"] = first_time
        h5.attrs["started"] = _iso(first_time)
        datasets = []
        for i in self.written:
            dataset = h5.create_dataset(self.names[i], (0,), self.last.samples.dtype, maxshape=(None,),
                                        chunks=(CHUNK,))
            dataset.attrs["unit"] = self.units[i]
            datasets.append(dataset)
        h5.create_dataset("segments", (0,), SEGMENT_ROW, maxshape=(None,), chunks=(64,))
        tsv = None
        if self.tsv:
            self.tsv_files += 1
            path = self.out.with_name(f"{self.out.stem}_{self.tsv_files:04d}.tsv")
            tsv = _Tsv(path, [self.names[i] for i in self.written], [self.units[i] for i in self.written])
            h5.attrs["tsv"] = path.name
        return _Group(h5, datasets, tsv, first_time)

    def _append(self, group: _Group, samples: np.ndarray, first_time: float, period: float) -> None:
        count = samples.shape[1]
        if not group.continuous or period != group.period:
            segments = group.h5["segments"]
            segments.resize((segments.shape[0] + 1,))
            segments[-1] = (group.length, first_time, period)
            group.continuous, group.period = True, period
        for dataset, i in zip(group.datasets, self.written):
            dataset.resize((group.length + count,))
            dataset[group.length:] = samples[i]
        if group.tsv is not None:
            seconds = first_time - group.first_time + np.arange(count) * period
            group.tsv.write(seconds, samples[self.written])
        group.length += count
        self.counts.samples += count

    def _close_group(self) -> None:
        group, self.group = self.group, None
        if group is None:
            return
        group.h5.attrs["samples"] = group.length
        if group.tsv is not None:
            group.tsv.close()


@dataclass
class Progress:
    """The progress line: samples a second (all channels), blocks, lost."""

    stream: TextIO | None
    started: float = field(default_factory=time.monotonic)
    shown_at: float = 0.0
    samples_at_start: int = 0

    def show(self, device: str, counts: Counts, channels: int, end: str = "") -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        interactive = self.stream.isatty()
        if not end and now - self.shown_at < (PROGRESS_EVERY_S if interactive else PROGRESS_LINE_EVERY_S):
            return
        self.shown_at = now
        elapsed = max(now - self.started, 1e-9)
        rate = counts.samples * channels / elapsed
        line = (f"{device}: {_si(rate)}S/s, {counts.received} blocks, {counts.lost} lost, {counts.gaps} gap(s), "
                f"{elapsed:.1f} s")
        self.stream.write(("\r" + line + "\x1b[K" if interactive else line + "\n") if not end else
                          ("\r" if interactive else "") + line + end)
        self.stream.flush()


def record(device: str, out: Path, seconds: float | None = None, tsv: bool = False,
           progress: TextIO | None = sys.stderr, stop: threading.Event | None = None) -> Recording:
    """Record a streaming device's blocks into `out` until `stop` is set or `seconds` have passed
    since the first block; returns the closed recording (its `counts`)."""
    stop = stop or threading.Event()
    proxy = tango.DeviceProxy(device)
    names = list(proxy.channelNames)
    units = list(proxy.channelUnits)
    recording = Recording(out, device, names, units, _parameters(proxy), tsv)
    intake = Intake(queue_size=QUEUE_BLOCKS)
    shown = Progress(progress)
    first_block_at: float | None = None
    try:
        feed = intake.add(attribute_name(device, "block"))
        if progress is not None:
            progress.write(f"recording {device} into {out}: Ctrl-C ends it\n")
            progress.flush()
        shown.started = shown.shown_at = time.monotonic()
        while not stop.is_set():
            events = feed.take()
            for event in events:
                if event.err:
                    recording.note(("events lost: " if is_loss(event) else "the device's events failed: ")
                                   + error_text(event.errors))
                elif event.attr_value is not None and event.attr_value.quality != tango.AttrQuality.ATTR_INVALID:
                    recording.add(Block.decode(event.attr_value.value))
                    first_block_at = first_block_at or time.monotonic()
            shown.show(device, recording.counts, len(recording.written))
            if seconds is not None and first_block_at is not None and time.monotonic() - first_block_at >= seconds:
                break
            if not events:
                stop.wait(0.01)
        recording.close(_device_counters(proxy))
    except BaseException:
        recording.abandon()
        raise
    finally:
        intake.close()
    shown.show(device, recording.counts, len(recording.written), end="\n")
    return recording


def _parameters(proxy: tango.DeviceProxy) -> dict[str, tuple[Any, str]]:
    """The device's scalar attributes now (value, unit): what the measurement was taken with."""
    infos = [info for info in proxy.attribute_list_query_ex()
             if info.data_format == tango.AttrDataFormat.SCALAR and info.name.lower() not in STREAM_ATTRIBUTES
             and info.data_type != tango.CmdArgType.DevEncoded]
    parameters = {}
    for info in infos:
        try:
            reading = proxy.read_attribute(info.name)
        except tango.DevFailed:
            continue
        if reading.quality == tango.AttrQuality.ATTR_INVALID or reading.value is None:
            continue
        value = reading.value
        if info.data_type == tango.CmdArgType.DevEnum:
            value = info.enum_labels[int(value)]
        elif info.data_type == tango.CmdArgType.DevState:
            value = str(value)
        parameters[info.name] = (value, "" if info.unit in ("", "No unit") else info.unit)
    return parameters


def _device_counters(proxy: tango.DeviceProxy) -> dict[str, int]:
    try:
        return {"blocks_produced": int(proxy.blocksProduced), "blocks_dropped": int(proxy.blocksDropped),
                "stream_gaps": int(proxy.streamGaps)}
    except tango.DevFailed:
        return {}


def run(device: str, out: Path, seconds: float | None, tsv: bool) -> Recording:
    """`record` from the command line: Ctrl-C and SIGTERM end the recording cleanly (between two
    blocks, never in the middle of writing one)."""
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        return record(device, out, seconds, tsv, sys.stderr, stop)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def summary(recording: Recording) -> str:
    """What the counters prove, in one line."""
    counts = recording.counts
    if counts.received == 0:
        return f"{recording.out}: no block received"
    span = counts.last_block - counts.first_block + 1
    said = (f"{recording.out}: blocks {counts.first_block}..{counts.last_block}, {counts.received} received, "
            f"{counts.samples} samples per channel in {recording.groups or 1} group(s); ")
    if counts.lost == 0 and counts.gaps == 0:
        return said + "nothing lost" + (f" ({span} consecutive blocks)" if span == counts.received else "")
    return said + (f"{counts.dropped_by_device} block(s) dropped by the device, {counts.lost_on_the_way} lost on the "
                   f"way, {counts.gaps} gap(s) written in /gaps")


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when).astimezone().isoformat(timespec="milliseconds")


def _si(value: float) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.2f} {prefix}"
    return f"{value:.0f} "
