"""The supervision of programs, with real processes: restarts with back-off, crash loops, hangs,
levels, requests, and adopting processes that already run."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from device_servers.supervisor import programs
from device_servers.supervisor.device import LocalRunner
from device_servers.supervisor.programs import Phase, Program, RestartPolicy, Supervision
from tangolab.processes import is_alive, log_path
from tangolab.scripting import wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
QUICK = RestartPolicy(first_backoff=0.05, max_restarts=2, window=60, hang_after=1.0, start_timeout=30,
                      probe_period=0.1)


def program(tmp_path, name: str, argv: list[str], level: int = 1, probe=lambda: True) -> Program:
    return Program(name, argv, level, probe, str(log_path(tmp_path, name)))


@pytest.fixture
def supervise(tmp_path):
    """Supervise programs (with the quick policy unless told otherwise); stops everything afterwards."""
    made: list[Supervision] = []

    def make(*programs: Program, policy: RestartPolicy = QUICK, running: dict | None = None) -> Supervision:
        supervision = Supervision(programs, LocalRunner(tmp_path, "127.0.0.1:1"), policy)
        supervision.begin(running)
        made.append(supervision)
        return supervision

    yield make
    for supervision in made:
        supervision.stop_levels()
        supervision.end()


def test_a_killed_program_is_restarted_and_a_stopped_one_stays_stopped(tmp_path, supervise):
    supervision = supervise(program(tmp_path, "sleeper", SLEEPER))
    supervision.start_levels()
    sleeper = supervision.program("sleeper")
    wait_until(lambda: sleeper.phase == Phase.RUNNING, 30, what="running")
    first = sleeper.pid
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: sleeper.phase == Phase.RUNNING and sleeper.pid != first, 30, what="restarted")
    assert sleeper.restarts == 1
    second = sleeper.pid
    supervision.stop("sleeper")
    assert sleeper.phase == Phase.STOPPED and not is_alive(second)
    wait_until(lambda: sleeper.pid == 0, 30, what="its exit seen by the watcher")
    assert sleeper.phase == Phase.STOPPED and sleeper.restarts == 1  # seen, and not started again


def test_a_start_that_comes_while_the_old_death_is_being_noticed_keeps_the_new_process(tmp_path, supervise,
                                                                                     monkeypatch):
    """`Kill` then `Start` at once (as `Lab.kill` and `Lab.start_program` do): the Start can land
    between the watcher hearing the old process die and the watcher handling it, and the new
    process's pidfd can take the old one's number. The watcher once took that for the new process's
    death and waited for its exit status holding the lock, and every Tango call to the supervisor
    hung (seen in CI). Here the Start is made to land in exactly that gap."""
    supervision = supervise(program(tmp_path, "sleeper", SLEEPER))
    sleeper = supervision.program("sleeper")
    supervision.start("sleeper")
    wait_until(lambda: sleeper.phase == Phase.RUNNING, 30, what="running")
    old, watching, landed = sleeper.pid, threading.Event(), threading.Event()

    def select_then_start(readers, *rest):
        watching.set()
        ready = select.select(readers, *rest)
        if not landed.is_set() and sleeper.phase == Phase.STOPPED and sleeper.pidfd in ready[0]:
            supervision.start("sleeper")
            wait_until(lambda: sleeper.pid not in (0, old) and sleeper.pidfd >= 0, 30, what="the new process")
            landed.set()
        return ready

    monkeypatch.setattr(programs, "select", SimpleNamespace(select=select_then_start))
    wait_until(watching.is_set, 30, what="the watcher selecting through the wrapper")  # not the plain one
    supervision.stop("sleeper", hard=True)
    wait_until(landed.is_set, 30, what="the Start landing in the gap")
    new = sleeper.pid
    assert supervision.lock.acquire(timeout=10), "the supervision stays locked"
    supervision.lock.release()
    wait_until(lambda: sleeper.phase == Phase.RUNNING, 30, what="the new process answering")
    assert sleeper.pid == new and is_alive(new) and sleeper.restarts == 0


def test_a_crash_loop_backs_off_then_gives_up_with_the_log(tmp_path, supervise):
    crasher = program(tmp_path, "crasher", [sys.executable, "-c", "print('cannot open /dev/ttyUSB7'); raise SystemExit(4)"])
    supervision = supervise(crasher)
    supervision.start("crasher")
    wait_until(lambda: crasher.phase == Phase.FAILED, 30, what="failed")
    assert crasher.restarts == QUICK.max_restarts
    assert "crashed 3 times" in crasher.reason and "exited with status 4" in crasher.reason
    lines = Path(crasher.log).read_text().splitlines()
    assert lines.count("cannot open /dev/ttyUSB7") == 3  # each start appended, never truncated
    assert [QUICK.backoff(n) for n in (1, 2, 3)] == pytest.approx([0.05, 0.15, 0.45])

    supervision.start("crasher")  # asked again: a fresh start with a fresh count
    assert crasher.phase in (Phase.STARTING, Phase.BACKOFF, Phase.RUNNING, Phase.FAILED)
    wait_until(lambda: crasher.phase == Phase.FAILED, 30, what="failed again")
    assert Path(crasher.log).read_text().splitlines().count("cannot open /dev/ttyUSB7") == 6


def test_a_silent_program_is_killed_and_restarted(tmp_path, supervise):
    answering = threading.Event()
    answering.set()
    sleeper = program(tmp_path, "sleeper", SLEEPER, probe=answering.is_set)
    supervision = supervise(sleeper)
    supervision.start("sleeper")
    wait_until(lambda: sleeper.phase == Phase.RUNNING, 30, what="running")
    hung = sleeper.pid
    answering.clear()  # it stops answering (as a process stopped with SIGSTOP does)
    wait_until(lambda: sleeper.pid not in (0, hung), 30, what="killed and started again")
    assert not is_alive(hung)
    answering.set()
    wait_until(lambda: sleeper.phase == Phase.RUNNING, 30, what="running again")


def test_a_level_starts_once_the_one_below_answers(tmp_path, supervise):
    ready = threading.Event()
    service = program(tmp_path, "service", SLEEPER, level=1, probe=ready.is_set)
    server = program(tmp_path, "server", SLEEPER, level=2)
    supervision = supervise(service, server)
    supervision.start_levels()
    wait_until(lambda: service.phase == Phase.STARTING, 30, what="level 1 starting")
    assert server.phase == Phase.STOPPED  # waits while level 1 does not answer
    ready.set()
    wait_until(lambda: server.phase == Phase.RUNNING, 30, what="level 2 running")
    assert server.launched_at >= service.answered_at - QUICK.probe_period
    supervision.stop_levels([2])
    assert server.phase == Phase.STOPPED and service.phase == Phase.RUNNING


def test_programs_already_running_are_adopted_not_started_again(tmp_path, supervise):
    already = subprocess.Popen(SLEEPER)
    try:
        sleeper = program(tmp_path, "sleeper", SLEEPER)
        supervision = supervise(sleeper, running={"sleeper": already.pid})
        supervision.start_levels()
        wait_until(lambda: sleeper.phase == Phase.RUNNING, 30, what="adopted")
        assert sleeper.pid == already.pid
        already.kill()
        already.wait()
        wait_until(lambda: sleeper.pid not in (0, already.pid), 30, what="restarted after the adopted one died")
    finally:
        already.kill()
        already.wait()


def test_unknown_names_say_what_exists(tmp_path, supervise):
    supervision = supervise(program(tmp_path, "sleeper", SLEEPER))
    with pytest.raises(KeyError, match="known: sleeper"):
        supervision.start("sleepr")


def test_programs_kept_stopped_are_not_started_nor_waited_for(tmp_path, supervise):
    kept, started, next_level = (program(tmp_path, name, SLEEPER, level) for name, level in
                                 (("kept", 1), ("started", 1), ("next", 2)))
    supervision = supervise(kept, started, next_level, policy=replace(QUICK, start_timeout=600))
    supervision.start_levels(keep_stopped={"kept"})
    wait_until(lambda: next_level.phase == Phase.RUNNING, 30, what="the next level running, not held by the kept one")
    assert started.phase == Phase.RUNNING and kept.phase == Phase.STOPPED and not kept.pid
