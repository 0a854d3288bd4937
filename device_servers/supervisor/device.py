"""`Supervisor`: one per host (`lab/supervisor/<host>`); starts the lab's programs by level and keeps
them running.

It reads the lab file (`LabFile`, written into the run folder by `tangolab up`), takes the
programs of its host (simulators and device servers) and the lab's own at level 0 (the Tango
database, which `tangolab up` started and it adopts, and the watchdog that restarts the
supervisor itself), and starts them level by level when asked (`StartAll`): services and
simulators, then device servers, then servers built on other devices, then clients; each level
once the previous one answers. A program that dies is restarted with back-off; one that stops
answering for `HangTimeout` seconds is killed and restarted; one that crashes `MaxRestarts`
times within `CrashWindow` seconds is left failed, the device turns ALARM and its status shows
the program's last log lines. Every action goes to `log/lab.log`.
Stopping or restarting the supervisor itself leaves the lab running: a new supervisor adopts
the processes it finds (they carry the lab's mark, see `tangolab.processes`) and starts those
that should run but do not (it reads which were stopped on request from `lab.stopped.json`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import tango
from tango import AttrQuality, AttrWriteType, DevState, Except
from tango.server import Device, attribute, command, device_property

from tangolab.discovery import Beacon
from tangolab.lab_config import WEB, LabConfig
from tangolab.processes import (
    DATABASE,
    HEARTBEAT_FILE,
    STOPPED_FILE,
    WATCHDOG,
    WATCHDOG_READY,
    current_run,
    database_argv,
    lab_logger,
    lab_processes,
    log_path,
    server_pid,
    simulator_ports,
    spawn,
    stopped_on_request,
    watchdog_argv,
)
from tangolab.starter import StarterClient, StarterError, starter_log
from tangolab.web.settings import WebSettings

from ..core.server import serve
from .programs import Phase, Program, RestartPolicy, Supervision, last_lines

PROBE_TIMEOUT_MS = 1500
STARTER_SPAWN_TIMEOUT = 8.0  # s for Starter to take a start (it sees a death within ~4 s) and run it
ATTRIBUTES = ("names", "phases", "levels", "pids", "restartCounts", "uptimes", "runningServers",
              "stoppedServers", "failingServers")
RESTART_ATTRIBUTE = "startedDevices"  # what subscribers watch to subscribe again at once (tangolab.events)
END_ATTRIBUTE = "endedDevices"  # what subscribers watch to date an outage from its start (tangolab.events)
OWN_LEVEL = 0  # the lab's own programs: its database and the watchdog; `tangolab down` stops them


class Supervisor(Device):
    """Starts this host's programs of the lab by level, restarts the dead and the hung, gives up on crash loops."""

    RunDir = device_property(dtype=str, default_value="", doc="The lab's run folder (default: the working folder)")
    LabFile = device_property(
        dtype=str, default_value="lab.config.json", doc="The lab file, relative to RunDir"
    )
    HangTimeout = device_property(
        dtype=float, default_value=30.0, doc="Seconds a running server may stay silent before it is killed and restarted"
    )
    StartTimeout = device_property(
        dtype=float, default_value=60.0, doc="Seconds a started program may take to answer"
    )
    MaxRestarts = device_property(
        dtype=int, default_value=5, doc="Crashes within CrashWindow after which a program is left failed"
    )
    CrashWindow = device_property(dtype=float, default_value=120.0, doc="Seconds over which crashes are counted")
    Announce = device_property(
        dtype=bool, default_value=True,
        doc="Announce the lab's TANGO_HOST on the local network (UDP beacon; `tangolab discover` hears it)",
    )
    LabName = device_property(dtype=str, default_value="", doc="The lab's name in its announcements")
    UseStarter = device_property(
        dtype=bool, default_value=False,
        doc="Start and stop device servers through this host's Tango Starter (tango/admin/<host>), as on a lab "
        "spread over several hosts; simulators are still started by the supervisor",
    )
    FirstBackoff = device_property(
        dtype=float, default_value=0.2, doc="Seconds before the first restart; each further crash triples it"
    )

    def init_device(self) -> None:
        super().init_device()
        self.set_state(DevState.INIT)
        self.run_dir = Path(self.RunDir or os.getcwd()).resolve()
        self.tango_host = os.environ.get("TANGO_HOST", "localhost:10000")
        self.host = socket.gethostname().split(".")[0]
        self.log = lab_logger(self.run_dir, "supervisor")
        try:
            config = LabConfig.load(self.run_dir / self.LabFile)
        except SystemExit as exc:  # LabConfig.load says what it could not read
            self.supervision = None
            self.set_state(DevState.FAULT)
            self.set_status(str(exc))
            return
        policy = RestartPolicy(
            first_backoff=self.FirstBackoff, max_restarts=self.MaxRestarts, window=self.CrashWindow,
            hang_after=self.HangTimeout, start_timeout=self.StartTimeout,
        )
        local = LocalRunner(self.run_dir, self.tango_host)
        servers = {server.name for server in config.servers}
        self.runner = (StarterRunner(local, StarterClient(self.host, self.tango_host), servers) if self.UseStarter
                       else local)
        self.supervision = Supervision(self._programs(config), self.runner, policy, self.log, self._push_changes,
                                       self.run_dir / HEARTBEAT_FILE)
        self.devices_of = {server.name: [device.name for device in server.devices] for server in config.servers}
        self._started_devices: list[str] = []
        self._ended_devices: tuple[list[str], float] = ([], time.time())
        for name in (*ATTRIBUTES, RESTART_ATTRIBUTE, END_ATTRIBUTE, "State", "Status"):
            self.set_change_event(name, True, False)
        self.beacon = None
        if self.Announce:
            self.beacon = Beacon(self.tango_host, self.LabName or f"lab on {self.host}").start()
        running = {p.name: p.pid for p in lab_processes(self.run_dir) if p.name in self.supervision.programs}
        if self.UseStarter:  # Starter's children carry Starter's marks, not their own names
            running |= {name: pid for name in self.supervision.programs if (pid := server_pid(self.tango_host, name))}
        self.supervision.begin(running)
        self.log.info("supervisor of %s up: %d programs, %d already running", self.host,
                      len(self.supervision.programs), len(running))
        self._resume(running)

    def delete_device(self) -> None:
        if getattr(self, "beacon", None) is not None:
            self.beacon.stop()
        if getattr(self, "supervision", None) is not None:
            self.supervision.end()  # the programs keep running
        super().delete_device()

    def _resume(self, running: dict[str, int]) -> None:
        """Start what the supervisor before this one ran and no longer runs (it died while nobody
        watched): every program but those stopped on request. A lab never started has no record."""
        if (stopped := stopped_on_request(self.run_dir)) is None:
            return
        missing = [name for name in self.supervision.programs if name not in running and name not in stopped]
        if missing:
            self.log.info("starting what should run and does not: %s", ", ".join(missing))
            self.supervision.start_levels(keep_stopped=stopped)

    def _remember_stopped(self, stop: Iterable[str] = (), start: Iterable[str] = ()) -> None:
        """Keep the programs stopped on request in the run folder, for a supervisor restarted later."""
        stopped = stopped_on_request(self.run_dir)
        if stopped is None:
            stopped = set(self.supervision.programs)  # none started on request yet
        stopped = (stopped | set(stop)) - set(start) - set(self._names_at({OWN_LEVEL}))  # never kept stopped
        (self.run_dir / STOPPED_FILE).write_text(json.dumps(sorted(stopped)))

    def _programs(self, config: LabConfig) -> list[Program]:
        programs = [
            Program(DATABASE, database_argv(self.tango_host), OWN_LEVEL, self._ping_probe("sys/database/2"),
                    str(log_path(self.run_dir, DATABASE))),
            Program(WATCHDOG, watchdog_argv(self.HangTimeout), OWN_LEVEL, self._log_probe(WATCHDOG, WATCHDOG_READY),
                    str(log_path(self.run_dir, WATCHDOG))),
        ]
        for simulator in config.simulators:
            name = f"simulator/{simulator.name}"
            if config.host_of(name) in (None, self.host):
                programs.append(Program(name, config.simulator_argv(simulator, sys.executable), config.level(name),
                                        self._simulator_probe(name), str(log_path(self.run_dir, name))))
        for server in config.servers:
            if config.host_of(server.name) in (None, self.host):
                log = starter_log(self.run_dir, server.name) if self.UseStarter else log_path(self.run_dir, server.name)
                programs.append(Program(server.name, config.server_argv(server), config.level(server.name),
                                        self._ping_probe(f"dserver/{server.name}"), str(log)))
        web = WebSettings.of(config, self.run_dir, self.tango_host)
        if web is not None and config.host_of(WEB) in (None, self.host):
            programs.append(Program(WEB, web.argv(str(self.run_dir / self.LabFile), sys.executable), config.level(WEB),
                                    self._http_probe(f"http://{web.probe_host}:{web.port}/api/health"),
                                    str(log_path(self.run_dir, WEB))))
        return programs

    def _ping_probe(self, device: str):
        """A ping of a device (a server's admin device, the database's own): it answers unless the
        process is dead or hung. One proxy: after a restart it finds the new process by itself."""
        proxy: list[tango.DeviceProxy] = []

        def probe() -> bool:
            if not proxy:
                proxy.append(tango.DeviceProxy(f"tango://{self.tango_host}/{device}"))
                proxy[0].set_timeout_millis(PROBE_TIMEOUT_MS)
            proxy[0].ping()
            return True

        return probe

    @staticmethod
    def _http_probe(url: str):
        """A web service answers when its health page does."""
        def probe() -> bool:
            with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_MS / 1000) as reply:
                return reply.status == 200

        return probe

    def _log_probe(self, name: str, ready: bytes):
        """A program answers once its current run's log says `ready`."""
        return lambda: ready in current_run(self.supervision.programs[name].log)

    def _simulator_probe(self, name: str):
        """A simulator answers once its log announces its ports and its control port takes a connection."""
        def probe() -> bool:
            announced = simulator_ports(self.supervision.programs[name].log)
            if announced is None:
                return False
            socket.create_connection((announced[0], announced[2]), timeout=1.0).close()
            return True

        return probe

    # -- state, status, events -----------------------------------------------------------------

    def dev_state(self) -> DevState:
        if self.supervision is None:
            return DevState.FAULT
        phases = {p.phase for p in self.supervision.snapshot()}
        if phases & {Phase.FAILED, Phase.BACKOFF}:
            return DevState.ALARM
        if Phase.STARTING in phases:
            return DevState.MOVING
        return DevState.ON if Phase.RUNNING in phases else DevState.STANDBY

    def dev_status(self) -> str:
        if self.supervision is None:
            return self.get_status()
        programs = self.supervision.snapshot()
        count = {phase: sum(p.phase == phase for p in programs) for phase in Phase}
        lines = [", ".join(f"{n} {phase.value}" for phase, n in count.items() if n) or "no programs on this host"]
        for program in programs:
            if program.phase == Phase.FAILED:
                lines.append(f"{program.name} FAILED: {program.reason}\n{last_lines(program.log, 8)}")
            elif program.phase == Phase.BACKOFF:
                lines.append(f"{program.name}: {program.reason}")
        return "\n".join(lines)

    def _push_changes(self) -> None:
        """From the watcher thread, outside its lock: every attribute, the state and the status."""
        with tango.EnsureOmniThread():
            while self.supervision.ended:  # before any restart of the same server
                program, when = self.supervision.ended.popleft()
                if devices := self.devices_of.get(program.name, []):
                    self._ended_devices = (devices, when)
                    self.push_change_event(END_ATTRIBUTE, devices, when, AttrQuality.ATTR_VALID)
            while self.supervision.came_up:
                self._started_devices = self.devices_of.get(self.supervision.came_up.popleft().name, [])
                if self._started_devices:
                    self.push_change_event(RESTART_ATTRIBUTE, self._started_devices)
            for name in ATTRIBUTES:
                self.push_change_event(name, getattr(self, f"_read_{name}")())
            self.push_change_event("State", self.dev_state())
            self.push_change_event("Status", self.dev_status())

    # -- attributes ----------------------------------------------------------------------------

    def _column(self, pick, phases: tuple[Phase, ...] | None = None) -> list:
        if self.supervision is None:
            return []
        return [pick(p) for p in self.supervision.snapshot() if phases is None or p.phase in phases]

    def _read_names(self) -> list[str]:
        return self._column(lambda p: p.name)

    def _read_phases(self) -> list[str]:
        return self._column(lambda p: p.phase.value)

    def _read_levels(self) -> list[int]:
        return self._column(lambda p: p.level)

    def _read_pids(self) -> list[int]:
        return self._column(lambda p: p.pid)

    def _read_restartCounts(self) -> list[int]:
        return self._column(lambda p: p.restarts)

    def _read_uptimes(self) -> list[float]:
        return self._column(lambda p: round(p.uptime, 1))

    def _read_runningServers(self) -> list[str]:
        return self._column(lambda p: p.name, (Phase.RUNNING,))

    def _read_stoppedServers(self) -> list[str]:
        return self._column(lambda p: p.name, (Phase.STOPPED,))

    def _read_failingServers(self) -> list[str]:
        return self._column(lambda p: f"{p.name}: {p.reason}", (Phase.BACKOFF, Phase.FAILED))

    names = attribute(dtype=(str,), max_dim_x=1000, fget=_read_names,
                      doc="Every program of this host (simulator/<name>, Class/instance), in start-up order")
    phases = attribute(dtype=(str,), max_dim_x=1000, fget=_read_phases,
                       doc="Per program (as in names): stopped, starting, running, backoff (restarting), failed")
    levels = attribute(dtype=(int,), max_dim_x=1000, fget=_read_levels, doc="Per program: its start-up level")
    pids = attribute(dtype=(int,), max_dim_x=1000, fget=_read_pids, doc="Per program: its process ID, 0 if none")
    restartCounts = attribute(dtype=(int,), max_dim_x=1000, fget=_read_restartCounts,
                              doc="Per program: automatic restarts since the supervisor started")
    uptimes = attribute(dtype=(float,), max_dim_x=1000, fget=_read_uptimes, unit="s", format="%.1f",
                        doc="Per program: seconds since its process started, 0 if not running")
    runningServers = attribute(dtype=(str,), max_dim_x=1000, fget=_read_runningServers,
                               doc="Programs running and answering")
    stoppedServers = attribute(dtype=(str,), max_dim_x=1000, fget=_read_stoppedServers,
                               doc="Programs stopped on request (or not started yet)")
    failingServers = attribute(dtype=(str,), max_dim_x=1000, fget=_read_failingServers,
                               doc="Programs restarting after a crash or failed for good, with why")
    startedDevices = attribute(
        dtype=(str,), max_dim_x=1000, fget=lambda self: self._started_devices,
        doc="The devices of the server that last began answering after a start or restart; a change event each "
        "time, so that subscribers subscribe again at once rather than at Tango's next 10 s keep-alive check",
    )
    endedDevices = attribute(
        dtype=(str,), max_dim_x=1000,
        fget=lambda self: (*self._ended_devices, AttrQuality.ATTR_VALID),
        doc="The devices of the server whose process last ended (died, killed, or stopped), time-stamped with the "
        "moment the supervisor saw it end; a change event each time, so that subscribers (the archiver) date the "
        "outage from its start",
    )
    hangTimeout = attribute(dtype=float, access=AttrWriteType.READ, unit="s", format="%.1f",
                            fget=lambda self: self.HangTimeout, doc="Silence after which a server is restarted")

    # -- commands ------------------------------------------------------------------------------

    def _known(self, name: str) -> Program:
        try:
            return self.supervision.program(name)
        except KeyError as exc:
            Except.throw_exception("UnknownProgram", str(exc.args[0]), "Supervisor")

    def _stoppable(self, name: str) -> None:
        if self._known(name).level == OWN_LEVEL:
            Except.throw_exception(
                "OwnProgram", f"{name} is the lab's own (level {OWN_LEVEL}: the database and the watchdog) and "
                "is not kept stopped: Restart restarts it, `tangolab down` stops the whole lab", "Supervisor")

    @command(dtype_in=str, doc_in="Program name (simulator/<name> or Class/instance); starts it if not running")
    def Start(self, name: str) -> None:
        self._known(name)
        self._remember_stopped(start=[name])
        self.supervision.start(name)

    @command(dtype_in=str, doc_in="Program name; stops it (SIGTERM, SIGKILL after 10 s) and keeps it stopped")
    def Stop(self, name: str) -> None:
        self._stoppable(name)
        self._remember_stopped(stop=[name])
        self.supervision.stop(name)

    @command(dtype_in=str, doc_in="Program name; kills it at once (SIGKILL) and keeps it stopped")
    def Kill(self, name: str) -> None:
        self._stoppable(name)
        self._remember_stopped(stop=[name])
        self.supervision.stop(name, hard=True)

    @command(dtype_in=str, doc_in="Program name; stops it and starts it again")
    def Restart(self, name: str) -> None:
        self._known(name)
        self.supervision.restart(name)

    @command(doc_in="Start every program, level by level (returns at once; watch State and phases)")
    def StartAll(self) -> None:
        self._remember_stopped(start=self.supervision.programs)
        self.supervision.start_levels()

    @command(doc_in="Stop every program but the lab's own (level 0), highest level first (returns once all "
             "have gone)")
    def StopAll(self) -> None:
        levels = {p.level for p in self.supervision.snapshot()} - {OWN_LEVEL}
        self._remember_stopped(stop=self._names_at(levels))
        self.supervision.stop_levels(levels)

    @command(dtype_in=int, doc_in="Level; start its programs (returns at once)")
    def StartLevel(self, level: int) -> None:
        self._level(level)
        self._remember_stopped(start=self._names_at({level}))
        self.supervision.start_levels([level])

    @command(dtype_in=int, doc_in="Level (not 0, the lab's own); stop its programs (returns once they have gone)")
    def StopLevel(self, level: int) -> None:
        self._level(level)
        if level == OWN_LEVEL:
            Except.throw_exception("OwnProgram", f"level {OWN_LEVEL} is the lab's own (the database and the "
                                   "watchdog): `tangolab down` stops the whole lab", "Supervisor")
        self._remember_stopped(stop=self._names_at({level}))
        self.supervision.stop_levels([level])

    def _names_at(self, levels: set[int]) -> list[str]:
        return [p.name for p in self.supervision.snapshot() if p.level in levels]

    @command(dtype_in=str, doc_in="Program name", dtype_out=str, doc_out="The last 40 lines of its log")
    def Log(self, name: str) -> str:
        return last_lines(self._known(name).log, 40)

    def _level(self, level: int) -> None:
        known = sorted({p.level for p in self.supervision.snapshot()})
        if level not in known:
            Except.throw_exception("UnknownLevel", f"no program has level {level}; levels: {known}", "Supervisor")


