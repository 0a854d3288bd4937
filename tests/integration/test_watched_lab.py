"""Every process of a detached lab is watched: kill -9 of the Tango database, of the supervisor, of
its watchdog, each comes back by itself; a server killed afterwards is restarted; new clients
connect; `lab.log` says what happened; and `tangolab up` on a lab whose own processes all died
brings them back instead of refusing. A real lab brought up with `tangolab up --detach`, on free
ports in a folder of its own, stopped by PID afterwards."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
import tango

from tangolab.events import SERVER_ENDED, Intake
from tangolab.lab_config import free_port
from tangolab.processes import lab_log, lab_processes, supervisor_name
from tangolab.scripting import wait_until
from tests.integration.test_cli import kill_everything_of, lab_file, tangolab, up

CHILLER, PSU = "Chiller/lab", "PowerSupply/lab"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("watched")
    run_dir, host, config = (folder / "var").resolve(), f"127.0.0.1:{free_port()}", lab_file(folder)
    started = up(run_dir, host, config)
    try:
        assert started.returncode == 0, started.stderr
        yield SimpleNamespace(run_dir=run_dir, tango_host=host, config=config)
    finally:
        tangolab("down", "--run-dir", str(run_dir))
        kill_everything_of(run_dir)


def running(lab, name: str) -> int:
    """The process ID of `name`, 0 if it does not run."""
    return next((p.pid for p in lab_processes(lab.run_dir) if p.name == name), 0)


def pid_of(lab, name: str) -> int:
    """The process ID of `name`, once it runs (never 0: os.kill would signal this test's process group)."""
    return wait_until(lambda: running(lab, name), 90, what=f"{name} running")


def restarted(lab, name: str, old: int) -> int:
    """The new process of `name` once there is one (the old gone)."""
    wait_until(lambda: running(lab, name) not in (0, old), 90, what=f"{name} running again")
    return running(lab, name)


def new_client_reads(lab, attribute: str) -> bool:
    """A new process, a new client: it finds the device through the database."""
    return tangolab("get", "--tango-host", lab.tango_host, attribute, timeout=60).returncode == 0


def lab_log_since(lab, size: int) -> str:
    return lab_log(lab.run_dir).read_bytes()[size:].decode()


def supervisor_answers(lab) -> tango.DeviceProxy:
    """The lab's supervisor, once it answers (a new one takes a few seconds after its process starts)."""
    supervisor = tango.DeviceProxy(f"tango://{lab.tango_host}/lab/supervisor/{supervisor_name().split('/')[1]}")
    wait_until(lambda: supervisor.ping() >= 0, 60, what="the supervisor answering")
    return supervisor


def kill(pid: int) -> None:
    assert pid > 0
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 30, what=f"pid {pid} gone")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def test_a_killed_database_comes_back_with_its_file_and_clients_connect(lab):
    host, port = lab.tango_host.split(":")
    tango.Database(host, int(port)).put_property("watched_lab", {"written": ["before the kill"]})
    relay = tango.DeviceProxy(f"tango://{lab.tango_host}/lab/relay/1")  # a client from before the death
    relay.ping()
    logged = lab_log(lab.run_dir).stat().st_size
    old = pid_of(lab, "database")

    kill(old)
    restarted(lab, "database", old)
    wait_until(lambda: new_client_reads(lab, "cryocon/1/temperatureA"), 60, what="a new client reading a value")
    assert tangolab("status", "--run-dir", str(lab.run_dir)).returncode == 0
    assert tango.Database(host, int(port)).get_property("watched_lab", "written")["written"] == ["before the kill"]
    relay.ping()
    tango.DeviceProxy(f"tango://{lab.tango_host}/lab/cryocon/1").ping()  # resolved through the new database

    # the supervisor's probe may hear the database answer after a client did
    wait_until(lambda: "supervisor: database answers" in lab_log_since(lab, logged), 60,
               what="the supervisor saying the database answers")
    said = lab_log_since(lab, logged)
    assert "supervisor: database exited; restarting in 0.2 s" in said, said
    assert "supervisor: started database (restart 1, pid" in said, said

    chiller = pid_of(lab, CHILLER)  # a server killed afterwards starts, exports itself, and answers
    kill(chiller)
    restarted(lab, CHILLER, chiller)
    wait_until(lambda: new_client_reads(lab, "chiller/1/State"), 60, what="the restarted chiller answering")


def test_a_killed_supervisor_is_restarted_by_its_watchdog(lab):
    logged = lab_log(lab.run_dir).stat().st_size
    old = pid_of(lab, supervisor_name())
    kill(old)
    restarted(lab, supervisor_name(), old)
    wait_until(lambda: tangolab("status", "--run-dir", str(lab.run_dir)).returncode == 0, 60,
               what="`tangolab status` answered by the new supervisor")

    chiller = pid_of(lab, CHILLER)  # the new supervisor watches the lab
    kill(chiller)
    restarted(lab, CHILLER, chiller)
    wait_until(lambda: new_client_reads(lab, "chiller/1/State"), 60, what="the restarted chiller answering")
    said = lab_log_since(lab, logged)
    assert f"watchdog: {supervisor_name()} (pid {old}) died; starting it again" in said, said
    assert f"watchdog: started {supervisor_name()} (pid" in said, said
    assert f"supervisor: {CHILLER} exited; restarting" in said, said


