"""Read latency of tangolab attributes against a bare PyTango device, in the same run.

    python benchmarks/read_latency.py [--reads 5000] [--attribute lab/stage/1/Position ...]

Starts the demo lab on free ports (the same launcher as `tangolab up`) and a bare PyTango server
with one attribute returning a constant, then alternates blocks of reads of each so that the
machine's slow moments hit all alike. Prints median and p99 of each, and each one's ratio to
the bare one. By default: a temperature of the Cryo-Con and the Position of the APT stage.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import tango
from tango.server import Device, attribute
from tango.test_context import DeviceTestContext

from tangolab.lab_config import LabConfig, free_port
from tangolab.launcher import Lab
from tangolab.scripting import wait_until

DEFAULT_ATTRIBUTES = ["lab/cryocon/1/temperatureA", "lab/stage/1/Position"]
BARE = "bare PyTango value"


class Bare(Device):
    """The baseline: one attribute, no cache, no poll thread."""

    @attribute(dtype=float)
    def value(self) -> float:
        return 1.0


def time_reads(proxy: tango.DeviceProxy, name: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        proxy.read_attribute(name)
        samples.append(time.perf_counter() - start)
    return samples


def p99(samples: list[float]) -> float:
    return sorted(samples)[int(len(samples) * 0.99)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=5000, help="reads of each attribute (default %(default)s)")
    parser.add_argument("--block", type=int, default=250, help="reads per alternating block")
    parser.add_argument(
        "--attribute", action="append", dest="attributes", metavar="DEVICE/ATTRIBUTE",
        help="an attribute of the demo lab to time (repeatable; default %(default)s)",
    )
    args = parser.parse_args()
    attributes = args.attributes or DEFAULT_ATTRIBUTES

    with tempfile.TemporaryDirectory() as run_dir:
        lab = Lab(LabConfig.load().with_free_ports(), run_dir, f"127.0.0.1:{free_port()}")
        lab.start()
        try:
            with DeviceTestContext(Bare, process=True) as bare:
                targets = {BARE: (bare, "value")}
                for full_name in attributes:
                    device, _, name = full_name.rpartition("/")
                    proxy = lab.proxy(device)
                    wait_until(lambda p=proxy: p.state() != tango.DevState.INIT, 30, what=f"{device} connected")
                    targets[full_name] = (proxy, name)
                for proxy, name in targets.values():
                    time_reads(proxy, name, 200)  # warm up connections
                samples: dict[str, list[float]] = {label: [] for label in targets}
                for _ in range(max(args.reads // args.block, 1)):
                    for label, (proxy, name) in targets.items():
                        samples[label] += time_reads(proxy, name, args.block)
        finally:
            lab.stop()

    base = samples[BARE]
    print(f"read_attribute latency, {len(base)} reads each, alternating blocks (target: median ratio <= 1.2)")
    for label, values in samples.items():
        ratio = "" if label == BARE else (
            f"   ratio median {statistics.median(values) / statistics.median(base):.3f}"
            f" p99 {p99(values) / p99(base):.3f}"
        )
        print(f"  {label:32s} median {statistics.median(values) * 1e6:8.1f} us"
              f"   p99 {p99(values) * 1e6:8.1f} us{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
