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
- **zmq**: the epz board simulator's ZeroMQ block stream alone (4 channels, float32), read by a
  plain subscriber for 10 s: what the source can give;
- **afm**: the full path: the epz simulator -> `ForceSpectrometer` (lab/afm/1's class: the 4
  channels and the save flag) -> `tangolab record` in another process -> HDF5, for `--seconds`,
  lost blocks by the counters. The board samples at most 1 MS/s a channel.

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
    with context:
        return {"path": "core", "rate per channel": rate, "channels": args.channels,
                **_recorded(context, _server_pid(before), "ch0", args.channels, rate, seconds)}


def _recorded(context: DeviceTestContext, device_pid: int, channel: str, channels: int, rate: float,
              seconds: float) -> dict:
    """A streaming device's blocks recorded by `tangolab record` in another process for `seconds`:
    the sustained rate, the counters, the CPU of device and recorder, the bytes written."""
    proxy = context.device
    with tempfile.TemporaryDirectory(prefix="stream-bench-") as folder:
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
                len(f[group][channel]) for group in f if group.startswith(("stream", "window"))
            ) / rate
            attrs = dict(f.attrs)
        size = out.stat().st_size
    return {
        "sustained samples/s": summary["samples"] * channels / duration if duration else 0.0,
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


class EpzBoard:
    """The epz board simulator in a process of its own, on free ports, sampling at `rate` (at most
    1 MS/s: its sample period is a whole number of microseconds)."""

    def __init__(self, rate: float) -> None:
        from device_servers.core.zmq_link import ZmqLink
        from tangolab.lab_config import free_port

        self.ports = (free_port(), free_port(), free_port())
        self.url = "zmq://127.0.0.1:{}/{}/{}".format(*self.ports)
        self.period_us = max(1, round(1e6 / rate))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "simulators", "epz", "--port", str(self.ports[0]), "--subscribe-port",
             str(self.ports[1]), "--file-port", str(self.ports[2]), "--control-port", "0", "--seed", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.process.stdout.readline()  # listening
        self.link = ZmqLink(self.url, timeout=10.0)
        self.link.connect()
        self.link.exchange("NANOUP:REQPAR:GET_DEVICE_TYPE", "NANOUP:SNDPAR:a:")
        self.link.publish(f"NANOUP:CMD:SET_TIM8PER:{self.period_us}")
        self.link.exchange("NANOUP:REQPAR:GET_TIM8PER", "NANOUP:SNDPAR:8:", accept=lambda reply: reply.endswith(
            f":{self.period_us}"))

    def close(self) -> None:
        self.link.close()
        self.process.terminate()
        self.process.wait(10)


def zmq_path(args: argparse.Namespace, seconds: float = 10.0) -> dict:
    """The epz simulator's ZeroMQ block stream alone, 4 channels float32, read by a plain subscriber."""
    from device_servers.afm import protocol

    board = EpzBoard(args.rate)
    try:
        with board.link.subscriber("NANOUP:BLOCK:") as blocks:
            blocks.receive(10.0)
            samples = received = missed = 0
            last, cpu_before, started = None, _cpu_seconds(board.process.pid), time.monotonic()
            while time.monotonic() - started < seconds:
                parts = blocks.receive(1.0)
                if parts is None:
                    continue
                block = protocol.parse_block(parts)
                samples += block.samples.size
                received += 1
                missed += 0 if last is None else block.counter - last - 1
                last = block.counter
            wall = time.monotonic() - started
            board_cpu = _cpu_seconds(board.process.pid) - cpu_before
    finally:
        board.close()
    return {
        "path": "zmq", "rate per channel": 1e6 / board.period_us, "channels": len(protocol.CHANNELS),
        "received samples/s": samples / wall, "blocks/s": received / wall, "blocks missed": missed,
        "simulator CPU %": 100 * board_cpu / wall,
    }


def afm_path(args: argparse.Namespace) -> dict:
    """The epz simulator -> lab/afm/1's class (ForceSpectrometer) -> `tangolab record` -> HDF5."""
    from device_servers.afm.device import ForceSpectrometer

    board = EpzBoard(args.rate)
    before = _children()
    try:
        context = DeviceTestContext(ForceSpectrometer, properties={"Url": board.url}, process=True, timeout=60)
        with context as proxy:
            device_pid = _server_pid(before)
            wait_until(lambda: proxy.state() == tango.DevState.ON, 60, what="lab/afm/1 on the board")
            proxy.save = True  # the recorder writes the save windows
            channels = len(proxy.channelNames)
            return {"path": "afm", "rate per channel": 1e6 / board.period_us, "channels": channels,
                    **_recorded(context, device_pid, "deflection", channels, 1e6 / board.period_us, args.seconds)}
    finally:
        board.close()


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


#: The paths measured, in order.
PATHS: dict[str, Callable[[argparse.Namespace], list[dict]]] = {
    "core": lambda args: [core_path(args, args.rate, args.seconds)]
    + [core_path(args, args.rate * factor, min(args.seconds, 15.0)) for factor in args.sweep],
    "bare": lambda args: [bare_path(args)],
    "zmq": lambda args: [zmq_path(args)],
    "afm": lambda args: [afm_path(args)],
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
    for result in results:
        if result["path"] == "afm":
            wanted = result["channels"] * result["rate per channel"]
            print(f"afm path: {result['sustained samples/s'] / wanted:.2f} x the {wanted / 1e6:g} MS/s the board "
                  f"sent, {result['blocks lost (dropped by device + lost on the way)']} block(s) lost")
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
