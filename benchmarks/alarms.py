"""The alarm handler under load: 1,000 rules over 200 attributes changing at 10 Hz.

    python benchmarks/alarms.py [--rules 1000] [--attributes 200] [--rate 10] [--seconds 30]

A source server (a process of its own) pushes a change event of each of its attributes `rate`
times a second: a little noise around 0 or 10, each attribute crossing 5 every `--period` s
(attributes out of phase). The AlarmHandler (another process) runs `rules` rules `a_k > 5`, five
or so per attribute, so that every crossing changes the state of the rules that read it. A client
subscribes to every rule's attribute and notes when each state change arrives; the source
server notes when it pushed each crossing. Prints the delay from the crossing's push to the
alarm's change event at the client (p50, p99; target p99 under 100 ms), the handler's CPU
(target under half a core), and, as the anchor, PANIC's polling period (15 s by default): a
PANIC alarm comes on average half a period after its cause.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import tango
from tango import AttrWriteType
from tango.server import Device, command
from tango.test_context import MultiDeviceTestContext

HOST = "127.0.0.1"
PANIC_PERIOD = 15.0  # s, PyAlarm's default polling period
ROOT = Path(__file__).resolve().parents[1]


class Sources(Device):
    """`a0` … `aN` pushed `Rate` times a second; `Crossings` gives [attribute, time, level] triples."""

    def init_device(self) -> None:
        super().init_device()
        self.count, self.rate, self.period = (int(os.environ["BENCH_ATTRIBUTES"]), float(os.environ["BENCH_RATE"]),
                                              float(os.environ["BENCH_PERIOD"]))
        self.values = [0.0] * self.count
        self.crossings: list[float] = []
        for k in range(self.count):
            self.add_attribute(tango.Attr(f"a{k}", tango.CmdArgType.DevDouble, AttrWriteType.READ), self._read)
            self.set_change_event(f"a{k}", True, False)
        self._stop = threading.Event()
        threading.Thread(target=self._push, daemon=True).start()

    def delete_device(self) -> None:
        self._stop.set()

    def _read(self, attr: tango.Attribute) -> None:
        attr.set_value(self.values[int(attr.get_name()[1:])])

    def _push(self) -> None:
        start, tick = time.time(), 0
        while not self._stop.is_set():
            tick += 1
            self._stop.wait(max(0.0, start + tick / self.rate - time.time()))
            for k in range(self.count):
                now = time.time()
                high = ((now - start) / self.period + k / self.count) % 1.0 < 0.5
                value = (10.0 if high else 0.0) + 0.001 * (tick % 7)
                if high != (self.values[k] >= 5.0):
                    self.crossings += [k, now, 1.0 if high else 0.0]
                self.values[k] = value
                self.push_change_event(f"a{k}", value, now, tango.AttrQuality.ATTR_VALID)

    @command(dtype_out=(float,))
    def Crossings(self) -> list[float]:
        return self.crossings


def serve(port: int, devices: list[dict]) -> None:
    with MultiDeviceTestContext(devices, host=HOST, port=port, timeout=60):
        sys.stdin.read()


def start(role: str, port: int, extra: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--serve", role, str(port), extra], stdin=subprocess.PIPE,
                            cwd=ROOT, env=os.environ | env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    if sys.argv[1:2] == ["--serve"]:
        role, port, extra = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        if role == "sources":
            serve(port, [{"class": Sources, "devices": [{"name": "bench/sources/1"}]}])
        else:
            from device_servers.alarms.device import AlarmHandler

            rules = Path(extra).read_text().splitlines()
            serve(port, [{"class": AlarmHandler, "devices": [
                {"name": "bench/alarms/1", "properties": {"Rules": rules, "LogDevice": "", "QuietRead": 30.0}}]}])
        return 0

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--attributes", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="pushes per attribute per second (10)")
    parser.add_argument("--period", type=float, default=10.0, help="s between two crossings of one attribute, up "
                        "and down (10)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time (30)")
    args = parser.parse_args()

    source_port, handler_port = _free_port(), _free_port()
    sources_trl = f"tango://{HOST}:{source_port}/bench/sources/1"
    rules_file = Path(f"/tmp/bench-alarm-rules-{os.getpid()}.txt")
    rules_file.write_text("\n".join(f"r{j}: {sources_trl}/a{j % args.attributes}#dbase=no > 5"
                                    for j in range(args.rules)) + "\n")
    env = {"BENCH_ATTRIBUTES": str(args.attributes), "BENCH_RATE": str(args.rate), "BENCH_PERIOD": str(args.period)}
    servers = [start("sources", source_port, "", env)]
    try:
        sources = tango.DeviceProxy(f"{sources_trl}#dbase=no")
        _wait(lambda: sources.ping() >= 0, "the source server")
        servers.append(start("handler", handler_port, str(rules_file), env))
        handler = tango.DeviceProxy(f"tango://{HOST}:{handler_port}/bench/alarms/1#dbase=no")
        _wait(lambda: "0 in error" in handler.read_attribute("summary").value and handler.state() in (tango.DevState.ON, tango.DevState.ALARM),
              "the handler with every rule evaluated", 120)
        arrivals: list[tuple[float, float, int, int]] = []  # (arrival, decided by the handler, rule, state)

        def on_event(event: tango.EventData) -> None:
            if not event.err:
                arrivals.append((time.time(), event.attr_value.time.totime(),
                                 int(event.attr_name.partition("#")[0].rpartition("/")[2].lstrip("r")),
                                 int(event.attr_value.value)))

        for j in range(args.rules):
            handler.subscribe_event(f"r{j}", tango.EventType.CHANGE_EVENT, on_event)
        time.sleep(2.0)  # the subscriptions' first events are the present states, not changes
        began, cpu_began = time.time(), cpu_seconds(servers[1].pid)
        time.sleep(args.seconds)
        ended, cpu_ended = time.time(), cpu_seconds(servers[1].pid)
        crossings = list(sources.Crossings())
    finally:
        for server in servers:
            server.stdin.close()
        for server in servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        rules_file.unlink(missing_ok=True)
    by_attribute: dict[int, list[tuple[float, bool]]] = {}
    for k, when, level in zip(crossings[0::3], crossings[1::3], crossings[2::3]):
        by_attribute.setdefault(int(k), []).append((when, level > 0.5))
    delays, decisions = [], []
    for arrival, decided, rule, state in arrivals:
        if not began <= arrival <= ended:
            continue
        rising = state == 1  # UNACK; falling gives RTNUN
        crossed = [when for when, high in by_attribute.get(rule % args.attributes, ())
                   if high == rising and when <= decided]
        if crossed:
            delays.append(arrival - crossed[-1])
            decisions.append(decided - crossed[-1])
    if len(delays) < 2:
        print("too few alarm changes measured", file=sys.stderr)
        return 1
    p50, p99 = percentiles(delays)
    cpu = (cpu_ended - cpu_began) / (ended - began)
    print(f"{args.rules} rules over {args.attributes} attributes at {args.rate:g} Hz "
          f"({args.attributes * args.rate:.0f} events/s), {len(delays)} alarm changes in {ended - began:.0f} s")
    print(f"event -> alarm change event at a client: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
          "(target p99 < 100 ms)")
    print("  of which the handler's part (event pushed -> its transition's time stamp): p50 {:.1f} ms, p99 {:.1f} ms"
          .format(*(1000 * p for p in percentiles(decisions))))
    print(f"  machine load average meanwhile: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"handler CPU: {cpu:.2f} core (target < 0.5)")
    print(f"PANIC polling every {PANIC_PERIOD:g} s: {PANIC_PERIOD / 2:.1f} s on average, up to {PANIC_PERIOD:g} s; "
          f"p99 here is {PANIC_PERIOD / p99:.0f} times shorter than PANIC's worst case")
    return 0


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))]


def _free_port() -> int:
    from tangolab.lab_config import free_port

    return free_port()


def _wait(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except tango.DevFailed:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not come up within {timeout:g} s")


if __name__ == "__main__":
    sys.exit(main())
