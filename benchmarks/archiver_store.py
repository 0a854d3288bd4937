"""Archive store speed: batched inserts, the writer thread, and a one-million-point query.

    python benchmarks/archiver_store.py [--postgres postgresql://user@host:port/scratch]

SQLite runs in a temporary folder. PostgreSQL runs only with --postgres, into a scratch
database: the benchmark leaves its rows there. Figures are medians of repeated runs; the
writer's rate is also given as a ratio of the raw insert rate measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from device_servers.archiver.writer import Writer
from tangolab.archive import Store, open_store

ATTRIBUTES = 10


def _attributes(store: Store, label: str) -> list[int]:
    run = f"{label}{time.time_ns()}"
    return [store.register(f"tango://bench:10000/bench/{run}/1/a{i}", "DevDouble") for i in range(ATTRIBUTES)]


def insert_rate(store: Store, rows: int = 200_000, batch: int = 5000) -> float:
    """Rows per second through insert_values, in batches, round-robin over ten attributes."""
    ids = _attributes(store, "raw")
    t0 = time.time()
    data = [(ids[i % ATTRIBUTES], t0 + i * 1e-4, float(i), None, 0, None) for i in range(rows)]
    start = time.perf_counter()
    for first in range(0, rows, batch):
        store.insert_values(data[first : first + batch])
    return rows / (time.perf_counter() - start)


def writer_rate(store: Store, values: int = 200_000) -> float:
    """Values per second from put() to committed, a producer flooding the writer."""
    ids = _attributes(store, "flood")
    t0 = time.time()
    start = time.perf_counter()
    with Writer(store) as writer:
        for i in range(values):
            writer.put(ids[i % ATTRIBUTES], t0 + i * 1e-4, float(i))
    assert writer.stats().written == values, writer.stats()
    return values / (time.perf_counter() - start)


def writer_lag(store: Store, rate: float = 30_000, seconds: float = 5.0) -> tuple[float, float]:
    """(achieved rate, largest lag seen) with values put at a steady rate, stamped when put."""
    ids = _attributes(store, "paced")
    lags, n = [], 0
    with Writer(store) as writer:
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(int(elapsed * rate) - n):
                writer.put(ids[n % ATTRIBUTES], time.time(), float(n))
                n += 1
            lags.append(writer.stats().lag)
            time.sleep(0.002)
    assert writer.stats().written == n, writer.stats()
    return n / seconds, max(lags)


def query_time(store: Store, points: int = 1_000_000, repeats: int = 5) -> float:
    """Seconds for values() to return one attribute's million points."""
    (conf_id, *_) = _attributes(store, "query")
    times = 1_600_000_000.0 + 0.25 * np.arange(points)
    values = np.sin(np.arange(points) / 1e4)
    for first in range(0, points, 50_000):
        chunk = slice(first, first + 50_000)
        store.insert_values(
            (conf_id, t, v, None, 0, None)
            for t, v in zip(times[chunk].tolist(), values[chunk].tolist(), strict=True)
        )
    name = store.attributes()[[a.conf_id for a in store.attributes()].index(conf_id)].name
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        got = store.values(name)
        durations.append(time.perf_counter() - start)
        assert len(got[0]) == points
    return statistics.median(durations)


def run(url: str, repeats: int = 3) -> dict[str, float]:
    """Every figure for the store at url."""
    with open_store(url) as store:
        raw = statistics.median(insert_rate(store) for _ in range(repeats))
        flood = statistics.median(writer_rate(store) for _ in range(repeats))
        paced, lag = writer_lag(store)
        query = query_time(store)
    return {
        "insert rows/s": raw,
        "writer values/s": flood,
        "writer/insert": flood / raw,
        "paced values/s": paced,
        "paced max lag s": lag,
        "1M query s": query,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="URL of a scratch PostgreSQL database to measure too")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        stores = {"SQLite": str(Path(folder) / "archive.db")}
        if args.postgres:
            stores["PostgreSQL"] = args.postgres
        for label, url in stores.items():
            figures = run(url)
            print(f"{label}:")
            for key, value in figures.items():
                print(f"  {key:<18} {value:>12,.3f}" if value < 100 else f"  {key:<18} {value:>12,.0f}")


if __name__ == "__main__":
    main()
