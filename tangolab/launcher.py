"""Bring a whole lab up on one machine, and down again.

`Lab.start()` takes the run folder's lock (one start, repair or stop at a time) and refuses a
folder where processes of a lab run (one lab per folder), starts pytango's embedded Tango
database there, applies the lab's dsconfig JSON, registers every server with its host and
start-up level (as Astor does, so Tango's Starter can run them too), starts this host's
`Supervisor` device and asks it to start the rest level by level, then waits until every device
answers. The supervisor adopts the database and restarts whatever dies, the database included;
the watchdog it starts restarts the supervisor (`tangolab.watchdog`). `Lab.attach()` finds a
running lab again from its run folder (its state file, or the marks its processes carry when
the file is gone) or from its TANGO_HOST; `repair()` brings back what of a lab's own processes
died; `stop()` stops it in reverse order and checks that nothing of it is left. Tests use
exactly this code, on free ports.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import tango
from dsconfig.json2tango import apply_config, prepare_config

from .lab_config import ConfigError, LabConfig
from .processes import (
    DATABASE,
    SUPERVISOR,
    WATCHDOG,
    LabProcess,
    RunLock,
    database_argv,
    host_name,
    is_alive,
    lab_logger,
    lab_processes,
    log_path,
    simulator_ports,
    spawn,
    stopped_on_request,
    supervisor_argv,
    supervisor_name,
    terminate,
)
from .starter import (
    STARTER_EXECUTABLE,
    StarterClient,
    StarterError,
    put_server_info,
    register_servers,
)
from .watchdog import restore

STATE_FILE = "lab.state.json"
CONFIG_FILE = "lab.config.json"  # the lab file as started, read by the supervisor
EMBEDDED_DATABASE = "tango_database.db"  # pytango's database server writes it in its working folder
APPLIED_FILE = "lab.applied.json"  # the lab file's Tango part as last applied to the run folder's database
LOCK_WAIT = 60.0  # s to wait for a start, repair or stop of the same lab in progress
OWN = (DATABASE, WATCHDOG)  # besides the supervisor, the lab's own processes: what `repair` restores
T = TypeVar("T")


class LabError(RuntimeError):
    """The lab could not be brought up or reached; the message says what to do."""


class LabUp(LabError):
    """Processes of a lab already run in the run folder: `Lab.attach(...).repair()` mends it."""


def command_line(verb: str, *words: str, run_dir: Path | None = None) -> str:
    """A tangolab command as the user can type it where they stand: `./dev.sh down` when they
    started from dev.sh (which says so in TANGOLAB_DEV_SH), else the tangolab they ran (its path
    when it is not on their PATH); with `--run-dir` unless it is the default `var` there."""
    dev_sh = os.environ.get("TANGOLAB_DEV_SH")
    if dev_sh and verb in ("down", "status"):
        program = dev_sh
    elif dev_sh:
        program = os.path.join(os.path.dirname(dev_sh), ".venv", "bin", "tangolab")
    elif sys.argv[0].endswith("__main__.py"):
        program = f"{shlex.quote(sys.executable)} -m tangolab"
    elif "/" in sys.argv[0] and shutil.which("tangolab") != os.path.abspath(sys.argv[0]):
        program = shlex.quote(sys.argv[0])
    else:
        program = "tangolab"
    if run_dir is not None and Path(run_dir).resolve() != Path("var").resolve():
        words = (*words, "--run-dir", str(run_dir))
    return " ".join([program, verb, *map(shlex.quote, words)])


class Lab:
    """One lab: its database, its supervisor, and through the supervisor its simulators and servers."""

    def __init__(
        self, config: LabConfig, run_dir: str | Path = "var", tango_host: str = "localhost:10000", reset: bool = False,
        use_starter: bool = False,
    ):
        self.config = config
        self.reset = reset  # apply the whole lab file, undoing what was changed at run time
        self.use_starter = use_starter  # device servers started by Tango's Starter, which tangolab starts
        self.run_dir = Path(run_dir).resolve()
        self.tango_host = tango_host
        host, _, port = tango_host.rpartition(":")
        if not host or not port.isdigit():
            raise LabError(f"TANGO_HOST must be HOST:PORT, got {tango_host!r}")
        self.host, self.port = host, int(port)
        self.supervisor_name = f"lab/supervisor/{host_name()}"
        self.pids: dict[str, int] = {}  # database, supervisor (the supervisor knows the rest), from /proc once up
        self.answered: dict[str, float] = {}  # device → seconds from start() to its first answer
        self._lock = RunLock(self.run_dir)
        self._supervisor: tango.DeviceProxy | None = None

    # -- bring up -----------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start everything and wait until every device answers (or its server has failed for
        good: `failed()` says which); stops what it started if the lab itself cannot come up.
        Raises `LabUp` (starting nothing) where processes of a lab already run."""
        began = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self._check_free()
        except BaseException:
            self._lock.release()
            raise
        try:
            self._start_database(timeout)
            self._apply_config()
            self._register_supervisor()
            if self.use_starter:
                self._start_starter(timeout)
            self._start_supervisor(timeout)
            self.supervisor.command_inout("StartAll")
            self._wait_devices(timeout, began)
        except BaseException:
            self.stop()
            raise
        self._lock.release()

    def repair(self, timeout: float = 60.0) -> list[str]:
        """Bring back what of the lab's own processes died (the database, the supervisor, the
        watchdog: see `tangolab.watchdog.restore`) and wait until every device answers again (the
        supervisor restarts the programs that should run). Returns what had died, in words;
        raises `LabUp` (touching nothing) when nothing had."""
        began = time.monotonic()
        self._take_lock()
        try:
            running = {p.name for p in lab_processes(self.run_dir)}
            dead = [name for name in (DATABASE, supervisor_name(), WATCHDOG) if name not in running]
            if not dead:
                raise LabUp(self._running_here())
            try:
                started = restore(self.run_dir, self.tango_host)
            except RuntimeError as exc:  # the database did not come up
                raise LabError(str(exc)) from None
            lab_logger(self.run_dir, "tangolab").warning(
                "up: %s had died; %s", ", ".join(dead),
                f"started {', '.join(started)}" if started else "its supervisor restarts them")
            self.pids = self.own_pids()
            self._wait_for(supervisor_name(), "the supervisor", lambda: self.supervisor.ping() is not None, timeout)
            self._wait_devices(timeout, began, stopped_on_request(self.run_dir) or set())
        finally:
            self._lock.release()
        return dead

    def _take_lock(self) -> None:
        if not self._lock.acquire(LOCK_WAIT):
            raise LabError(f"another tangolab (up, down, or the lab's watchdog) has been at work on the lab in "
                           f"{self.run_dir} for {LOCK_WAIT:g} s; see {self.run_dir / 'log' / 'lab.log'}")

    def _running_here(self) -> str:
        running = lab_processes(self.run_dir)
        host = next((p.tango_host for p in running if p.name == DATABASE), None)
        if host is None:
            try:
                host = json.loads((self.run_dir / STATE_FILE).read_text())["tango_host"]
            except (OSError, ValueError, KeyError):
                host = "unknown"
        return (f"a lab is already up in {self.run_dir} (TANGO_HOST={host}, {len(running)} processes); "
                f"`{command_line('status', run_dir=self.run_dir)}` shows it, "
                f"`{command_line('down', run_dir=self.run_dir)}` stops it")

    def _check_free(self) -> None:
        """Refuse before anything starts: processes of a lab here (`LabUp`: they are repaired, not
        replaced), a lab file naming servers that do not exist, or ports taken."""
        if lab_processes(self.run_dir):
            raise LabUp(self._running_here())
        try:
            for server in self.config.servers:
                self.config.server_argv(server)
        except ConfigError as exc:
            raise LabError(str(exc)) from None
        _check_port(self.host, self.port, f"TANGO_HOST {self.tango_host}",
                    f"another Tango database, or a lab still up: `{command_line('down')}` in its folder; "
                    f"pick another port with --tango-host {self.host}:{self.port + 1}")
        for simulator in self.config.simulators:
            if simulator.port:
                _check_port("127.0.0.1", simulator.port, f"simulator {simulator.name}",
                            "another lab's simulator, or another program; change its port in the lab file")

    def _start_database(self, timeout: float) -> None:
        self._database_existed = (self.run_dir / EMBEDDED_DATABASE).exists()
        self.pids[DATABASE] = start_database(self.run_dir, self.tango_host).pid
        self.database = self._wait_for(DATABASE, "the Tango database",
                                       lambda: answering_database(self.host, self.port), timeout, watch=DATABASE)

    def _apply_config(self) -> None:
        """The lab file into the database: whole on a new run folder (or with reset); else only
        what the file changed since it was last applied, so that what users changed while the
        lab ran (archived attributes, attribute configuration, properties) stays. Every server
        gets its host and start-up level, as Astor registers them."""
        applied = self.run_dir / APPLIED_FILE
        current = self.config.dsconfig()
        with contextlib.redirect_stderr(io.StringIO()):  # dsconfig's progress bar
            if self.reset or not self._database_existed or not applied.exists():
                apply_config(prepare_config(current), self.database, write=True)
            elif changes := _changes(json.loads(applied.read_text()), current):
                apply_config(prepare_config(changes), self.database, write=True, update=True)
        applied.write_text(json.dumps(current, indent=2))
        placed = [(server.name, self.config.host_of(server.name) or host_name(), self.config.level(server.name))
                  for server in self.config.servers]
        if self.use_starter:
            (self.run_dir / "log" / "ds.log").mkdir(parents=True, exist_ok=True)  # else Starter loses lines
            register_servers(self.database, placed, str(Path(sys.executable).parent), log_home=str(self.run_dir / "log"))
        else:
            for server, host, level in placed:
                put_server_info(self.database, server, host, level)

    def _register_supervisor(self) -> None:
        """This host's supervisor in the database; it reads the lab file from the run folder."""
        (self.run_dir / CONFIG_FILE).write_text(json.dumps(self.config.data, indent=2))
        info = tango.DbDevInfo()
        info.name, info._class, info.server = self.supervisor_name, SUPERVISOR, supervisor_name()
        self.database.add_device(info)
        self.database.put_device_property(self.supervisor_name, {
            "RunDir": [str(self.run_dir)], "LabFile": [CONFIG_FILE], "UseStarter": [str(self.use_starter).lower()],
            **self.config.supervisor_properties,
        })

    def _start_starter(self, timeout: float) -> None:
        """Tango's Starter for this host, as a process of the lab (on a production host it is a service)."""
        argv = [STARTER_EXECUTABLE, host_name()]
        self.pids["starter"] = spawn(f"Starter/{host_name()}", argv, self.run_dir, self.tango_host).pid
        starter = StarterClient(host_name(), self.tango_host)
        self._wait_for(f"Starter/{host_name()}", "Tango's Starter", lambda: starter.ping() is not None, timeout,
                       watch="starter")

    def _start_supervisor(self, timeout: float) -> None:
        """Start this host's supervisor: it adopts the database."""
        self.pids["supervisor"] = spawn(supervisor_name(), supervisor_argv(), self.run_dir, self.tango_host).pid
        self._save_state()
        self._wait_for(supervisor_name(), "the supervisor", lambda: self.supervisor.ping() is not None, timeout,
                       watch="supervisor")

    def own_pids(self) -> dict[str, int]:
        """The lab's own running processes, from /proc: database, supervisor, watchdog → pid."""
        return {("supervisor" if p.name == supervisor_name() else p.name): p.pid
                for p in lab_processes(self.run_dir) if p.name in (*OWN, supervisor_name())}

    def _wait_devices(self, timeout: float, began: float, stopped: set[str] = frozenset()) -> None:
        """Until every program runs and every device answers, or its server failed for good (the
        supervisor gave up on it); but the programs `stopped` on request and their devices."""
        waiting = {device.name: device.server for device in self.config.devices if device.server not in stopped}
        proxies = {device: self.proxy(device) for device in waiting}
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive("supervisor", supervisor_name())
            phases = {program["name"]: program["phase"] for program in self.programs()}
            for device, server in list(waiting.items()):
                if phases.get(server) == "failed":
                    del waiting[device]
                    continue
                try:
                    proxies[device].ping()
                except tango.DevFailed:
                    continue
                self.answered[device] = time.monotonic() - began
                del waiting[device]
            starting = [name for name, phase in phases.items() if phase not in ("running", "failed") and
                        name not in stopped]
            if not waiting and not starting:
                return
            if time.monotonic() > deadline:
                raise LabError(f"not up within {timeout:g} s: {', '.join([*waiting, *starting])}; "
                               f"see {self.run_dir / 'log'} and `{command_line('status', run_dir=self.run_dir)}`")
            time.sleep(0.05)

    # -- use ----------------------------------------------------------------------------------

    @property
    def supervisor(self) -> tango.DeviceProxy:
        if self._supervisor is None:  # one proxy: a new one asks the database each time
            self._supervisor = self.proxy(self.supervisor_name)
            self._supervisor.set_timeout_millis(120_000)  # StopAll waits until every program has gone
        return self._supervisor

    def proxy(self, device: str) -> tango.DeviceProxy:
        """A DeviceProxy through this lab's database, whatever TANGO_HOST the caller has."""
        return tango.DeviceProxy(f"tango://{self.tango_host}/{device}")

    def programs(self) -> list[dict]:
        """Per program of the supervisor: name, phase, level, pid, restarts, uptime (s)."""
        names = ("names", "phases", "levels", "pids", "restartCounts", "uptimes")
        columns = {name: reading.value for name, reading in zip(names, self.supervisor.read_attributes(names))}
        if columns["names"] is None:
            return []
        return [dict(zip(("name", "phase", "level", "pid", "restarts", "uptime"), row))
                for row in zip(*columns.values())]

    def failed(self) -> set[str]:
        return {program["name"] for program in self.programs() if program["phase"] == "failed"}

    def pid(self, program: str) -> int:
        """The process ID of a running program (`Class/instance` or `simulator/<name>`), 0 if none."""
        return next((p["pid"] for p in self.programs() if p["name"] == program), 0)

    def table(self) -> list[dict[str, str]]:
        """One row per device: name, class, state (short: `no answer` when it does not), URL, and
        the error in full (empty when it answers)."""
        rows = []
        for device in self.config.devices:
            error = ""
            try:
                proxy = self.proxy(device.name)
                proxy.set_timeout_millis(3000)
                state = str(proxy.state())
            except tango.DevFailed as exc:
                state, error = "no answer", " / ".join(dict.fromkeys(" ".join(e.desc.split()) for e in exc.args))
            rows.append({"device": device.name, "class": device.tango_class, "state": state, "url": device.url,
                         "error": error})
        return rows

    def wait_settled(self, timeout: float = 10.0) -> None:
        """Wait (bounded) while a device is still connecting or in a start-up ALARM (the archiver
        before the servers it archives answer), so that a printed table means something."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(row["state"] in ("INIT", "ALARM") for row in self.table()):
            time.sleep(0.2)

    def wait_device(self, name: str, timeout: float = 60.0) -> None:
        """Wait until `name` answers a ping; a time-out names the log to read."""
        server = next(d.server for d in self.config.devices if d.name == name)
        self._wait_for(server, f"device {name}", lambda: self.proxy(name).ping() is not None, timeout)

    def start_program(self, name: str, timeout: float = 60.0) -> None:
        """(Re)start one program through the supervisor and wait until it answers."""
        self.supervisor.command_inout("Start", name)
        self._wait_for(name, name, lambda: self._phase(name) == "running", timeout)

    def kill(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stop one program so that it stays down until `start_program`: SIGTERM (then SIGKILL), or
        SIGKILL at once; the supervisor does not restart it. (A crash is `os.kill(lab.pid(name), ...)`.)"""
        self.supervisor.command_inout("Kill" if sig == signal.SIGKILL else "Stop", name)

    def control_port(self, simulator: str) -> int:
        """The fault-injection port a running simulator of the lab announced (in its log)."""
        announced = simulator_ports(log_path(self.run_dir, f"simulator/{simulator}"))
        if announced is None:
            raise LabError(f"simulator {simulator} has not announced its ports")
        return announced[2]

    def _phase(self, name: str) -> str:
        return next((p["phase"] for p in self.programs() if p["name"] == name), "unknown")

    # -- bring down ---------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        """Stop everything: the supervisor stops its programs (highest level first), then the
        supervisor, the watchdog and the database go; whatever of the lab is still found (a server
        started by hand, a supervisor that did not answer) is stopped too. Under the run folder's
        lock, so that the watchdog restarts nothing meanwhile. Raises if something survived."""
        self._lock.acquire(LOCK_WAIT)  # else stop anyway: a stuck holder must not keep the lab up
        lab_logger(self.run_dir, "tangolab").info("stopping the lab")
        try:
            try:
                self.supervisor.command_inout("StopAll")
            except tango.DevFailed:
                pass  # not up, or gone: what it ran is found below
            survivors = self._stop_found(exclude=(DATABASE,), timeout=timeout)
            survivors += self._stop_found(timeout=timeout)
            (self.run_dir / STATE_FILE).unlink(missing_ok=True)
        finally:
            self._lock.release()
        if survivors:
            raise LabError("could not stop " + ", ".join(f"{p.name} (pid {p.pid})" for p in survivors))

    def _stop_found(self, exclude: tuple[str, ...] = (), timeout: float = 10.0) -> list[LabProcess]:
        """Stop the lab's processes still found: marked with the run folder, or servers of the lab
        started by hand on its TANGO_HOST; the supervisor first, so it restarts nothing meanwhile."""
        servers = tuple((server.executable, server.instance) for server in self.config.servers)
        found = {p.pid: p for p in lab_processes(self.run_dir, self.tango_host, servers) if p.name not in exclude}
        found.update({pid: LabProcess(pid, name, "", "", ()) for name, pid in self.pids.items()
                      if name not in exclude and is_alive(pid) and pid not in found})
        ordered = sorted(found.values(), key=lambda p: p.name != supervisor_name())  # it restarts the others
        return [p for p in ordered if not terminate(p.pid, timeout)]

    def leftovers(self) -> list[LabProcess]:
        """Processes of this lab still running (none after `stop()`)."""
        servers = tuple((server.executable, server.instance) for server in self.config.servers)
        return lab_processes(self.run_dir, self.tango_host, servers)

    # -- running labs -------------------------------------------------------------------------

    @classmethod
    def attach(cls, run_dir: str | Path = "var", tango_host: str | None = None) -> Lab:
        """The lab running in `run_dir`, or on `tango_host`: from its state file, else from the
        marks its processes carry."""
        if tango_host is not None:
            marked = [p for p in lab_processes(tango_host=tango_host) if p.run_dir]
            if not marked:
                raise LabError(f"no lab of tangolab is up on TANGO_HOST {tango_host}")
            run_dir = marked[0].run_dir
        run_dir = Path(run_dir).resolve()
        path = run_dir / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            state = _state_from_processes(run_dir)
        lab = cls(LabConfig(state["config"]), run_dir, state["tango_host"])
        lab.pids = lab.own_pids()
        return lab

    def _save_state(self) -> None:
        state = {
            "tango_host": self.tango_host,
            "started": datetime.now().isoformat(timespec="seconds"),
            "config": self.config.data,
            "pids": self.pids,
        }
        (self.run_dir / STATE_FILE).write_text(json.dumps(state, indent=2))

    # -- internals ----------------------------------------------------------------------------

    def _wait_for(self, process: str, what: str, answer: Callable[[], T | None], timeout: float,
                  watch: str | None = None) -> T:
        """Ask `answer` until it gives something; a time-out, or the death of the process `watch`
        names in `pids`, names the log of `process`."""
        deadline = time.monotonic() + timeout
        while True:
            if watch is not None:
                self._check_alive(watch, process)
            try:
                if result := answer():
                    return result
                reason = "no answer yet"
            except (tango.DevFailed, OSError, StarterError) as exc:
                reason = exc.args[-1].desc.strip() if isinstance(exc, tango.DevFailed) else str(exc)
            if time.monotonic() > deadline:
                raise LabError(f"{what} did not answer within {timeout:g} s ({reason}); "
                               f"see {log_path(self.run_dir, process)}")
            time.sleep(0.1)

    def _check_alive(self, key: str, process: str) -> None:
        pid = self.pids.get(key)
        if pid and not is_alive(pid):
            log = log_path(self.run_dir, process)
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise LabError(f"{process} exited at start-up; see {log}:\n{tail}")


def start_database(run_dir: Path, tango_host: str) -> subprocess.Popen:
    """The lab's Tango database server (`tangolab.database`, its SQLite file in `run_dir`), as a
    lab process."""
    return spawn(DATABASE, database_argv(tango_host), run_dir, tango_host)


def answering_database(host: str, port: int) -> tango.Database:
    """The database once it answers: its port opens before its device is exported, so a connection
    is not enough (raises until then)."""
    socket.create_connection((host, port), timeout=1.0).close()
    return tango.Database(host, port)


def _state_from_processes(run_dir: Path) -> dict:
    """What the state file said, rebuilt from the lab's running processes and its lab file copy."""
    running = lab_processes(run_dir)
    database = next((p for p in running if p.name == DATABASE), None)
    if not running:
        raise LabError(f"no lab is up in {run_dir} (no {STATE_FILE}, and no process of it runs)")
    try:
        config = json.loads((run_dir / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        config = {}
    tango_host = database.tango_host if database else running[0].tango_host
    return {"tango_host": tango_host, "config": config}


def _check_port(host: str, port: int, what: str, hint: str) -> None:
    """Refuse a port something listens on (one left in TIME_WAIT by a lab just stopped is free)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise LabError(f"cannot use the port {port} of {what}: {exc}") from exc
            raise LabError(f"port {port} of {what} is already in use ({hint})") from exc


def _changes(old: dict, new: dict) -> dict:
    """What `new` adds to or changes in `old`, both nested dicts (dsconfig's form), in the same form."""
    found = {}
    for key, value in new.items():
        if key not in old:
            found[key] = value
        elif isinstance(value, dict) and isinstance(old[key], dict):
            if inner := _changes(old[key], value):
                found[key] = inner
        elif value != old[key]:
            found[key] = value
    return found
