"""Time from `tangolab up` to every device of the demo lab answering, per server, and the recovery
from a killed database, supervisor and server.

    python benchmarks/lab_start.py [--runs 3] [--lab db_config/lab.json]

Per run: starts the lab on free ports in a fresh folder with the same launcher as `tangolab up`
(database, supervisor, then the programs level by level), records when each device first
answers, and reads from the lab log how long each program took from its start to its first
answer. Then, each with SIGKILL and timed from the kill:
- the cryocon's server: until the supervisor starts it again, a plain subscriber's first event
  (through tangolab's restart listener, as the spy uses it), the archiver's first stored value;
- the Tango database (the supervisor restarts it): until a new client is answered;
- the supervisor (its watchdog restarts it): until a new client's ping is answered;
- the cryocon's server again, as the first time (the archiver hears of this restart only once
  Tango's keep-alive has subscribed it to the new supervisor).
The baseline, measured in the same run, is a bare PyTango server (one device, nothing else) from
its start to its first answer.
Prints medians over the runs (and the worst run).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import tango

from tangolab import history
from tangolab.lab_config import DEFAULT_CONFIG, LabConfig, free_port
from tangolab.launcher import Lab, answering_database, start_database
from tangolab.processes import lab_log, supervisor_name
from tangolab.scripting import wait_until
from tangolab.spy import Spy

CRYOCON = "TemperatureController/lab"
BARE_SERVER = '''
from tango.server import Device, run
class Bare(Device):
    pass
run((Bare,))
'''


def bare_start(folder: Path) -> float:
    """Seconds from starting a one-device PyTango server to its first answer (its own database)."""
    port = free_port()
    database = start_database(folder, f"127.0.0.1:{port}")
    script = folder / "bare.py"
    script.write_text(BARE_SERVER)
    try:
        db = wait_until(lambda: answering_database("127.0.0.1", port), 60, what="the database")
        info = tango.DbDevInfo()
        info.name, info._class, info.server = "bench/bare/1", "Bare", "bare/1"
        db.add_device(info)
        began = time.monotonic()
        server = subprocess.Popen([sys.executable, str(script), "1"], env=dict(os.environ, TANGO_HOST=f"127.0.0.1:{port}"),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        proxy = tango.DeviceProxy(f"tango://127.0.0.1:{port}/bench/bare/1")
        wait_until(lambda: _pings(proxy), 60, what="the bare server")
        took = time.monotonic() - began
        server.terminate()
        server.wait(30)
        return took
    finally:
        database.terminate()
        database.wait(30)


def _pings(proxy: tango.DeviceProxy) -> bool:
    try:
        proxy.ping()
        return True
    except tango.DevFailed:
        return False


def per_program(lab: Lab) -> dict[str, float]:
    """From the lab log: seconds from each program's start to its first answer."""
    took = {}
    for line in lab_log(lab.run_dir).read_text().splitlines():
        match = re.search(r"supervisor: (\S+) answers \(pid \d+, ([\d.]+) s after its start\)", line)
        if match and match.group(1) not in ("database", "watchdog"):  # adopted, and a watchdog has nothing to answer
            took.setdefault(match.group(1), float(match.group(2)))
    return took


def own_recovery(lab: Lab) -> tuple[float, float]:
    """Kill the database, then the supervisor: seconds until each answers a new client again."""
    database = back_after_kill(lab, "database", lambda: answering_database(lab.host, lab.port).get_info())
    supervisor = back_after_kill(
        lab, "supervisor", lambda: tango.DeviceProxy(f"tango://{lab.tango_host}/{lab.supervisor_name}").ping())
    return database, supervisor


def back_after_kill(lab: Lab, name: str, answers) -> float:
    """kill -9 of one of the lab's own processes: seconds until a new one answers."""
    pid = lab.own_pids()[name]
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: lab.own_pids().get(name, pid) != pid and answers(), 60, what=f"the {name} answering again")
    return time.monotonic() - killed


def recovery(lab: Lab) -> tuple[float, float, float]:
    """Kill the cryocon's server: seconds to its restart, to a subscriber's event, to an archived value."""
    spy = Spy(devices=[f"tango://{lab.tango_host}/lab/cryocon/1"], pattern="temperatureA")
    spy.start()
    store = str(lab.run_dir / "archive.db")

    def archived(since: float) -> bool:
        found = history.values("lab/cryocon/1/temperatureA", since, store=store)
        return bool(np.count_nonzero(~np.ma.getmaskarray(found["value"])))

    try:
        wait_until(lambda: any(r["kind"] == "event" for r in spy.poll()), 60, what="a first event")
        wait_until(lambda: archived(0), 60, what="the archiver archiving it")  # subscribed, not retrying
        pid = lab.pid(CRYOCON)
        killed = time.time()
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: lab.pid(CRYOCON) not in (0, pid), 60, what="the restart")
        restarted = time.time() - killed
        heard = []
        wait_until(lambda: heard.extend(r for r in spy.poll() if r["kind"] == "event"
                                        and datetime.fromisoformat(r["time"]).timestamp() > killed) or heard,
                   60, what="an event after the restart")
        subscriber = time.time() - killed
        wait_until(lambda: archived(killed), 60, what="an archived value after the restart")
        return restarted, subscriber, time.time() - killed
    finally:
        spy.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="lab starts timed (default %(default)s)")
    parser.add_argument("--lab", default=str(DEFAULT_CONFIG), help="lab file (default: the demo lab)")
    args = parser.parse_args()

    totals, programs, recoveries, own, afterwards, bare = [], {}, [], [], [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="lab_start-") as folder:
            bare.append(bare_start(Path(folder)))
            lab = Lab(LabConfig.load(args.lab).with_free_ports(), Path(folder) / "var", f"127.0.0.1:{free_port()}")
            began = time.monotonic()
            lab.start(timeout=120)
            try:
                totals.append(time.monotonic() - began)
                for name, took in per_program(lab).items():
                    programs.setdefault(name, []).append(took)
                recoveries.append(recovery(lab))
                own.append(own_recovery(lab))
                afterwards.append(recovery(lab))  # a server killed once both are back
            finally:
                lab.stop()
        print(f"run {run + 1}: lab up in {totals[-1]:.2f} s ({len(lab.config.servers)} servers, "
              f"{len(lab.config.simulators)} simulators, {len(lab.config.devices)} devices)", flush=True)

    median = statistics.median
    print(f"\nwhole lab, `up` to every device answering: median {median(totals):.2f} s, worst {max(totals):.2f} s "
          f"(target < 10 s)")
    print(f"bare PyTango server, start to first answer: median {median(bare):.2f} s")
    print("\nper program, start to first answer (median over runs; ratio to the bare server):")
    for name, took in programs.items():
        print(f"  {name:28s} {median(took):5.2f} s  x{median(took) / median(bare):.2f}")
    database, supervisor = zip(*own)
    print(f"\nkill -9 of the database: a new client answered after median {median(database):.2f} s (worst "
          f"{max(database):.2f}); of {supervisor_name()}: {median(supervisor):.2f} s ({max(supervisor):.2f}); "
          "target 5 s each")
    for when, taken in (("", recoveries), (", right after those", afterwards)):
        restarted, subscriber, archived = zip(*taken)
        print(f"kill -9 of {CRYOCON}{when}: restarted after median {median(restarted):.2f} s "
              f"(worst {max(restarted):.2f}), subscriber's event {median(subscriber):.2f} s ({max(subscriber):.2f}), "
              f"archived value {median(archived):.2f} s ({max(archived):.2f}); targets 2 s and 5 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
