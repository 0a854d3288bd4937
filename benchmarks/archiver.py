"""Sustained archiving rate, honest lag and CPU per value: 20 device servers push events, the Archiver stores them.

    python benchmarks/archiver.py [--rates 4000] [--seconds 10] [--intake 1,2] [--postgres URL]

A lab is brought up by the same launcher as `tangolab up`: the embedded database, the Archiver
and 20 `EventSource` servers (defined below, each its own process) pushing change events of one
double attribute at a set rate. For each rate per source, first the floor: a bare Python
process (`drain` below) subscribes to the same attributes and only takes their events, without
storing them, and its CPU seconds per 100,000 events are measured. Then, for each number of
intake processes (the Archiver's `IntakeProcesses`), the values per second that reach the
database, the write lag the Archiver reported (largest and median) beside how late the archive
really ended (the last value stored after the last push), the Archiver's CPU seconds (its
intake processes included) per 100,000 values stored and its ratio to the floor, and the
accounts of every pushed value: each source pushes the numbers after its previous count, so
the archive is checked value by value (lost: pushed, never stored; twice: stored more than
once). The same run measures the store's raw batched insert rate and the time of a
one-million-point query, so the figures compare on this machine's present load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import tango
from archiver_store import insert_rate, query_time  # beside this file
from tango.server import Device, attribute, command

from device_servers.archiver.subscription import QUEUE_SIZE
from tangolab.archive import open_store
from tangolab.lab_config import LabConfig, free_port
from tangolab.launcher import Lab
from tangolab.scripting import wait_until

SOURCES = 20
ARCHIVER = "bench/archiver/1"
DRAIN_PERIOD = 0.02  # s between two drains, as the Archiver's


class EventSource(Device):
    """Pushes change events of `value` at a given rate, for a given time, counting them.

    It offers change events only, so the Archiver takes its fallback from archive events. It
    fires them through the attribute object: `push_change_event` costs about 30 us of Python
    argument handling per call, `fire_change_event` about 6, and the 20 sources share the two
    cores with the Archiver they are measuring.
    """

    def init_device(self) -> None:
        super().init_device()
        self.pushed = 0
        self.set_change_event("value", True, False)
        self.set_state(tango.DevState.ON)

    @attribute(dtype=float)
    def value(self) -> float:
        return float(self.pushed)

    @attribute(dtype=int)
    def pushedCount(self) -> int:
        return self.pushed

    @command(dtype_in=(float,), doc_in="[events per second, seconds]")
    def Push(self, argin: list[float]) -> None:
        threading.Thread(target=self._push, args=(argin[0], argin[1]), daemon=True).start()

    def _push(self, rate: float, seconds: float) -> None:
        self.set_state(tango.DevState.RUNNING)
        value = self.get_device_attr().get_attr_by_name("value")
        start, sent, total = time.perf_counter(), 0, int(rate * seconds)
        while sent < total:  # every 0.1 s, the events due by then: in bursts, as instruments do
            due = min(int((time.perf_counter() - start) * rate) + 1, total)
            for _ in range(due - sent):
                self.pushed += 1
                value.set_value_date_quality(float(self.pushed), time.time(), tango.AttrQuality.ATTR_VALID)
                value.fire_change_event()
            sent = due
            time.sleep(0.1)
        self.set_state(tango.DevState.ON)


def bench_lab(folder: str, store: str) -> LabConfig:
    sources = {f"bench{i}": {"EventSource": {f"bench/source/{i}": {}}} for i in range(1, SOURCES + 1)}
    return LabConfig({
        "servers": {  # the launcher starts them in this order
            "EventSource": sources,
            "Archiver": {"bench": {"Archiver": {ARCHIVER: {"properties": {"Store": [store]}}}}},
        },
        "tangolab": {"commands": {"EventSource": [sys.executable, str(Path(__file__).resolve()), "serve"]}},
    })


def push(sources: list[tango.DeviceProxy], rate: float, seconds: float) -> list[int]:
    """Start every source pushing; returns their counts before."""
    counts_before = [source.pushedCount for source in sources]
    for source in sources:
        source.command_inout("Push", [rate, seconds])
    return counts_before


def pushed_all(sources: list[tango.DeviceProxy], counts_before: list[int], per_source: int) -> None:
    wait_until(lambda: all(source.state() == tango.DevState.ON for source in sources), 60)
    assert [source.pushedCount - before for source, before in zip(sources, counts_before)] == [per_source] * SOURCES


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU of a process, and of its children (the Archiver's intake processes)."""
    own = children = 0.0
    for proc in Path("/proc").iterdir():
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        if proc.name == str(pid):
            own += seconds
        elif fields[1] == str(pid):  # its parent
            children += seconds
    return own, children


