"""The supervisor keeps the demo lab running: a killed server comes back and its values flow again,
a hung one is found and restarted, one that crashes at start-up is retried with back-off and then
left failed with its last log lines while the rest of the lab runs; levels start and stop."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from datetime import datetime

import numpy as np
import pytest
import tango

from tangolab import history
from tangolab.lab_config import LabConfig
from tangolab.processes import lab_log, log_path, supervisor_name
from tangolab.scripting import wait_until
from tangolab.spy import Spy
from tests.conftest import run_lab, shared_lab

CRYOCON = "TemperatureController/lab"
BROKEN = "TangoTest/broken"
HANG_TIMEOUT = 5
MAX_RESTARTS = 3
NO_HARDWARE = "no hardware on /dev/ttyUSB9"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The demo lab, a short silence before a hung server is restarted, and one server that cannot start."""
    data = shared_lab().with_free_ports().data
    data["servers"]["TangoTest"] = {"broken": {"TangoTest": {"lab/broken/1": {}}}}
    tangolab = data["tangolab"]
    tangolab["commands"] = {"TangoTest": [sys.executable, "-c", f"print({NO_HARDWARE!r}); raise SystemExit(3)"]}
    tangolab["supervisor"] = {"HangTimeout": HANG_TIMEOUT, "MaxRestarts": MAX_RESTARTS, "CrashWindow": 120}
    with run_lab(LabConfig(data), tmp_path_factory.mktemp("supervised")) as lab:
        yield lab


def programs(lab) -> dict[str, dict]:
    return {program["name"]: program for program in lab.programs()}


def log_times(lab, pattern: str) -> list[float]:
    """When the lab log says something matching `pattern` (epoch seconds)."""
    found = []
    for line in lab_log(lab.run_dir).read_text().splitlines():
        if re.search(pattern, line):
            found.append(datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return found


def test_programs_start_level_by_level(lab):
    running = programs(lab)
    assert all(p["phase"] == "running" for name, p in running.items() if name != BROKEN), running
    assert {name: p["level"] for name, p in running.items() if p["level"] == 0} == {"database": 0, "watchdog": 0}
    assert log_times(lab, r"supervisor: watching database \(pid \d+, already running\)")  # `up` started it
    started = {name: min(log_times(lab, f"started {re.escape(name)} ")) for name in running if name != "database"}
    answered = {name: min(log_times(lab, f"{re.escape(name)} answers")) for name in running if name != BROKEN}
    for level in (1, 2, 3):
        below = [answered[name] for name, p in running.items() if p["level"] == level - 1 and name in answered]
        for name, program in running.items():
            if program["level"] == level:
                assert started[name] >= max(below), f"{name} started before level {level - 1} answered"


def test_server_crashing_at_start_up_is_retried_then_failed_and_the_rest_runs(lab):
    supervisor = lab.supervisor
    wait_until(lambda: programs(lab)[BROKEN]["phase"] == "failed", 60, what="the broken server marked failed")
    broken = programs(lab)[BROKEN]
    assert broken["restarts"] == MAX_RESTARTS
    assert supervisor.state() == tango.DevState.ALARM
    status = supervisor.status()
    assert f"{BROKEN} FAILED" in status and NO_HARDWARE in status and "crashed 4 times" in status, status
    assert NO_HARDWARE in supervisor.command_inout("Log", BROKEN)
    assert any(BROKEN in line for line in supervisor.read_attribute("failingServers").value)
    assert len(log_times(lab, rf"{re.escape(BROKEN)} exited with status 3; restarting in 0\.2 s")) == 1
    assert len(log_times(lab, rf"{re.escape(BROKEN)} exited with status 3; restarting in 0\.6 s")) == 1
    assert lab.proxy("lab/cryocon/1").state() in (tango.DevState.ON, tango.DevState.RUNNING)
    assert "lab/cryocon/1" not in str(supervisor.read_attribute("failingServers").value)


def test_killed_server_is_restarted_and_its_values_flow_again(lab):
    archive = str(lab.run_dir / "archive.db")
    spy = Spy(devices=[f"tango://{lab.tango_host}/lab/cryocon/1"], pattern="temperatureA")
    spy.start()
    try:
        wait_until(lambda: any(r["kind"] == "event" for r in spy.poll()), 60, what="a first event")
        pid = lab.pid(CRYOCON)
        killed = time.time()
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: lab.pid(CRYOCON) not in (0, pid), 60, what="the server started again")
        died = log_times(lab, f"{re.escape(CRYOCON)} killed by SIGKILL")[-1]
        relaunched = log_times(lab, rf"started {re.escape(CRYOCON)} \(restart")[-1]
        assert 0 <= relaunched - died < 2.0, "the supervisor took more than 2 s to start it again"

        def archived_after_kill() -> bool:
            found = history.values("lab/cryocon/1/temperatureA", killed, store=archive)
            return bool(np.count_nonzero(~np.ma.getmaskarray(found["value"])))

        events = []
        wait_until(lambda: events.extend(r for r in spy.poll() if r["kind"] == "event" and
                                         datetime.fromisoformat(r["time"]).timestamp() > killed) or events,
                   60, what="an event from the restarted server")
        heard = time.time() - killed
        wait_until(archived_after_kill, 60, what="archived values from the restarted server")
        print(f"\nrelaunched {relaunched - died:.2f} s after its death; subscriber event after {heard:.2f} s, "
              f"archive after {time.time() - killed:.2f} s")
    finally:
        spy.stop()
    log = log_path(lab.run_dir, CRYOCON).read_text()
    assert log.count("----- ") >= 2 and log.index("----- ") == 0, "a restart must append to the log, not truncate it"


