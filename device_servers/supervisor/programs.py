"""Keep a lab's programs running: start them by level, notice a death at once and a hang after a
silence, restart with back-off, and give up on a crash loop. Pure Python, no Tango: the device
(`device.py`) puts a Tango interface on it, the runner (local processes or Tango's Starter) does
the starting.

A death is noticed through a pidfd (the kernel wakes the watcher when the process exits, child or
not, so a supervisor restarted later still watches the processes it adopted). A hang is a program
whose `probe` (for a device server: a ping of its admin device) has not answered for
`policy.hang_after` seconds; it is killed and restarted like a dead one.
"""

from __future__ import annotations

import enum
import logging
import os
import select
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from tangolab.processes import is_alive


@dataclass(frozen=True)
class RestartPolicy:
    first_backoff: float = 0.2  # s before the first restart; each further crash in the window triples it
    max_backoff: float = 30.0
    max_restarts: int = 5  # crashes within `window` after which it is marked failed (a crash loop)
    window: float = 120.0
    hang_after: float = 30.0  # s of silence after which a running program is killed and restarted
    start_timeout: float = 60.0  # s a started program may take to answer before that counts as a hang
    probe_period: float = 1.0  # s between probes of a running program
    starting_probe_period: float = 0.1  # s between probes of a program not answering yet

    def backoff(self, crashes: int) -> float:
        return min(self.max_backoff, self.first_backoff * 3 ** max(0, crashes - 1))


class Phase(enum.Enum):
    STOPPED = "stopped"  # on request, or never started
    STARTING = "starting"  # launched, not yet answering
    RUNNING = "running"
    BACKOFF = "backoff"  # died; restarts when its back-off expires
    FAILED = "failed"  # crash loop: not restarted until asked


@dataclass(eq=False)
class Program:
    """One process the supervisor keeps running."""

    name: str  # "TemperatureController/lab", "simulator/cryocon"
    argv: list[str]
    level: int
    probe: Callable[[], bool]  # True when it answers; may block up to its own time-out
    log: str = ""  # its log file, for the last lines of a failed program
    phase: Phase = Phase.STOPPED
    pid: int = 0
    started_at: float = 0.0  # time.time() of the current process's start
    answered_at: float = 0.0  # time.monotonic() of its last answer
    launched_at: float = 0.0  # time.monotonic()
    probed_at: float = 0.0  # time.monotonic() of the last probe sent
    restarts: int = 0  # automatic restarts since the supervisor started
    crashes: deque = field(default_factory=deque)  # time.monotonic() of recent unexpected exits
    restart_at: float = 0.0
    reason: str = ""  # why it is not running, in words
    pidfd: int = -1
    probing: Future | None = None
    launches: int = 0  # launches asked so far: a launch finishing after a newer request is undone
    has_run: bool = False  # a process of it has answered (or was adopted) since the supervisor started

    @property
    def uptime(self) -> float:
        return time.time() - self.started_at if self.phase in (Phase.STARTING, Phase.RUNNING) else 0.0


class Runner(Protocol):
    """What starts and stops the processes: this host's kernel, or Tango's Starter."""

    def launch(self, program: Program) -> int:
        """Start it; its PID (0 when not known)."""

    def kill(self, program: Program, sig: int) -> None:
        """Signal it (SIGTERM: stop; SIGKILL: kill now)."""

    def exit_status(self, program: Program) -> str:
        """How it ended, in words, once it has ended."""


