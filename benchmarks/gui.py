"""The lab's trend (gui/trend.py LabTrend) under event load: how far behind, how long the GUI stalls,
what CPU it takes; beside a plain PyTango subscriber and Taurus's own TaurusTrend, in the same run.

    .venv/bin/python benchmarks/gui.py [--quick]

A `Ticker` device server (below, in a process of its own, on a Tango database of its own in a
temporary folder) pushes change events whose value is the time they were pushed, so that
`now - the newest value drawn` is how far behind the trend is (for 50 attributes the oldest of
their newest values: one pushed every 100 ms is up to 100 ms old even when nothing lags).
Scenarios, in this order:

1. baseline: a plain PyTango subscriber (a callback per event, no GUI) at 50 x 10 events/s and 1 kHz;
2. LabTrend of 50 attributes each pushing 10 events/s, for a minute (15 s with --quick);
3. LabTrend of one attribute at 1 kHz;
4. Taurus's TaurusTrend of the same attribute at 1 kHz (what LabTrend replaces).

Offscreen (QT_QPA_PLATFORM=offscreen), the window shown. Once a LabTrend is up, the benchmark
calls gui.trend.responsive_interpreter() as `tangolab gui` should once its window is built
(0.5 ms GIL switch interval, gc.freeze()); --python-defaults measures without. The event loop's
stalls are measured with a 10 ms timer (longest gap beyond its period); CPU is this process's
user+system time per wall second (% of one core), Tango's client threads included.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tango
from tango.server import Device, command

from tangolab.lab_config import free_port
from tangolab.launcher import answering_database, start_database
from tangolab.processes import spawn, terminate
from tangolab.scripting import wait_until

SLOW_ATTRIBUTES = 50
SLOW_RATE = 10.0  # events/s per attribute
FAST_RATE = 1000.0
DEVICE = "bench/ticker/1"
TARGETS = {"lag": 0.5, "stall": 0.100, "fast_cpu": 30.0}


class Ticker(Device):
    """`a00`..`a49` and `fast`: doubles whose change events carry the time they were pushed."""

    def init_device(self) -> None:
        super().init_device()
        self._stop = threading.Event()
        self._pushed = [0]
        self.set_state(tango.DevState.ON)

    def initialize_dynamic_attributes(self) -> None:
        for name in [f"a{i:02d}" for i in range(SLOW_ATTRIBUTES)] + ["fast"]:
            self.add_attribute(
                tango.Attr(name, tango.DevDouble, tango.AttrWriteType.READ), r_meth=self.read_now
            )
            self.set_change_event(name, True, False)

    def read_now(self, attr: tango.Attribute) -> None:
        attr.set_value(time.time())

    @command(dtype_out=int)
    def Pushed(self) -> int:
        return self._pushed[0]

    @command(dtype_in=(float,), doc_in="[events/s per attribute, first attribute, count (0: fast)]")
    def Start(self, argin: list[float]) -> None:
        self.Stop()
        rate, first, count = argin[0], int(argin[1]), int(argin[2])
        names = ["fast"] if count == 0 else [f"a{i:02d}" for i in range(first, first + count)]
        self._stop, self._pushed = threading.Event(), [0]
        threading.Thread(target=self._push, args=(names, rate, self._stop, self._pushed), daemon=True).start()

    @command
    def Stop(self) -> None:
        """Not joined: the pushing thread waits for the device's lock, which a command holds."""
        self._stop.set()

    def _push(self, names: list[str], rate: float, stop: threading.Event, pushed: list[int]) -> None:
        """Round robin over the attributes, each `rate` times a second, on an absolute schedule."""
        period = 1.0 / (rate * len(names))
        due = time.monotonic()
        index = 0
        while not stop.is_set():
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
                continue
            self.push_change_event(names[index], time.time())
            pushed[0] += 1
            index = (index + 1) % len(names)
            due += period


