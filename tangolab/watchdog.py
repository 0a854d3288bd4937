"""`python -m tangolab.watchdog`: who watches the supervisor.

A lab's supervisor keeps every other program running, the Tango database included. This small
process (standard library only: no Tango, so nothing of Tango can hang it) keeps the supervisor
running, and the supervisor keeps it running in turn: it is one of the supervisor's programs, at
level 0 beside the database. It waits on the supervisor's pidfd; when the supervisor dies it
starts a new one at once (after a back-off if it keeps dying), which adopts the lab's running
processes. A supervisor whose watcher has stopped going round (its heartbeat file untouched for
the supervisor's `HangTimeout`) is killed, and so started again. A supervisor cannot start without the database, so if the database has died too it
starts the database first. It acts under the run folder's lock (`RunLock`), so `tangolab up`
repairing the same lab or `tangolab down` stopping it never races it. (The original DAQ's
self-watchdog did the same for its one process: a heartbeat file, and a dead child restarted.)
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import time
from pathlib import Path

from .processes import (
    DATABASE,
    DATABASE_READY,
    HEARTBEAT_FILE,
    RUN_DIR_MARK,
    WATCHDOG_READY,
    RunLock,
    current_run,
    database_argv,
    is_alive,
    lab_logger,
    lab_processes,
    log_path,
    spawn,
    supervisor_argv,
    supervisor_name,
)

DATABASE_TIMEOUT = 30.0  # s a restarted database may take to accept requests
STEADY = 10.0  # s a supervisor must live to count as having started (else the next start waits longer)
MAX_BACKOFF = 30.0


def restore(run_dir: Path, tango_host: str) -> list[str]:
    """Start the lab's supervisor if none runs, and before it the database if that is gone too;
    returns what it started. The caller holds the run folder's lock. While a supervisor runs, the
    database is its program: it alone restarts it."""
    running = {process.name for process in lab_processes(run_dir)}
    if supervisor_name() in running:
        return []
    started = []
    if DATABASE not in running:
        database = spawn(DATABASE, database_argv(tango_host), run_dir, tango_host)
        wait_database(run_dir, database.pid)
        started.append(f"{DATABASE} (pid {database.pid})")
    supervisor = spawn(supervisor_name(), supervisor_argv(), run_dir, tango_host)
    started.append(f"{supervisor_name()} (pid {supervisor.pid})")
    return started


def wait_database(run_dir: Path, pid: int, timeout: float = DATABASE_TIMEOUT) -> None:
    """Until the database started as `pid` says in its log that it accepts requests; RuntimeError
    naming its log if it dies or is silent for `timeout` seconds."""
    log = log_path(run_dir, DATABASE)
    deadline = time.monotonic() + timeout
    while DATABASE_READY not in current_run(log):
        if not is_alive(pid) or time.monotonic() > deadline:
            raise RuntimeError(f"the database (pid {pid}) did not come up; see {log}")
        time.sleep(0.05)


class Watchdog:
    """Restarts the supervisor of the lab in `run_dir` whenever it dies."""

    def __init__(self, run_dir: Path, tango_host: str, hang_timeout: float = 30.0) -> None:
        self.run_dir, self.tango_host, self.hang_timeout = run_dir, tango_host, hang_timeout
        self.log = lab_logger(run_dir, "watchdog")
        self.quick_deaths = 0  # supervisors in a row that died within STEADY seconds: it cannot start

    def run(self) -> None:
        self.log.info("watching %s", supervisor_name())
        print(f"{WATCHDOG_READY.decode()}{supervisor_name()}", flush=True)  # its own log: the supervisor's probe
        while True:
            if pid := self._supervisor():
                began = time.monotonic()
                self._wait_exit(pid)
                self.quick_deaths = self.quick_deaths + 1 if time.monotonic() - began < STEADY else 1
            delay = self._backoff()
            time.sleep(delay)
            with RunLock(self.run_dir):  # `tangolab down` holds it while it stops the lab: then nothing is said
                if self._supervisor():  # `tangolab up` has repaired the lab meanwhile
                    continue
                self.log.warning("%s%s died; starting it again%s", supervisor_name(), f" (pid {pid})" if pid else "",
                                 f" (it keeps dying: waited {delay:.0f} s)" if delay else "")
                try:
                    started = restore(self.run_dir, self.tango_host)
                except (OSError, RuntimeError) as exc:
                    self.log.error("could not start %s: %s", supervisor_name(), exc)
                    started = []
            if started:
                self.log.info("started %s", ", ".join(started))
            else:
                self.quick_deaths += 1

    def _wait_exit(self, pid: int) -> None:
        """Until the supervisor `pid` has exited (woken by its pidfd); killed if its heartbeat stops."""
        heartbeat = self.run_dir / HEARTBEAT_FILE
        since = time.time()  # its silence counts from now at the earliest: it may be starting
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:  # gone already, or no pidfd here: polled
            pidfd = -1
        try:
            while is_alive(pid):
                if pidfd >= 0:
                    select.select([pidfd], [], [], 1.0)
                else:
                    time.sleep(1.0)
                _reap_children()
                silent = time.time() - max(since, _modified(heartbeat))
                if silent > self.hang_timeout:
                    self.log.warning("%s (pid %d) has not gone round for %.0f s: killing it", supervisor_name(), pid,
                                     silent)
                    os.kill(pid, signal.SIGKILL)
                    since = time.time()
        finally:
            if pidfd >= 0:
                os.close(pidfd)

    def _supervisor(self) -> int:
        return next((p.pid for p in lab_processes(self.run_dir) if p.name == supervisor_name()), 0)

    def _backoff(self) -> float:
        """None for the first death; then 1, 3, 9 ... s, so that a supervisor that cannot start
        does not spin."""
        return 0.0 if self.quick_deaths <= 1 else min(MAX_BACKOFF, 3.0 ** (self.quick_deaths - 2))


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _reap_children() -> None:
    """Collect the exit of what it started (the supervisor adopts them and watches them by pidfd).
    Not by ignoring SIGCHLD: its children would inherit that, and the supervisor needs their exit
    statuses."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hang-timeout", type=float, default=30.0,
                        help="seconds of silence of the supervisor's heartbeat before it is killed (%(default)s)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    Watchdog(Path(os.environ[RUN_DIR_MARK]), os.environ["TANGO_HOST"], args.hang_timeout).run()


if __name__ == "__main__":
    main()