class Supervision:
    """The programs of one host, and the thread that keeps them running."""

    def __init__(
        self,
        programs: Iterable[Program],
        runner: Runner,
        policy: RestartPolicy = RestartPolicy(),
        log: logging.Logger | None = None,
        on_change: Callable[[], None] = lambda: None,
        heartbeat: Path | None = None,
    ) -> None:
        self.programs = {program.name: program for program in sorted(programs, key=lambda p: p.level)}
        self.runner = runner
        self.policy = policy
        self.log = log or logging.getLogger("tangolab.supervisor")
        self.on_change = on_change  # called from the watcher thread after a change, outside the lock
        self.heartbeat = heartbeat  # touched each second while the watcher goes round (the watchdog reads it)
        self.came_up: deque[Program] = deque()  # programs that answer again (after a restart) since on_change ran
        self.ended: deque[tuple[Program, float]] = deque()  # processes that ended since on_change ran, and when
        self.lock = threading.RLock()
        self._changed = False
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._probes = ThreadPoolExecutor(max_workers=4, thread_name_prefix="probe")
        self._launcher = ThreadPoolExecutor(max_workers=8, thread_name_prefix="launch")
        self._sequence: threading.Thread | None = None
        self._cancel_sequence = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="supervision", daemon=True)

    # -- life of the supervision itself --------------------------------------------------------

    def begin(self, running: dict[str, int] | None = None) -> None:
        """Start watching; `running` gives the PIDs of programs already up (adopted, not restarted)."""
        for name, pid in (running or {}).items():
            program = self.programs.get(name)
            if program is not None and is_alive(pid):
                self._adopt(program, pid)
        self._thread.start()

    def end(self) -> None:
        """Stop watching; the programs keep running (a supervisor restart must not stop the lab)."""
        self._cancel_sequence.set()
        self._stop.set()
        self._wake()
        self._thread.join(5)
        self._probes.shutdown(wait=False, cancel_futures=True)
        self._launcher.shutdown(wait=False, cancel_futures=True)
        for program in self.programs.values():
            self._close_pidfd(program)
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- requests ------------------------------------------------------------------------------

    def program(self, name: str) -> Program:
        try:
            return self.programs[name]
        except KeyError:
            raise KeyError(f"no program {name!r} here; known: {', '.join(self.programs)}") from None

    def start(self, name: str) -> None:
        """Start it now if it is not running (a failed or backing-off program too)."""
        with self.lock:
            program = self.program(name)
            if program.phase == Phase.FAILED:
                program.crashes.clear()  # a fresh start: the crash count begins again
            if program.phase in (Phase.STOPPED, Phase.FAILED, Phase.BACKOFF):
                self._launch(program, "on request")

    def stop(self, name: str, hard: bool = False) -> None:
        """Stop it and keep it stopped: SIGTERM (SIGKILL after 10 s), or SIGKILL at once when `hard`."""
        with self.lock:
            program = self.program(name)
            pid, was = program.pid, program.phase
            program.phase, program.reason = Phase.STOPPED, "stopped on request"
            self._note(program, f"stopping {program.name} (pid {pid}{', hard' if hard else ''})" if pid else
                       f"{program.name} stays stopped")
        if pid and was in (Phase.STARTING, Phase.RUNNING):
            self._terminate(program, pid, signal.SIGKILL if hard else signal.SIGTERM)

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    def start_levels(self, levels: Iterable[int] | None = None, timeout: float | None = None,
                     keep_stopped: Iterable[str] = ()) -> None:
        """Start level by level in the background: a level's programs in parallel (but those of
        `keep_stopped`), each level once the previous one answers (or has failed)."""
        wanted = sorted(set(levels) if levels is not None else {p.level for p in self.programs.values()})
        self._cancel_sequence.set()
        if self._sequence is not None:
            self._sequence.join(5)
        self._cancel_sequence = cancel = threading.Event()
        self._sequence = threading.Thread(
            target=self._start_in_order,
            args=(wanted, timeout or self.policy.start_timeout, cancel, frozenset(keep_stopped)),
            name="start levels", daemon=True,
        )
        self._sequence.start()

    def stop_levels(self, levels: Iterable[int] | None = None) -> None:
        """Stop level by level, highest first, each level in parallel; returns when all are gone."""
        self._cancel_sequence.set()
        wanted = sorted(set(levels) if levels is not None else {p.level for p in self.programs.values()}, reverse=True)
        for level in wanted:
            names = [p.name for p in self.programs.values() if p.level == level]
            threads = [threading.Thread(target=self.stop, args=(name,)) for name in names]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

    def levels_up(self, levels: Iterable[int]) -> bool:
        return self._up(p for p in self.programs.values() if p.level in set(levels))

    @staticmethod
    def _up(programs: Iterable[Program]) -> bool:
        return all(p.phase in (Phase.RUNNING, Phase.FAILED) for p in programs)

    def snapshot(self) -> list[Program]:
        with self.lock:
            return list(self.programs.values())

    # -- the watcher ---------------------------------------------------------------------------

    def _start_in_order(self, levels: list[int], timeout: float, cancel: threading.Event,
                        keep_stopped: frozenset[str] = frozenset()) -> None:
        for level in levels:
            members = [p for p in self.programs.values() if p.level == level and p.name not in keep_stopped]
            for program in members:
                if not cancel.is_set():
                    self.start(program.name)
            deadline = time.monotonic() + timeout
            while not cancel.is_set() and not self._up(members) and time.monotonic() < deadline:
                cancel.wait(0.05)
            if not cancel.is_set() and not self._up(members):
                late = [p.name for p in members if p.phase != Phase.RUNNING]
                self.log.warning("level %d not up after %g s (%s); starting the next level anyway",
                                 level, timeout, ", ".join(late))

    def _watch(self) -> None:
        beaten = 0.0
        while not self._stop.is_set():
            with self.lock:  # a pidfd stands for one process: a Start may replace it (same number) meanwhile
                watched = {p.pidfd: (p, p.pid) for p in self.programs.values() if p.pidfd >= 0}
            try:
                ready, _, _ = select.select([self._wake_r, *watched], [], [], 0.05)
            except (OSError, ValueError):  # a pidfd closed meanwhile
                ready = []
            if self._wake_r in ready:
                os.read(self._wake_r, 512)
            now = time.monotonic()
            with self.lock:
                for fd in ready:
                    program, pid = watched.get(fd, (None, 0))
                    if program is not None and program.pidfd == fd and program.pid == pid:
                        self._exited(program, now)
                for program in self.programs.values():
                    self._check(program, now)
                changed, self._changed = self._changed, False
            if self.heartbeat is not None and now - beaten >= 1.0:
                beaten = now
                try:
                    self.heartbeat.touch()
                except OSError as exc:  # the run folder gone: nothing to tell, nothing to stop for
                    self.log.debug("no heartbeat: %s", exc)
            if changed:
                try:
                    self.on_change()
                except Exception:  # a failing listener must not stop the supervision
                    self.log.exception("change listener failed")

    def _check(self, program: Program, now: float) -> None:
        """Timers of one program: back-off expiry, probes, silence."""
        if program.phase == Phase.BACKOFF and now >= program.restart_at:
            program.restarts += 1
            self._launch(program, f"restart {program.restarts}")
        elif program.phase in (Phase.STARTING, Phase.RUNNING):
            if program.pidfd < 0 and program.pid and not is_alive(program.pid):  # no pidfd: watched by polling
                self._exited(program, now)
                return
            silent_since = program.answered_at or program.launched_at
            limit = self.policy.hang_after if program.answered_at else max(self.policy.hang_after,
                                                                           self.policy.start_timeout)
            if now - silent_since > limit:
                self._note(program, f"{program.name} (pid {program.pid}) has not answered for {now - silent_since:.0f} s:"
                           " killing it", logging.WARNING)
                program.reason = f"hung: no answer for {now - silent_since:.0f} s"
                program.answered_at = now  # one kill per silence
                self.runner.kill(program, signal.SIGKILL)
            elif program.probing is None and now - program.probed_at >= (
                self.policy.probe_period if program.phase == Phase.RUNNING else self.policy.starting_probe_period
            ):
                program.probed_at = now
                program.probing = self._probes.submit(self._probe, program, program.pid)

    def _probe(self, program: Program, pid: int) -> None:
        try:
            answered = program.probe()
        except Exception:  # noqa: BLE001 - whatever the probe raises, it did not answer
            answered = False
        with self.lock:
            program.probing = None
            if answered and program.pid == pid and program.phase in (Phase.STARTING, Phase.RUNNING):
                program.answered_at = time.monotonic()
                if program.phase == Phase.STARTING:
                    program.phase, program.reason = Phase.RUNNING, ""
                    if program.has_run:  # a new process where clients knew an old one
                        self.came_up.append(program)
                    program.has_run = True
                    self._note(program, f"{program.name} answers (pid {pid}, "
                               f"{time.monotonic() - program.launched_at:.2f} s after its start)")
        if answered and program.phase == Phase.RUNNING:
            self._wake()

    def _exited(self, program: Program, now: float, status: str | None = None) -> None:
        if program.pid:  # its clients lose it from this moment, whatever happens next
            self.ended.append((program, time.time()))
        status = status or self.runner.exit_status(program)
        self._close_pidfd(program)
        if program.phase == Phase.STOPPED:  # we stopped it
            self._note(program, f"{program.name} stopped ({status})")
            program.pid = 0
            return
        program.crashes.append(now)
        while program.crashes and now - program.crashes[0] > self.policy.window:
            program.crashes.popleft()
        program.pid = 0
        if len(program.crashes) > self.policy.max_restarts:
            program.phase = Phase.FAILED
            program.reason = (f"crashed {len(program.crashes)} times within {self.policy.window:g} s "
                              f"(last: {status}); not restarted until Start")
            self._note(program, f"{program.name} failed: {program.reason}\n{last_lines(program.log)}", logging.ERROR)
            return
        delay = self.policy.backoff(len(program.crashes))
        program.phase, program.restart_at = Phase.BACKOFF, now + delay
        program.reason = f"{status}; restarting in {delay:.1f} s"
        self._note(program, f"{program.name} {status}; restarting in {delay:.1f} s", logging.WARNING)

    # -- helpers -------------------------------------------------------------------------------

    def _launch(self, program: Program, why: str) -> None:
        """Mark it starting and launch it outside the lock: a launch through Starter can take seconds."""
        self._close_pidfd(program)
        program.launches += 1
        program.pid, program.phase, program.reason = 0, Phase.STARTING, "starting"
        program.started_at, program.launched_at, program.answered_at = time.time(), time.monotonic(), 0.0
        self._launcher.submit(self._launched, program, program.launches, why)

    def _launched(self, program: Program, launch: int, why: str) -> None:
        try:
            pid = self.runner.launch(program)
        except Exception as exc:  # noqa: BLE001 - could not even start it: counts as a crash
            with self.lock:
                if program.launches == launch and program.phase == Phase.STARTING:
                    self._note(program, f"{program.name} could not start: {exc}", logging.ERROR)
                    self._exited(program, time.monotonic(), f"could not start: {exc}")
            return
        with self.lock:
            # stopped meanwhile (a quick probe may have found it running already: that is no stop)
            if program.launches != launch or program.phase not in (Phase.STARTING, Phase.RUNNING):
                if pid:
                    self.runner.kill(replace(program, pid=pid), signal.SIGKILL)
                return
            program.pid = pid
            self._open_pidfd(program)
            self._note(program, f"started {program.name} ({why}, pid {pid})")

    def _adopt(self, program: Program, pid: int) -> None:
        program.pid, program.phase, program.reason, program.has_run = pid, Phase.STARTING, "adopted", False
        program.started_at, program.launched_at, program.answered_at = _start_time(pid), time.monotonic(), 0.0
        self._open_pidfd(program)
        self._note(program, f"watching {program.name} (pid {pid}, already running)")

    def _terminate(self, program: Program, pid: int, sig: int, grace: float = 10.0) -> None:
        """Signal, then wait (outside the lock) until it has gone, SIGKILL after `grace`. The process
        is the one of `pid`: a Start meanwhile may have given the program a new one."""
        program = replace(program, pid=pid)
        self.runner.kill(program, sig)
        deadline = time.monotonic() + grace
        while is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if is_alive(pid):
            self._note(program, f"{program.name} (pid {pid}) ignored SIGTERM for {grace:g} s: killing it",
                       logging.WARNING)
            self.runner.kill(program, signal.SIGKILL)
            while is_alive(pid) and time.monotonic() < deadline + grace:
                time.sleep(0.02)

    def _open_pidfd(self, program: Program) -> None:
        if program.pid:
            try:
                program.pidfd = os.pidfd_open(program.pid)
            except OSError:  # gone already, or no pidfd here: the watcher polls it
                program.pidfd = -1
        self._wake()

    def _close_pidfd(self, program: Program) -> None:
        if program.pidfd >= 0:
            os.close(program.pidfd)
            program.pidfd = -1

    def _note(self, program: Program, text: str, level: int = logging.INFO) -> None:
        self.log.log(level, text)
        self._changed = True
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass


def last_lines(path: str, count: int = 15) -> str:
    """The end of a log, for a message about a program that failed."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 8192))
            return "\n".join(log.read().decode(errors="replace").splitlines()[-count:])
    except OSError as exc:
        return f"(no log: {exc})"


def _start_time(pid: int) -> float:
    """When a process we did not start began, from /proc (now, when unknown)."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()
