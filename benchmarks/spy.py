"""The event rate `tangolab spy` keeps up with, writing to a file, against the archiver's intake.

    python benchmarks/spy.py [--rates 250,1000,2000,3000] [--seconds 5]

The lab of benchmarks/archiver.py (20 `EventSource` servers, each its own process, and an
Archiver storing into SQLite) is brought up by the same launcher as `tangolab up`, and
`tangolab spy bench/source/*` runs beside it as a user runs it, its output going to a file. For
each rate per source, every source pushes numbered change events for the given seconds; the
figures are, for the spy, the events written to the file per second until the last one was
written, and how many were missing or reported lost; for the archiver, the values stored per
second from the same pushes (the two take the same events at the same time, on the same cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import tango
from archiver import SOURCES, bench_lab, run_rate  # beside this file

from tangolab.lab_config import free_port
from tangolab.launcher import Lab
from tangolab.scripting import wait_until


class SpyFile:
    """Follows the spy's output file: the events it holds per source, and the loss lines."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.values: dict[str, list[float]] = {}
        self.lost_lines = 0
        self.partial = ""

    def read(self) -> None:
        with open(self.path) as out:
            out.seek(self.offset)
            text = self.partial + out.read()
            self.offset = out.tell()
        *lines, self.partial = text.split("\n")
        for line in lines:
            record = json.loads(line)
            if record["kind"] == "lost":
                self.lost_lines += 1
            elif record["kind"] == "event" and record["attribute"] == "value":
                self.values.setdefault(record["device"], []).append(record["value"])

    def count(self, before: dict[str, float], per_source: int) -> int:
        """Events of this round (numbers after each source's count before it) in the file."""
        return sum(
            len({v for v in self.values.get(f"bench/source/{i}", []) if before[i] < v <= before[i] + per_source})
            for i in range(1, SOURCES + 1)
        )


def measure(lab: Lab, store: str, spy_file: SpyFile, rate: float, seconds: float) -> dict[str, float]:
    sources = [lab.proxy(f"bench/source/{i}") for i in range(1, SOURCES + 1)]
    before = {i: float(source.pushedCount) for i, source in enumerate(sources, start=1)}
    per_source = int(rate * seconds)
    expected = per_source * SOURCES
    lost_before = spy_file.lost_lines
    done: dict[str, float] = {}
    start = time.perf_counter()

    def follow() -> None:  # when the spy's file holds every event of the round (or gives up)
        deadline = start + seconds * 4 + 30
        while time.perf_counter() < deadline:
            spy_file.read()
            if spy_file.count(before, per_source) >= expected:
                break
            time.sleep(0.05)
        done["seconds"] = time.perf_counter() - start

    follower = threading.Thread(target=follow)
    follower.start()
    archived = run_rate(lab, store, rate, seconds)  # pushes, and waits for the archiver
    follower.join()
    found = spy_file.count(before, per_source)
    return {"spy rate": found / done["seconds"], "spy found": found, "spy missing": expected - found,
            "spy lost lines": spy_file.lost_lines - lost_before, "spy seconds": done["seconds"],
            "archiver rate": archived["rate"], "archiver lost": archived["lost"], "expected": expected}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="250,1000,2000,3000", help="events per second per source")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of pushing per rate")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        store = str(Path(folder) / "archive.db")
        lab = Lab(bench_lab(folder, store), folder, f"127.0.0.1:{free_port()}")
        lab.start(timeout=180)
        output = Path(folder) / "spy.jsonl"
        spy = None
        try:
            archiver = lab.proxy("bench/archiver/1")
            wait_until(lambda: archiver.state() == tango.DevState.ON, 60, what="archiver subscribed")
            with open(output, "w") as out:
                spy = subprocess.Popen(
                    [sys.executable, "-m", "tangolab", "spy", "bench/source/*/value", "--tango-host", lab.tango_host],
                    stdout=out, stderr=subprocess.PIPE, text=True,
                )
            spy_file = SpyFile(output)
            wait_until(lambda: spy_file.read() or len(spy_file.values) == SOURCES, 60, what="the spy subscribed")
            print(f"{SOURCES} sources, {args.seconds:g} s a rate; the spy writes to a file, the archiver to SQLite")
            for rate in (float(r) for r in args.rates.split(",")):
                r = measure(lab, store, spy_file, rate, args.seconds)
                print(f"  {rate * SOURCES:>8,.0f} events/s pushed: spy {r['spy rate']:>8,.0f} events/s written "
                      f"({r['spy found']:,} of {r['expected']:,}, missing {r['spy missing']:,}, loss lines "
                      f"{r['spy lost lines']}), archiver {r['archiver rate']:>8,.0f} values/s stored (lost "
                      f"{r['archiver lost']:,}); spy/archiver {r['spy rate'] / max(r['archiver rate'], 1):.2f}")
        finally:
            if spy is not None:
                spy.terminate()
                spy.wait(timeout=30)
            lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