def floor_round(lab: Lab, rate: float, seconds: float) -> dict[str, float]:
    """A bare process drains the events of one round without storing them: its CPU per event."""
    sources = [lab.proxy(f"bench/source/{i}") for i in range(1, SOURCES + 1)]
    expected = int(rate * seconds) * SOURCES
    drainer = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "drain", lab.tango_host, str(expected), str(seconds * 10 + 60)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert drainer.stdout.readline().strip() == "ready"
        counts_before = push(sources, rate, seconds)
        result = json.loads(drainer.stdout.readline())
        drainer.wait(30)
    finally:
        if drainer.poll() is None:
            drainer.kill()
            drainer.wait()
    pushed_all(sources, counts_before, int(rate * seconds))
    return {"events": result["events"], "cpu per 100k": result["cpu"] / max(result["events"], 1) * 1e5}


def drain(tango_host: str, expected: int, timeout: float) -> None:
    """The floor: take the sources' events as the Archiver does (queues, every DRAIN_PERIOD), nothing more."""
    proxies = [tango.DeviceProxy(f"tango://{tango_host}/bench/source/{i}") for i in range(1, SOURCES + 1)]
    ids = [proxy.subscribe_event("value", tango.EventType.CHANGE_EVENT, QUEUE_SIZE) for proxy in proxies]
    first = [0] * SOURCES  # the value each subscription reads first is not the round's

    def read_first() -> bool:
        for n, (proxy, event_id) in enumerate(zip(proxies, ids)):
            first[n] += len(proxy.get_events(event_id))
        return min(first) > 0

    wait_until(read_first, 10, interval=DRAIN_PERIOD)
    print("ready", flush=True)
    taken, start, deadline = 0, time.process_time(), time.monotonic() + timeout
    while taken < expected and time.monotonic() < deadline:
        time.sleep(DRAIN_PERIOD)
        for proxy, event_id in zip(proxies, ids):
            taken += len(proxy.get_events(event_id))
    print(json.dumps({"events": taken, "cpu": time.process_time() - start}), flush=True)
    os._exit(0)  # cppTango's exit handlers are slow with subscriptions left


def run_rate(lab: Lab, store: str, rate: float, seconds: float) -> dict[str, float]:
    """Push `rate` events/s from every source for `seconds`; time until the archive has them all."""
    archiver = lab.proxy(ARCHIVER)
    sources = [lab.proxy(f"bench/source/{i}") for i in range(1, SOURCES + 1)]
    pid = lab.pid("Archiver/bench")
    written_before = archiver.rowsWritten
    per_source = int(rate * seconds)
    expected = per_source * SOURCES
    lags: list[float] = []
    cpu_before = cpu_seconds(pid)
    start = time.perf_counter()
    counts_before = push(sources, rate, seconds)
    deadline = start + seconds * 10 + 60  # a loaded machine takes long, but the accounts need it all
    while archiver.rowsWritten - written_before < expected and time.perf_counter() < deadline:
        lags.append(archiver.writeLag)
        time.sleep(0.1)
    elapsed = time.perf_counter() - start
    own, children = (after - before for after, before in zip(cpu_seconds(pid), cpu_before))
    pushed_all(sources, counts_before, per_source)
    settle = time.monotonic() + 10  # the last drain may still be on its way: the accounts wait for it
    while (found_twice := accounts(store, counts_before, per_source))[0] < expected and time.monotonic() < settle:
        time.sleep(0.5)
    found, twice = found_twice
    return {"rate": found / elapsed, "stored": found, "lost": expected - found, "twice": twice,
            "written": archiver.rowsWritten - written_before, "seconds": elapsed,
            "max lag": max(lags, default=0.0), "median lag": statistics.median(lags) if lags else 0.0,
            "ended late": elapsed - seconds, "cpu per 100k": (own + children) / max(found, 1) * 1e5,
            "own cpu per 100k": own / max(found, 1) * 1e5}