def test_a_client_hears_at_once_the_news_of_a_supervisor_its_watchdog_restarted(lab):
    """A client subscribed before the supervisor died hears the new supervisor's news without
    waiting for Tango's 10 s keep-alive: a server killed as soon as the new supervisor answers is
    an outage from its death in the client's events (the archiver's, the spy's)."""
    intake = Intake()
    try:
        feed = intake.add(f"tango://{lab.tango_host}/lab/chiller/1/temperature")
        old = pid_of(lab, supervisor_name())
        kill(old)
        restarted(lab, supervisor_name(), old)
        supervisor_answers(lab)

        chiller = pid_of(lab, CHILLER)
        kill(chiller)
        events: list = []

        def ended() -> bool:
            events.extend(feed.take())
            return any(event.err and event.errors[0].reason == SERVER_ENDED for event in events)

        wait_until(ended, 30, what="the chiller's end, as the new supervisor announced it")
        restarted(lab, CHILLER, chiller)
    finally:
        intake.close()


def test_a_killed_watchdog_is_restarted_by_the_supervisor(lab):
    logged = lab_log(lab.run_dir).stat().st_size
    old = pid_of(lab, "watchdog")
    kill(old)
    new = restarted(lab, "watchdog", old)
    assert "supervisor: started watchdog (restart" in lab_log_since(lab, logged)

    supervisor = pid_of(lab, supervisor_name())  # and the new watchdog watches the supervisor
    kill(supervisor)
    restarted(lab, supervisor_name(), supervisor)
    assert running(lab, "watchdog") == new


def test_a_new_supervisor_starts_what_died_meanwhile_but_not_what_was_stopped_on_request(lab):
    supervisor_answers(lab)
    assert tangolab("call", "--tango-host", lab.tango_host, "supervisor", "Stop", PSU).returncode == 0
    watchdog = pid_of(lab, "watchdog")
    os.kill(watchdog, signal.SIGSTOP)  # no new supervisor until the chiller has died too
    try:
        old = pid_of(lab, supervisor_name())
        kill(old)
        chiller = pid_of(lab, CHILLER)
        kill(chiller)
    finally:
        os.kill(watchdog, signal.SIGCONT)
    restarted(lab, supervisor_name(), old)
    restarted(lab, CHILLER, chiller)
    wait_until(lambda: new_client_reads(lab, "chiller/1/State"), 60, what="the chiller answering")
    supervisor = supervisor_answers(lab)
    assert PSU in supervisor.read_attribute("stoppedServers").value
    assert not running(lab, PSU)
    assert tangolab("call", "--tango-host", lab.tango_host, "supervisor", "Start", PSU).returncode == 0
    wait_until(lambda: new_client_reads(lab, "psu/1/State"), 90, what="the power supply started again")


def test_up_brings_back_a_lab_whose_database_supervisor_and_watchdog_all_died(lab):
    supervisor_answers(lab)
    assert tangolab("call", "--tango-host", lab.tango_host, "supervisor", "Stop", PSU).returncode == 0
    logged = lab_log(lab.run_dir).stat().st_size
    servers = {name: pid_of(lab, name) for name in ("Relay/lab", CHILLER)}
    own = [pid_of(lab, name) for name in (supervisor_name(), "watchdog", "database")]
    for pid in own:  # stopped first, so that none restarts another before all are killed
        os.kill(pid, signal.SIGSTOP)
    for pid in own:
        kill(pid)
    assert not new_client_reads(lab, "cryocon/1/temperatureA")

    repaired = up(lab.run_dir, lab.tango_host, lab.config)
    assert repaired.returncode == 0, repaired.stderr
    assert "repaired the lab already up" in repaired.stdout, repaired.stdout
    assert all(running(lab, name) not in (0, pid) for name, pid in zip((supervisor_name(), "watchdog", "database"),
                                                                       own))
    assert {name: running(lab, name) for name in servers} == servers  # adopted, not restarted
    assert new_client_reads(lab, "cryocon/1/temperatureA")
    assert tangolab("status", "--run-dir", str(lab.run_dir)).returncode == 0
    said = lab_log_since(lab, logged)
    assert f"tangolab: up: database, {supervisor_name()}, watchdog had died; started database" in said, said

    assert not running(lab, PSU)  # stopped on request before: it stays so, and `up` did not wait for it

    again = up(lab.run_dir, lab.tango_host, lab.config)  # nothing died: refused, as on any lab that is up
    assert again.returncode == 1 and "already up" in again.stderr, again.stderr
    assert tangolab("call", "--tango-host", lab.tango_host, "supervisor", "Start", PSU).returncode == 0