class BenchLab:
    """A Tango database and the Ticker server in a temporary folder, stopped by PID."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.tango_host = f"127.0.0.1:{free_port()}"
        self.processes: list[subprocess.Popen] = []

    def start(self) -> tango.DeviceProxy:
        self.processes.append(start_database(self.folder, self.tango_host))
        host, port = self.tango_host.split(":")
        database = wait_until(lambda: answering_database(host, int(port)), 60, what="the Tango database")
        info = tango.DbDevInfo()
        info.name, info._class, info.server = DEVICE, "Ticker", "Ticker/bench"
        database.add_device(info)
        argv = [sys.executable, str(Path(__file__).resolve()), "--serve", "bench"]
        self.processes.append(spawn("Ticker/bench", argv, self.folder, self.tango_host))
        proxy = tango.DeviceProxy(f"tango://{self.tango_host}/{DEVICE}")
        wait_until(lambda: proxy.ping() is not None, 60, what=f"{DEVICE} answering")
        return proxy

    def stop(self) -> None:
        for process in reversed(self.processes):
            terminate(process.pid)


class CpuClock:
    """This process's CPU time per wall second since start, in % of one core."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.monotonic(), self._cpu()

    @staticmethod
    def _cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def percent(self) -> float:
        return 100.0 * (self._cpu() - self.cpu) / (time.monotonic() - self.wall)


class Loop:
    """Runs the Qt event loop for a while with a 10 ms timer: its longest gap (a stall), and how much
    of that gap the GUI thread itself was busy (the rest is the machine: other processes, the GIL)."""

    def __init__(self, seconds: float, sample=None) -> None:
        from taurus.external.qt import Qt

        self.gaps: list[tuple[float, float]] = []  # (wall, GUI thread CPU) between ticks
        self.samples: list[float] = []
        self.longest_gc = 0.0
        collecting = [0.0]

        def on_gc(phase: str, info: dict) -> None:
            if phase == "start":
                collecting[0] = time.perf_counter()
            else:
                self.longest_gc = max(self.longest_gc, time.perf_counter() - collecting[0])

        gc.callbacks.append(on_gc)
        last = [time.monotonic(), time.thread_time()]

        def tick() -> None:
            now, busy = time.monotonic(), time.thread_time()
            self.gaps.append((now - last[0], busy - last[1]))
            last[:] = now, busy

        ticker = Qt.QTimer()
        ticker.setTimerType(Qt.Qt.PreciseTimer)
        ticker.timeout.connect(tick)
        sampler = Qt.QTimer()
        if sample is not None:
            sampler.timeout.connect(lambda: self.samples.append(sample()))
        loop = Qt.QEventLoop()
        Qt.QTimer.singleShot(int(seconds * 1000), loop.quit)
        clock = CpuClock()
        last[:] = time.monotonic(), time.thread_time()
        ticker.start(10)
        sampler.start(1000)
        loop.exec_()
        self.cpu = clock.percent()
        gc.callbacks.remove(on_gc)
        ticker.stop()
        sampler.stop()
        if sample is not None:
            self.samples.append(sample())

    def figures(self) -> dict:
        wall, busy = max(self.gaps)
        return {
            "cpu": self.cpu,
            "stall": wall - 0.010,
            "stall_busy": busy,
            "median_gap": statistics.median(g for g, _ in self.gaps),
            "stalls": sum(g > 0.110 for g, _ in self.gaps),
            "busy_max": max(b for _, b in self.gaps),
            "gc": self.longest_gc,
        }