def test_hung_server_is_killed_and_restarted_after_the_silence(lab):
    pid = lab.pid(CRYOCON)
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: lab.pid(CRYOCON) not in (0, pid), 30 + 3 * HANG_TIMEOUT, what="the hung server replaced")
    finally:
        if os.path.exists(f"/proc/{pid}"):
            os.kill(pid, signal.SIGKILL)
    assert log_times(lab, rf"{re.escape(CRYOCON)} \(pid {pid}\) has not answered for [5-9] s: killing it")
    lab.wait_device("lab/cryocon/1")


def test_a_level_stops_and_starts_again(lab):
    supervisor = lab.supervisor
    supervisor.command_inout("StopLevel", 3)
    stopped = set(supervisor.read_attribute("stoppedServers").value)
    assert {"Picoammeter/lab", "CcdHead/lab"} <= stopped
    with pytest.raises(tango.DevFailed):
        lab.proxy("lab/ccd/1").ping()
    assert lab.proxy("lab/cryocon/1").ping()  # the other levels run on
    supervisor.command_inout("StartLevel", 3)
    lab.wait_device("lab/ccd/1")
    lab.wait_device("lab/picoammeter/1")
    wait_until(lambda: {"Picoammeter/lab", "CcdHead/lab"} <= set(supervisor.read_attribute("runningServers").value),
               30, what="level 3 running")


def test_unknown_program_or_level_is_refused_with_what_exists(lab):
    with pytest.raises(tango.DevFailed) as refused:
        lab.supervisor.command_inout("Restart", "TemperatureControler/lab")
    assert refused.value.args[0].reason == "UnknownProgram"
    assert "TemperatureController/lab" in refused.value.args[0].desc
    with pytest.raises(tango.DevFailed) as refused:
        lab.supervisor.command_inout("StopLevel", 7)
    assert refused.value.args[0].reason == "UnknownLevel" and "[0, 1, 2, 3]" in refused.value.args[0].desc


def test_the_labs_own_programs_are_not_kept_stopped(lab):
    for command, argument in (("Stop", "database"), ("Kill", "watchdog"), ("StopLevel", 0)):
        with pytest.raises(tango.DevFailed) as refused:
            lab.supervisor.command_inout(command, argument)
        assert refused.value.args[0].reason == "OwnProgram", (command, argument)
        assert "tangolab down" in refused.value.args[0].desc
    assert all(p["phase"] == "running" for name, p in programs(lab).items() if name in ("database", "watchdog"))


def test_a_new_supervisor_adopts_the_running_programs(lab):
    before = {name: p["pid"] for name, p in programs(lab).items() if p["phase"] == "running"}
    old = lab.own_pids()["supervisor"]
    watchdog = before["watchdog"]
    os.kill(watchdog, signal.SIGSTOP)  # so that the lab is seen without a supervisor
    try:
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: "supervisor" not in lab.own_pids(), 30, what="the supervisor gone")
        assert all(os.path.exists(f"/proc/{pid}") for pid in before.values()), "the lab went down with its supervisor"
    finally:
        os.kill(watchdog, signal.SIGCONT)  # its watchdog starts a new one

    wait_until(lambda: lab.own_pids().get("supervisor", old) != old, 60, what="a new supervisor")
    wait_until(lambda: all(p["phase"] == "running" for name, p in programs(lab).items() if name in before), 60,
               what="every program watched again")
    assert {name: p["pid"] for name, p in programs(lab).items() if name in before} == before  # not restarted
    adopted = before[CRYOCON]
    os.kill(adopted, signal.SIGKILL)  # not the new supervisor's child: still seen at once
    wait_until(lambda: lab.pid(CRYOCON) not in (0, adopted), 60, what="the adopted server restarted")
    lab.wait_device("lab/cryocon/1")


def test_a_hung_supervisor_is_killed_and_replaced_by_its_watchdog(lab):
    old = lab.own_pids()["supervisor"]
    os.kill(old, signal.SIGSTOP)  # its heartbeat stops
    try:
        wait_until(lambda: lab.own_pids().get("supervisor", old) != old, 30 + 3 * HANG_TIMEOUT,
                   what="the hung supervisor replaced")
    finally:
        if os.path.exists(f"/proc/{old}"):
            os.kill(old, signal.SIGKILL)
    assert log_times(lab, rf"watchdog: {re.escape(supervisor_name())} \(pid {old}\) has not gone round for \d+ s: "
                          "killing it")
    wait_until(lambda: lab.supervisor.ping(), 60, what="the new supervisor answering")