class LocalRunner:
    """Programs as child processes of the supervisor, with their logs in the run folder."""

    def __init__(self, run_dir: Path, tango_host: str) -> None:
        self.run_dir, self.tango_host = run_dir, tango_host
        self._popen: dict[str, subprocess.Popen] = {}

    def launch(self, program: Program) -> int:
        popen = spawn(program.name, program.argv, self.run_dir, self.tango_host)
        self._popen[program.name] = popen
        return popen.pid

    def kill(self, program: Program, sig: int) -> None:
        try:
            if program.pid:
                os.kill(program.pid, sig)
        except ProcessLookupError:
            pass

    def exit_status(self, program: Program) -> str:
        popen = self._popen.get(program.name)
        if popen is None or popen.pid != program.pid:
            return "exited"  # adopted: not our child, its status is its parent's
        code = popen.poll()  # never wait: the watcher asks holding its lock
        if code is None:
            return "exited (its status not known yet)"
        del self._popen[program.name]
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"


class StarterRunner:
    """Device servers through this host's Tango Starter (DevStart, DevStop, HardKillServer); the
    rest (simulators, the database, the watchdog), which Starter cannot run, as local processes."""

    def __init__(self, local: LocalRunner, starter: StarterClient, servers: set[str]) -> None:
        self.local, self.starter, self.servers = local, starter, servers

    def launch(self, program: Program) -> int:
        if program.name not in self.servers:
            return self.local.launch(program)
        deadline = time.monotonic() + STARTER_SPAWN_TIMEOUT
        while True:
            try:
                self.starter.start(program.name)
                break
            except StarterError as exc:  # Starter looks at the process table every 2 s: it may not
                if exc.reason != "ALREADY_RUNNING" or time.monotonic() > deadline:  # know of the death yet
                    raise
                if pid := server_pid(self.local.tango_host, program.name):
                    return pid  # it does run: started by someone else
                time.sleep(0.2)
        deadline = time.monotonic() + STARTER_SPAWN_TIMEOUT  # DevStart returns before the process exists
        while not (pid := server_pid(self.local.tango_host, program.name)) and time.monotonic() < deadline:
            time.sleep(0.02)
        return pid  # 0: not seen yet; its probe will tell

    def kill(self, program: Program, sig: int) -> None:
        if program.name not in self.servers:
            self.local.kill(program, sig)
        else:
            try:
                (self.starter.kill if sig == signal.SIGKILL else self.starter.stop)(program.name)
            except StarterError:  # Starter has not seen it yet (it looks every 2 s): signal it here
                self.local.kill(program, sig)

    def exit_status(self, program: Program) -> str:
        if program.name not in self.servers:
            return self.local.exit_status(program)
        return "exited (a child of Starter)"


def main() -> None:
    serve(Supervisor)


if __name__ == "__main__":
    main()
