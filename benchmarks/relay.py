"""Relay writes per second against a bare PyTango device's writable attribute, in the same run.

    python benchmarks/relay.py [--writes 5000] [--block 250] [--subscribed] [--apart]

Starts, through a real Tango database (the same launcher as `tangolab up`, on free ports), one
server process holding a Relay (`lab/relay/1`) and a bare PyTango device (`bench/bare/1`: one
writable float attribute that only stores the value), so that both share the process, the
database and the machine's scheduling; with --apart the bare device runs in a process of its own
(`DeviceTestContext`, no database) instead. Creates `bench_f1` with a `Put`, then alternates
blocks of `write_attribute` on each, so that the machine's slow moments hit both alike, in two
ways: by name (each call first asks the server for the attribute's type) and with the
`AttributeInfoEx` kept (one round trip: what the servers themselves cost). Prints each one's
median write latency, writes per second (median of the blocks' rates), and the relay's ratio to
the bare device (target: at least 0.8). The relay pushes a change and an archive event and
schedules the autosave on every write; with --subscribed a client listens to the change events.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time

import tango
from tango.server import Device, attribute
from tango.test_context import DeviceTestContext

from tangolab.lab_config import LabConfig, free_port
from tangolab.launcher import Lab

RELAY = "lab/relay/1"
BARE_DEVICE = "bench/bare/1"
SERVER = "RelayBench"
VARIABLE = "bench_f1"
BARE = "bare value"


class Bare(Device):
    """The baseline: one writable attribute, no events."""

    def init_device(self) -> None:
        super().init_device()
        self._value = 0.0

    @attribute(dtype=float)
    def value(self) -> float:
        return self._value

    @value.write
    def value(self, value: float) -> None:
        self._value = value


def serve_both() -> None:
    """The benchmark's server: Relay and Bare in one process (`benchmarks/relay.py --serve INSTANCE`)."""
    from device_servers.core.server import serve
    from device_servers.relay.device import Relay

    sys.argv = [SERVER, *sys.argv[sys.argv.index("--serve") + 1 :]]  # Tango's server name is argv[0]
    serve(Relay, Bare)


def bench_lab(properties: dict[str, list[str]], apart: bool) -> LabConfig:
    devices = {"Relay": {RELAY: {"properties": properties}}}
    if not apart:
        devices["Bare"] = {BARE_DEVICE: {}}
    return LabConfig({
        "servers": {SERVER: {"lab": devices}},
        "tangolab": {"commands": {SERVER: [sys.executable, __file__, "--serve"]}},
    })


def time_writes(proxy: tango.DeviceProxy, name: str | tango.AttributeInfoEx, count: int) -> tuple[list[float], float]:
    """Latencies of `count` writes, and the block's writes per second."""
    samples = []
    began = time.perf_counter()
    for number in range(count):
        start = time.perf_counter()
        proxy.write_attribute(name, float(number))
        samples.append(time.perf_counter() - start)
    return samples, count / (time.perf_counter() - began)


def main() -> int:
    if "--serve" in sys.argv:
        serve_both()
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=5000, help="writes to each (default %(default)s)")
    parser.add_argument("--block", type=int, default=250, help="writes per alternating block (default %(default)s)")
    parser.add_argument("--subscribed", action="store_true", help="a client subscribes to the variable's events")
    parser.add_argument("--apart", action="store_true", help="the bare device in a process of its own, no database")
    parser.add_argument("--autosave-period", type=float, help="the relay's AutosavePeriod property (default: its own)")
    args = parser.parse_args()
    properties = {} if args.autosave_period is None else {"AutosavePeriod": [str(args.autosave_period)]}

    with tempfile.TemporaryDirectory() as run_dir:
        lab = Lab(bench_lab(properties, args.apart), run_dir, f"127.0.0.1:{free_port()}")
        lab.start()
        try:
            with contextlib.ExitStack() as stack:
                bare = (stack.enter_context(DeviceTestContext(Bare, process=True)) if args.apart
                        else lab.proxy(BARE_DEVICE))
                relay = lab.proxy(RELAY)
                relay.Put([VARIABLE, "0.0"])
                events = []
                if args.subscribed:
                    relay.subscribe_event(VARIABLE, tango.EventType.CHANGE_EVENT, events.append)
                targets = {
                    f"{BARE}, by name": (bare, "value"),
                    f"relay {VARIABLE}, by name": (relay, VARIABLE),
                    f"{BARE}, info kept": (bare, bare.get_attribute_config("value")),
                    f"relay {VARIABLE}, info kept": (relay, relay.get_attribute_config(VARIABLE)),
                }
                for proxy, name in targets.values():
                    time_writes(proxy, name, 200)  # warm up connections
                latencies: dict[str, list[float]] = {label: [] for label in targets}
                rates: dict[str, list[float]] = {label: [] for label in targets}
                for _ in range(max(args.writes // args.block, 1)):
                    for label, (proxy, name) in targets.items():
                        samples, rate = time_writes(proxy, name, args.block)
                        latencies[label] += samples
                        rates[label].append(rate)
                saved = lab.database.get_device_attribute_property(RELAY, [VARIABLE])[VARIABLE]["relay_value"]
        finally:
            lab.stop()

    labels = list(targets)
    where = "a process of its own" if args.apart else "the relay's server process"
    print(f"write_attribute on {RELAY} (Relay) and a bare device in {where}, {args.writes} writes each, "
          f"alternating blocks of {args.block} (target: relay/bare >= 0.8)"
          f"{', events subscribed' if args.subscribed else ''}")
    for index, label in enumerate(labels):
        rate = statistics.median(rates[label])
        ratio = f"   ratio {rate / statistics.median(rates[labels[index - 1]]):.3f}" if index % 2 else ""
        print(f"  {label:32s} median {statistics.median(latencies[label]) * 1e6:8.1f} us"
              f"   {rate:8.0f} writes/s{ratio}")
    print(f"  value autosaved in the database when the writes ended: {''.join(saved)}"
          + (f"; change events received: {len(events)}" if args.subscribed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
