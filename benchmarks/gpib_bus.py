"""Queries per second through the GpibBus device against a script talking to the Prologix itself.

    python benchmarks/gpib_bus.py [--queries 600] [--block 50]

Two simulated Prologix controllers, each with a Keithley 6485 at address 14 (seeded alike): a
reading at 1 PLC answers after its real conversion time, about 20 ms, plus the bus time. One is
served to a plain script (one TCP client, TCP_NODELAY, the message and `++read eoi` in one
write: the fastest way to ask); the other to the GpibBus device running in a server process of
its own (the Prologix takes one client, so the two paths cannot share one controller), which a
driver reaches through a `gpib://` link, as the Picoammeter device does. Blocks of `READ?` on
both alternate, so the machine's slow moments hit both alike. Prints queries per second and the
median time of a query on each path, and the ratio (target: the bus at least 0.8 of direct).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time

import tango
from tango.test_context import DeviceTestContext

from device_servers.core.framing import Lines
from device_servers.core.link import link_for_url
from device_servers.gpib.device import GpibBus
from simulators import run_in_thread
from simulators.keithley import Keithley6485
from simulators.prologix import PrologixSimulator
from tangolab.scripting import wait_until

ADDRESS = 14
#: The 6485 measuring at 1 PLC (20 ms at 50 Hz), zero check off, on both paths.
METER_SETUP = ("SYST:ZCH OFF", "CURR:NPLC 1")
SETUP = b"++savecfg 0\n++mode 1\n++auto 0\n++eoi 1\n++eos 2\n++read_tmo_ms 1000\n++addr %d\n" % ADDRESS


class DirectScript:
    """A script that owns a Prologix: `READ?` and `++read eoi` in one write, the reply up to LF."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socket.sendall(SETUP)
        self.pending = b""

    def query(self, message: bytes) -> bytes:
        self.socket.sendall(message + b"\n++read eoi\n")
        while b"\n" not in self.pending:
            chunk = self.socket.recv(4096)
            if not chunk:
                raise ConnectionError("the Prologix closed the connection")
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line

    def close(self) -> None:
        self.socket.close()


def time_queries(query, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        query()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=600, help="queries on each path (default %(default)s)")
    parser.add_argument("--block", type=int, default=50, help="queries per alternating block")
    args = parser.parse_args()

    direct_sim = PrologixSimulator({ADDRESS: Keithley6485(ADDRESS, seed=1)}, seed=1)
    bus_sim = PrologixSimulator({ADDRESS: Keithley6485(ADDRESS, seed=1)}, seed=1)
    with run_in_thread(direct_sim) as direct_served, run_in_thread(bus_sim) as bus_served:
        properties = {"Url": bus_served.url, "PollPeriod": 1.0, "Timeout": 1.0}
        context = DeviceTestContext(GpibBus, properties=properties, process=True, timeout=30)
        with context as bus:
            wait_until(lambda: bus.state() == tango.DevState.ON, 30, what="GpibBus connected")
            link = link_for_url(f"gpib://{context.get_device_access()}/{ADDRESS}", framing=Lines(b"\n"), timeout=1.0)
            link.open()
            script = DirectScript(direct_served.port)
            for line in METER_SETUP:
                script.socket.sendall(line.encode() + b"\n")
                link.write_line(line)
            paths = {
                "direct script -> Prologix": lambda: script.query(b"READ?"),
                "driver -> gpib:// -> GpibBus": lambda: link.query("READ?"),
            }
            for query in paths.values():
                time_queries(query, 20)  # warm up: connections, auto range settled
            samples: dict[str, list[float]] = {label: [] for label in paths}
            rates: dict[str, list[float]] = {label: [] for label in paths}
            for _ in range(max(args.queries // args.block, 1)):
                for label, query in paths.items():
                    block = time_queries(query, args.block)
                    samples[label] += block
                    rates[label].append(len(block) / sum(block))
            script.close()
            link.close()

    print(f"GPIB queries (Keithley 6485 READ? at 1 PLC), {len(samples[next(iter(samples))])} each, "
          f"alternating blocks of {args.block}")
    for label in paths:
        print(f"  {label:30s} {statistics.median(rates[label]):6.1f} queries/s (median of blocks)   "
              f"median query {statistics.median(samples[label]) * 1e3:6.2f} ms")
    direct, bus = (statistics.median(rates[label]) for label in paths)
    print(f"  ratio (bus / direct): {bus / direct:.3f}   (target: >= 0.8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