def baseline(proxy: tango.DeviceProxy, names: list[str], rate: float, count: int, seconds: float) -> dict:
    """A plain PyTango subscriber (a callback per event, no GUI) to the same events, the same event
    loop running idle beside it: CPU, stalls, how far behind."""
    newest: dict[str, float] = {}
    received = [0]

    def on_event(event: tango.EventData) -> None:
        if not event.err:
            newest[event.attr_name] = event.attr_value.value
            received[0] += 1

    ids = [proxy.subscribe_event(name, tango.EventType.CHANGE_EVENT, on_event) for name in names]
    wait_until(lambda: len(newest) == len(names), 30, what="every first value")
    received[0] = 0
    proxy.Start([rate, 0, count])
    loop = Loop(seconds, lambda: time.time() - min(newest.values()))
    proxy.Stop()
    counts = [-1]
    wait_until(
        lambda: counts.append(received[0]) or counts[-1] == counts[-2],
        10,
        interval=0.3,
        what="the last events",
    )
    pushed = proxy.Pushed()
    for event_id in ids:
        proxy.unsubscribe_event(event_id)
    return {
        **loop.figures(),
        "lag_end": loop.samples[-1],
        "lag_median": statistics.median(loop.samples),
        "received": received[0],
        "pushed": pushed,
    }


def run_trend(
    trend, proxy: tango.DeviceProxy, rate: float, count: int, seconds: float, tuned: bool = True
) -> dict:
    """Show a trend, push at `rate` for `seconds` with the event loop running; the figures."""
    from taurus.external.qt import Qt

    trend.resize(1000, 500)
    trend.show()
    app = Qt.QApplication.instance()
    wait_until(
        lambda: app.processEvents() or None not in newest_drawn(trend), 60, what="every curve's first value"
    )
    if tuned:  # as `tangolab gui` once its window is built
        from gui.trend import responsive_interpreter

        responsive_interpreter()
    proxy.Start([rate, 0, count])
    loop = Loop(seconds, lambda: time.time() - min(newest_drawn(trend)))
    proxy.Stop()
    stored = settled_count(trend)
    pushed = proxy.Pushed()
    redraw = getattr(trend, "longest_redraw", None)
    trend.setModel([])
    trend.close()
    trend.deleteLater()
    app.processEvents()
    return {
        **loop.figures(),
        "lag_end": loop.samples[-1],
        "lag_median": statistics.median(loop.samples),
        "pushed": pushed,
        "stored": stored,
        "redraw": redraw,
    }


def settled_count(trend) -> int:
    """Points stored once the events still on their way are in (the count still for half a second)."""
    from taurus.external.qt import Qt

    app, counts = Qt.QApplication.instance(), []
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and (len(counts) < 6 or counts[-1] != counts[-6]):
        app.processEvents()
        if hasattr(trend, "take_in"):
            trend.take_in()
        counts.append(sum(len(ts._xBuffer) for ts in trend.getTrendSets() if ts._xBuffer is not None))
        time.sleep(0.1)
    return counts[-1]