def use_intake(lab: Lab, processes: int) -> None:
    """The Archiver with that many intake processes, every source archived and subscribed."""
    archiver = lab.proxy(ARCHIVER)
    lab.database.put_device_property(ARCHIVER, {"IntakeProcesses": [str(processes)]})
    archiver.Init()
    for i in range(1, SOURCES + 1):
        if not any(name.endswith(f"/bench/source/{i}/value") for name in archiver.AttributeList):
            archiver.AttributeAdd(f"bench/source/{i}/value")
    wait_until(lambda: archiver.state() == tango.DevState.ON, 60, what="archiver subscribed")


def accounts(store: str, counts_before: list[int], per_source: int) -> tuple[int, int]:
    """(values of this round found in the archive, values stored more than once), source by source."""
    found = twice = 0
    with open_store(store, read_only=True) as reader:
        for i, before in enumerate(counts_before, start=1):
            values = reader.values(f"bench/source/{i}/value")[1].compressed()
            pushed = values[(values > before) & (values <= before + per_source)]  # this round's numbers
            unique = len(np.unique(pushed))
            found, twice = found + unique, twice + len(pushed) - unique
    return found, twice


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="4000", help="events per second per source")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of pushing per rate")
    parser.add_argument("--intake", default="1,2", help="numbers of intake processes to measure")
    parser.add_argument("--postgres", help="postgresql:// URL of a scratch database (default: SQLite)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        store = args.postgres or str(Path(folder) / "archive.db")
        print(f"store: {'PostgreSQL' if args.postgres else 'SQLite'}; {SOURCES} sources, {args.seconds:g} s a rate")
        with open_store(store) as raw:
            print(f"raw batched insert rate of the store: {insert_rate(raw):,.0f} rows/s")
        lab = Lab(bench_lab(folder, store), folder, f"127.0.0.1:{free_port()}")
        lab.start(timeout=180)
        try:
            archiver = lab.proxy(ARCHIVER)
            for rate in (float(r) for r in args.rates.split(",")):
                for name in archiver.AttributeList:  # the floor drains alone
                    archiver.AttributeRemove(name)
                floor = floor_round(lab, rate, args.seconds)
                print(f"  {rate * SOURCES:>8,.0f} values/s pushed for {args.seconds:g} s: the floor, a bare process "
                      f"taking the same events without storing them: {floor['cpu per 100k']:.2f} s CPU per 100,000 "
                      f"({floor['events']:,} taken)")
                for processes in (int(n) for n in args.intake.split(",")):
                    use_intake(lab, processes)
                    result = run_rate(lab, store, rate, args.seconds)
                    print(f"    {processes} intake process{'es' if processes > 1 else ''}: {result['stored']:,} stored"
                          f" in {result['seconds']:.2f} s ({result['rate']:,.0f} values/s), lost {result['lost']:,},"
                          f" stored twice {result['twice']:,}, rows written {result['written']:,};"
                          f" lag max {result['max lag']:.2f} s median {result['median lag']:.2f} s, the archive ended"
                          f" {result['ended late']:.2f} s after the last push; Archiver CPU"
                          f" {result['cpu per 100k']:.2f} s per 100,000 values"
                          f" ({result['cpu per 100k'] / floor['cpu per 100k']:.1f} x the floor;"
                          f" {result['own cpu per 100k']:.2f} s in its own process)")
        finally:
            lab.stop()
        with open_store(store) as reader:
            print(f"query of 1,000,000 points of one attribute: median {query_time(reader) * 1e3:.0f} ms")
        print("targets (SQLite): 30,000 values/s, none lost, lag < 1 s; CPU per value at most 2 x the floor; "
              "1,000,000 points in < 500 ms")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        os.environ.setdefault("TANGO_DS_EVENT_BUFFER_HWM", "100000")  # bursts queue, not drop
        tango.server.run((EventSource,), args=["EventSource", *sys.argv[2:]], raises=True)
    elif sys.argv[1:2] == ["drain"]:
        os.environ.setdefault("TANGO_EVENT_BUFFER_HWM", "100000")  # as the Archiver
        drain(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit(main())
