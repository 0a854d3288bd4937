"""The sustained rate of a stream from a device into an HDF5 file, and where its limit is.

    python benchmarks/stream.py [--seconds 60] [--channels 4] [--rate 1e6] [--block 100000] [--dtype f8]
                                [--sweep 2,4]

Paths, measured in the same run, one after the other:

- **core**: a core `Streaming` device fed by the core's `SyntheticSource` (4 channels x 1 MS/s by
  default, float64), its blocks recorded by `tangolab record` in another process into HDF5 for
  `--seconds`; lost blocks by the counters (the file's and the device's), the sustained rate,
  the CPU each process used, the bytes written a second;
- **bare**: a bare PyTango device pushing DevEncoded events of the same size as fast as it can
  for a few seconds, counted by a plain subscriber in this process: the ceiling of Tango's
  event path for blocks of that size on this machine;
- `--sweep 2,4`: the core path again, shorter, at 2 and 4 times the rate: how far above it goes;
- **zmq** and **afm** (to come with the epz simulator and `lab/afm/1`): the simulator's ZeroMQ
  block stream alone, and the full path simulator -> ForceSpectrometer -> `tangolab record`;
  add them to PATHS below.

Limits are shown as ratios of the same run: the machine is shared and noisy (PITFALLS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import tango
from tango.server import Device, attribute, device_property
from tango.test_context import DeviceTestContext

from device_servers.core.stream import BLOCK_FORMAT, Channel, Streaming, SyntheticSource
from tangolab.scripting import wait_until

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchStream(Streaming, Device):
    """The core stream path: synthetic ramps on each channel, `Rate` samples a second."""

    channels = tuple(Channel(f"ch{i}", "V") for i in range(4))
    Rate = device_property(dtype=float, default_value=1e6)
    BlockSamples = device_property(dtype=int, default_value=100_000)
    Dtype = device_property(dtype=str, default_value="f8")

    def create_source(self) -> SyntheticSource:
        return SyntheticSource(len(self.channels), self.Rate, self.BlockSamples, channel_offset=1.0,
                               dtype=self.Dtype)


def bench_stream(channels: int) -> type[BenchStream]:
    """BenchStream with `channels` channels (a class declares its channels)."""
    return type(BenchStream)("BenchStream", (BenchStream,),
                             {"channels": tuple(Channel(f"ch{i}", "V") for i in range(channels))})


class BarePusher(Device):
    """A bare PyTango device: one DevEncoded attribute pushed as fast as it can, `Bytes` a block."""

    Bytes = device_property(dtype=int, default_value=3_200_000)

    def init_device(self) -> None:
        super().init_device()
        self.set_change_event("block", True, False)
        self._stop = threading.Event()
        self._data = np.random.default_rng(0).bytes(self.Bytes)
        self._thread = threading.Thread(target=self._push, daemon=True)
        self._thread.start()

    def delete_device(self) -> None:
        self._stop.set()
        self._thread.join()

    def _push(self) -> None:
        while not self._stop.is_set():
            self.push_change_event("block", BLOCK_FORMAT, self._data)

    @attribute(dtype=tango.CmdArgType.DevEncoded)
    def block(self) -> tuple[str, bytes]:
        return BLOCK_FORMAT, b""



def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _server_pid(before: set[int]) -> int:
    """The child process DeviceTestContext started (the one that was not there before)."""
    (pid,) = _children() - before
    return pid


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError):
        return -1


def _children() -> set[int]:
    return {int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == os.getpid()}


def core_path(args: argparse.Namespace, rate: float, seconds: float) -> dict:
    """Device -> events -> `tangolab record` -> HDF5, in three processes."""
    properties = {"Rate": rate, "BlockSamples": args.block, "Dtype": args.dtype}
    before = _children()
    context = DeviceTestContext(bench_stream(args.channels), properties=properties, process=True, timeout=60)
    with context as proxy, tempfile.TemporaryDirectory(prefix="stream-bench-") as folder:
        device_pid = _server_pid(before)
        wait_until(lambda: proxy.state() == tango.DevState.ON, 60, what="streaming")
        out = Path(folder) / "run.h5"
        recorder = subprocess.Popen(
            [sys.executable, "-m", "tangolab", "record", context.get_device_access(), "--out", str(out),
             "--seconds", str(seconds), "--json", "--tango-host", "127.0.0.1:1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        device_cpu = _cpu_seconds(device_pid)
        started = time.monotonic()
        output = recorder.stdout.read()
        _, status, usage = os.wait4(recorder.pid, 0)
        recorder.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        device_cpu = _cpu_seconds(device_pid) - device_cpu
        if recorder.returncode:
            raise SystemExit(f"tangolab record failed ({recorder.returncode}): {output}")
        summary = json.loads(output.splitlines()[-1])
        with h5py.File(out) as f:
            duration = sum(
                len(f[group]["ch0"]) for group in f if group.startswith(("stream", "window"))
            ) / rate
            attrs = dict(f.attrs)
        size = out.stat().st_size
        return {
            "path": "core",
            "rate per channel": rate,
            "channels": args.channels,
            "sustained samples/s": summary["samples"] * args.channels / duration if duration else 0.0,
            "recorded s": duration,
            "blocks received": summary["blocks_received"],
            "blocks lost (dropped by device + lost on the way)": int(attrs["blocks_dropped_by_device"])
            + int(attrs["blocks_lost_on_the_way"]),
            "device blocks produced / dropped": (int(attrs["device_blocks_produced"]),
                                                 int(attrs["device_blocks_dropped"])),
            "gaps": summary["gaps"],
            "device CPU %": 100 * device_cpu / wall,
            "recorder CPU %": 100 * (usage.ru_utime + usage.ru_stime) / wall,
            "HDF5 MB/s": size / 1e6 / duration if duration else 0.0,
        }


def bare_path(args: argparse.Namespace, seconds: float = 5.0) -> dict:
    """A bare device pushing blocks of the same size as fast as it can; a plain subscriber counts them."""
    size = args.channels * args.block * np.dtype(args.dtype).itemsize
    before = _children()
    with DeviceTestContext(BarePusher, properties={"Bytes": size}, process=True, timeout=60) as proxy:
        device_pid = _server_pid(before)
        event_id = proxy.subscribe_event("block", tango.EventType.CHANGE_EVENT, 10_000)
        received = 0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # warm up: the subscription live
            received += len(proxy.get_events(event_id))
            time.sleep(0.01)
        proxy.get_events(event_id)  # what came before the count starts
        received, cpu_before = 0, _cpu_seconds(device_pid)
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            received += sum(1 for event in proxy.get_events(event_id) if not event.err)
            time.sleep(0.005)
        wall = time.monotonic() - started
        device_cpu = _cpu_seconds(device_pid) - cpu_before
        proxy.unsubscribe_event(event_id)
    return {
        "path": "bare",
        "block bytes": size,
        "received blocks/s": received / wall,
        "received MB/s": received * size / 1e6 / wall,
        "as samples/s of this block": received * args.channels * args.block / wall,
        "device CPU %": 100 * device_cpu / wall,
    }


#: The paths measured, in order; the epz engineer adds "zmq" (the simulator's ZeroMQ block stream
#: alone) and "afm" (simulator -> lab/afm/1 -> tangolab record) here.
PATHS: dict[str, Callable[[argparse.Namespace], list[dict]]] = {
    "core": lambda args: [core_path(args, args.rate, args.seconds)]
    + [core_path(args, args.rate * factor, min(args.seconds, 15.0)) for factor in args.sweep],
    "bare": lambda args: [bare_path(args)],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds recorded on the core path")
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1e6, help="samples a second per channel")
    parser.add_argument("--block", type=int, default=100_000, help="samples per channel in a block")
    parser.add_argument("--dtype", default="f8", help="sample type: f8, f4, i2 ...")
    parser.add_argument("--sweep", type=lambda text: [float(f) for f in text.split(",")], default=[],
                        help="also the core path at these multiples of --rate (shorter)")
    parser.add_argument("--paths", default=",".join(PATHS), help="which paths (%(default)s)")
    args = parser.parse_args()
    if args.channels < 1:
        parser.error("--channels must be at least 1")
    results = [result for name in args.paths.split(",") for result in PATHS[name](args)]
    for result in results:
        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}))
    core = next((r for r in results if r["path"] == "core"), None)
    bare = next((r for r in results if r["path"] == "bare"), None)
    if core and bare:
        wanted = args.channels * args.rate
        print(f"core path: {core['sustained samples/s'] / wanted:.2f} x the {wanted / 1e6:g} MS/s asked, "
              f"{core['blocks lost (dropped by device + lost on the way)']} block(s) lost; the bare event path "
              f"carries {bare['as samples/s of this block'] / wanted:.1f} x that rate in blocks of this size")
    os._exit(0)  # cppTango's exit handler can deadlock with subscriptions (PITFALLS.md)


if __name__ == "__main__":
    main()