def newest_drawn(trend) -> list[float | None]:
    """The newest value each curve draws (the push time it carried); None before the first."""
    found = []
    for trend_set in trend.getTrendSets():
        curves = trend_set[:]
        found.append(
            None
            if not curves or curves[0].yData is None or not len(curves[0].yData)
            else float(curves[0].yData.max())
        )
    return found or [None]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="15 s instead of a minute, shorter rounds")
    parser.add_argument(
        "--python-defaults",
        action="store_true",
        help="without gui.trend.responsive_interpreter() (5 ms GIL switch interval, no gc.freeze)",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        Ticker.run_server([args.serve])
        return 0
    slow_seconds, fast_seconds, base_seconds = (15.0, 8.0, 4.0) if args.quick else (60.0, 20.0, 10.0)

    with tempfile.TemporaryDirectory(prefix="gui-bench-") as folder:
        lab = BenchLab(Path(folder))
        try:
            proxy = lab.start()
            return measure(lab, proxy, slow_seconds, fast_seconds, base_seconds, not args.python_defaults)
        finally:
            lab.stop()


def measure(
    lab: BenchLab,
    proxy: tango.DeviceProxy,
    slow_seconds: float,
    fast_seconds: float,
    base_seconds: float,
    tuned: bool = True,
) -> int:
    from taurus.qt.qtgui.application import TaurusApplication

    app = TaurusApplication(sys.argv[:1], cmd_line_parser=None)  # noqa: F841 - the Qt application lives here
    from taurus_pyqtgraph import TaurusTrend

    from gui.trend import LabTrend

    slow_names = [f"a{i:02d}" for i in range(SLOW_ATTRIBUTES)]
    model = f"tango://{lab.tango_host}/{DEVICE}/"
    print(
        f"Ticker on {lab.tango_host}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; offscreen"
        + ("; LabTrends with responsive_interpreter()" if tuned else "; Python's defaults"),
        flush=True,
    )
    slow_title, fast_title = f"{SLOW_ATTRIBUTES} x {SLOW_RATE:g}/s", f"1 x {FAST_RATE:g}/s"

    base_slow = baseline(proxy, slow_names, SLOW_RATE, SLOW_ATTRIBUTES, base_seconds)
    report(f"bare PyTango subscriber, {slow_title}, {base_seconds:g} s", base_slow)
    base_fast = baseline(proxy, ["fast"], FAST_RATE, 0, base_seconds)
    report(f"bare PyTango subscriber, {fast_title}, {base_seconds:g} s", base_fast)

    trend = LabTrend([model + name for name in slow_names])
    slow = run_trend(trend, proxy, SLOW_RATE, SLOW_ATTRIBUTES, slow_seconds, tuned)
    report(f"LabTrend {slow_title}, {slow_seconds:g} s", slow, base_slow)

    trend = LabTrend([model + "fast"])
    fast = run_trend(trend, proxy, FAST_RATE, 0, fast_seconds, tuned)
    report(f"LabTrend {fast_title}, {fast_seconds:g} s", fast, base_fast)

    stock = TaurusTrend()
    stock.setModel([model + "fast"])
    seconds = min(fast_seconds, 10.0)
    report(
        f"Taurus's TaurusTrend {fast_title}, {seconds:g} s",
        run_trend(stock, proxy, FAST_RATE, 0, seconds),
        base_fast,
    )

    met = (
        slow["lag_end"] < TARGETS["lag"]
        and slow["stall"] < TARGETS["stall"]
        and fast["stall"] < TARGETS["stall"]
        and fast["cpu"] < TARGETS["fast_cpu"]
    )
    print(
        f"targets (behind < {TARGETS['lag']} s at the end, no stall over {TARGETS['stall'] * 1000:.0f} ms, "
        f"1 kHz under {TARGETS['fast_cpu']:.0f} % of a core): {'met' if met else 'NOT met'}; "
        f"load now {os.getloadavg()[0]:.1f}"
    )
    return 0 if met else 1


def report(title: str, figures: dict, base: dict | None = None) -> None:
    ratio = f" ({figures['cpu'] / max(base['cpu'], 0.1):.1f} x the bare subscriber)" if base else ""
    counted = (
        f"{figures['received']} of {figures['pushed']} events received"
        if "received" in figures
        else f"{figures['stored']} points stored of {figures['pushed']} events pushed (+ the first values)"
    )
    redraw = f", intake+redraw {figures['redraw'] * 1000:.0f} ms" if figures.get("redraw") else ""
    ms = {
        key: figures[key] * 1000
        for key in ("stall", "stall_busy", "busy_max", "gc", "median_gap", "lag_end", "lag_median")
    }
    print(
        f"{title}\n"
        f"  CPU {figures['cpu']:.1f} % of a core{ratio}\n"
        f"  event loop: longest stall {ms['stall']:.0f} ms "
        f"(GUI thread busy {ms['stall_busy']:.0f} ms of it), "
        f"{figures['stalls']} stalls over 100 ms, median tick {ms['median_gap']:.1f} ms of 10\n"
        f"  GUI thread: longest busy stretch {ms['busy_max']:.0f} ms, "
        f"garbage collection {ms['gc']:.0f} ms{redraw}\n"
        f"  behind {ms['lag_end']:.0f} ms at the end (median {ms['lag_median']:.0f} ms); {counted}",
        flush=True,
    )


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    os._exit(status)  # cppTango's exit handler deadlocks with an event callback waiting for the GIL (PITFALLS.md)
