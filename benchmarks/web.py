"""The web monitor's fan-out: many browsers watching the same attributes, and one that stalls.

    python benchmarks/web.py [--clients 100] [--attributes 50] [--rate 10] [--seconds 10]

Starts, through a real Tango database and supervisor (the launcher of `tangolab up`, on free
ports), the web monitor and one server (`bench/ticker/1`) whose attributes `a00`... each push a
change event `--rate` times a second, its value the time it was pushed. Then `--clients`
server-sent event streams (asyncio sockets in `--processes` processes, as browsers would read) watch every
attribute. Prints the subscriptions the service holds (one per attribute, not one per browser),
the service's CPU, the updates each browser received per second, and the update latency (push
to arrival, p50 and p99), first with every browser reading, then with one more browser that
connects and never reads: the others' latency should not move.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import tango
from tango.server import Device

from tangolab.lab_config import LabConfig, free_port
from tangolab.launcher import Lab
from tangolab.web.settings import WebSettings

DEVICE = "bench/ticker/1"
SERVER = "WebBench"


class Ticker(Device):
    """Attributes a00... pushing their push time as change events, each `Rate` times a second."""

    def init_device(self) -> None:
        super().init_device()
        count, self.rate = int(os.environ["TICKER_ATTRIBUTES"]), float(os.environ["TICKER_RATE"])
        self.names = [f"a{i:02d}" for i in range(count)]
        for name in self.names:
            self.add_attribute(tango.Attr(name, tango.DevDouble, tango.AttrWriteType.READ), self.read_value)
            self.set_change_event(name, True, False)
        self.set_state(tango.DevState.ON)
        self._stop = threading.Event()
        threading.Thread(target=self._tick, daemon=True).start()

    def read_value(self, attribute: tango.Attribute) -> None:
        attribute.set_value(time.time())

    def _tick(self) -> None:
        with tango.EnsureOmniThread():
            attributes = [self.get_device_attr().get_attr_by_name(name) for name in self.names]
            period = 1.0 / self.rate
            due = time.monotonic()
            while not self._stop.is_set():
                for attribute in attributes:
                    attribute.set_value(time.time())
                    attribute.fire_change_event()
                due += period
                self._stop.wait(max(0.0, due - time.monotonic()))

    def delete_device(self) -> None:
        self._stop.set()


def bench_lab(attributes: int, rate: float) -> LabConfig:
    os.environ["TICKER_ATTRIBUTES"], os.environ["TICKER_RATE"] = str(attributes), str(rate)
    return LabConfig({
        "servers": {SERVER: {"bench": {"Ticker": {DEVICE: {}}}}},
        "tangolab": {"commands": {SERVER: [sys.executable, __file__, "--serve"]}, "web": {"port": free_port()}},
    })


class Browser:
    """One event stream, read with asyncio; `stall` connects and never reads."""

    def __init__(self, host: str, port: int, path: str, stall: bool = False) -> None:
        self.host, self.port, self.path, self.stall = host, port, path, stall
        self.latencies: list[float] = []
        self.received = 0
        self.recording = False

    async def run(self, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=2**20)
        writer.write(f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nAccept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        if self.stall:
            await stop.wait()
        else:
            while not stop.is_set():
                try:
                    line = await asyncio.wait_for(reader.readline(), 1.0)
                except TimeoutError:
                    continue
                if line.startswith(b"data: ") and self.recording:
                    arrived = time.time()
                    for update in json.loads(line[6:]):
                        if update["value"] is not None:
                            self.received += 1
                            self.latencies.append(arrived - update["value"])
        writer.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


WARM_UP = 3.0  # s for every stream to connect and fill before recording


async def _read_streams(host: str, port: int, path: str, clients: int, stalled: int, seconds: float) -> list[tuple]:
    browsers = [Browser(host, port, path) for _ in range(clients)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(b.run(stop)) for b in browsers]
    tasks += [asyncio.create_task(Browser(host, port, path, stall=True).run(stop)) for _ in range(stalled)]
    await asyncio.sleep(WARM_UP)
    for browser in browsers:
        browser.recording = True
    await asyncio.sleep(seconds)
    for browser in browsers:
        browser.recording = False
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return [(b.received, b.latencies) for b in browsers]


def read_streams(*args) -> list[tuple]:
    """One process's share of the browsers (several processes: the reading must not be the bottleneck)."""
    return asyncio.run(_read_streams(*args))


def measure(host: str, port: int, path: str, clients: int, stalled: int, seconds: float, processes: int,
            web_pid: int) -> dict:
    shares = [clients // processes + (i < clients % processes) for i in range(processes)]
    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(read_streams, host, port, path, share, stalled if i == 0 else 0, seconds)
                   for i, share in enumerate(shares)]
        time.sleep(WARM_UP + 1.0)  # the pool's processes start, then their streams warm up
        cpu = cpu_seconds(web_pid)
        time.sleep(seconds - 2.0)
        cpu = (cpu_seconds(web_pid) - cpu) / (seconds - 2.0)
        results = [browser for future in futures for browser in future.result()]
    latencies = sorted(x for _, browser in results for x in browser)
    return {"cpu": cpu, "rate": statistics.mean(received for received, _ in results) / seconds,
            "p50": latencies[len(latencies) // 2] if latencies else float("nan"),
            "p99": latencies[int(len(latencies) * 0.99)] if latencies else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--attributes", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0, help="events per second per attribute")
    parser.add_argument("--seconds", type=float, default=10.0, help="each measurement")
    parser.add_argument("--processes", type=int, default=4, help="processes reading the streams")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="web-bench-") as folder:
        lab = Lab(bench_lab(args.attributes, args.rate), folder, f"127.0.0.1:{free_port()}")
        lab.start(timeout=120)
        try:
            web = WebSettings.of(lab.config, lab.run_dir, lab.tango_host)
            names = ",".join(f"{DEVICE}/a{i:02d}" for i in range(args.attributes))
            path = f"/api/stream?attributes={names}"
            web_pid = lab.pid("web")
            print(f"{args.clients} browsers x {args.attributes} attributes at {args.rate:g} Hz "
                  f"({args.clients * args.attributes * args.rate:,.0f} updates/s to send at most)")
            for label, stalled in (("every browser reading", 0), ("one more browser stalled", 1)):
                figures = measure(web.probe_host, web.port, path, args.clients, stalled, args.seconds, args.processes,
                                  web_pid)
                with urllib.request.urlopen(f"http://{web.probe_host}:{web.port}/api/health", timeout=10) as reply:
                    subscriptions = json.load(reply)["subscriptions"]
                print(f"{label:26s} subscriptions {subscriptions} (of {args.attributes} attributes), "
                      f"service CPU {figures['cpu']:.0%} of a core, each browser {figures['rate']:,.0f} updates/s, "
                      f"latency p50 {figures['p50'] * 1000:.0f} ms, p99 {figures['p99'] * 1000:.0f} ms")
        finally:
            lab.stop()


if __name__ == "__main__":
    if "--serve" in sys.argv:
        sys.argv = [SERVER, *sys.argv[sys.argv.index("--serve") + 1:]]  # Tango's server name is argv[0]
        from tango.server import run

        run((Ticker,), raises=True)
    else:
        main()
