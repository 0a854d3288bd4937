"""Bring a whole lab up on one machine, and down again.

`Lab.start()` takes the run folder's lock (one lab per folder: a second `up` is refused and
changes nothing), starts pytango's embedded Tango database there, applies the lab's dsconfig
JSON, registers every server with its host and start-up level (as Astor does, so Tango's
Starter can run them too), starts this host's `Supervisor` device and asks it to start the rest
level by level, then waits until every device answers. The supervisor restarts what dies.
`Lab.attach()` finds a running lab again from its run folder (its state file, or the marks its
processes carry when the file is gone) or from its TANGO_HOST; `stop()` stops it in reverse
order and checks that nothing of it is left. Tests use exactly this code, on free ports.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import os
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
    LabProcess,
    is_alive,
    is_loopback,
    lab_processes,
    log_path,
    simulator_ports,
    spawn,
    terminate,
)
from .starter import (
    STARTER_EXECUTABLE,
    StarterClient,
    StarterError,
    put_server_info,
    register_servers,
)

STATE_FILE = "lab.state.json"
LOCK_FILE = "lab.lock"  # held by the database and the supervisor for as long as they run
CONFIG_FILE = "lab.config.json"  # the lab file as started, read by the supervisor
EMBEDDED_DATABASE = "tango_database.db"  # pytango's database server writes it in its working folder
APPLIED_FILE = "lab.applied.json"  # the lab file's Tango part as last applied to the run folder's database
SUPERVISOR = "Supervisor"
T = TypeVar("T")


class LabError(RuntimeError):
    """The lab could not be brought up or reached; the message says what to do."""


def host_name() -> str:
    """This host as the supervisor and Starter name it: short, as `hostname` prints it."""
    return socket.gethostname().split(".")[0]


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
        self.pids: dict[str, int] = {}  # database and supervisor; the supervisor knows the rest
        self.answered: dict[str, float] = {}  # device → seconds from start() to its first answer
        self._lock: int | None = None
        self._supervisor: tango.DeviceProxy | None = None

    # -- bring up -----------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start everything and wait until every device answers (or its server has failed for
        good: `failed()` says which); stops what it started if the lab itself cannot come up."""
        began = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self._check_free()
        except BaseException:
            self._release_lock()
            raise
        try:
            self._start_database(timeout)
            self._apply_config()
            self._register_supervisor()
            if self.use_starter:
                self._start_starter(timeout)
            self.start_supervisor(timeout)
            self.supervisor.command_inout("StartAll")
            self._wait_devices(timeout, began)
        except BaseException:
            self.stop()
            raise

    def _take_lock(self) -> None:
        """One lab per run folder: the lock lives as long as the lab's database or supervisor."""
        fd = os.open(self.run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LabError(self._running_elsewhere()) from None
        self._lock = fd

    def _release_lock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _running_elsewhere(self) -> str:
        running = lab_processes(self.run_dir)
        host = next((p.tango_host for p in running if p.name == "database"), None)
        if host is None:
            try:
                host = json.loads((self.run_dir / STATE_FILE).read_text())["tango_host"]
            except (OSError, ValueError, KeyError):
                host = "unknown"
        return (f"a lab is already up in {self.run_dir} (TANGO_HOST={host}, {len(running)} processes); "
                f"`tangolab down --run-dir {self.run_dir}` stops it, or start this one with another --run-dir")

    def _check_free(self) -> None:
        """Refuse before anything starts: a lab file naming servers that do not exist, leftovers of
        an earlier lab here, or ports taken."""
        try:
            for server in self.config.servers:
                self.config.server_argv(server)
        except ConfigError as exc:
            raise LabError(str(exc)) from None
        if leftovers := lab_processes(self.run_dir):
            raise LabError(
                f"processes of an earlier lab in {self.run_dir} still run: "
                + ", ".join(f"{p.name} (pid {p.pid})" for p in leftovers)
                + f"; `tangolab down --run-dir {self.run_dir}` stops them"
            )
        _check_port(self.host, self.port, f"TANGO_HOST {self.tango_host}",
                    f"another Tango database, or a lab still up: `tangolab down`; pick another port with "
                    f"--tango-host {self.host}:{self.port + 1}")
        for simulator in self.config.simulators:
            if simulator.port:
                _check_port("127.0.0.1", simulator.port, f"simulator {simulator.name}",
                            "another lab's simulator, or another program; change its port in the lab file")

    def _start_database(self, timeout: float) -> None:
        self._database_existed = (self.run_dir / EMBEDDED_DATABASE).exists()
        self.pids["database"] = start_database(self.run_dir, self.tango_host, (self._lock,)).pid
        self.database = self._wait_for("database", "the Tango database",
                                       lambda: answering_database(self.host, self.port), timeout, watch="database")

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
        info.name, info._class, info.server = self.supervisor_name, SUPERVISOR, f"{SUPERVISOR}/{host_name()}"
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

    def start_supervisor(self, timeout: float = 60.0) -> None:
        """Start this host's supervisor (again): it adopts the programs that still run."""
        server = f"{SUPERVISOR}/{host_name()}"
        argv = [str(Path(sys.executable).parent / SUPERVISOR), host_name()]
        self.pids["supervisor"] = spawn(server, argv, self.run_dir, self.tango_host,
                                        (self._lock,) if self._lock is not None else ()).pid
        self._save_state()
        self._wait_for(server, "the supervisor", lambda: self.supervisor.ping() is not None, timeout,
                       watch="supervisor")

    def supervisor_alive(self) -> bool:
        return is_alive(self.pids.get("supervisor", 0))

    def _wait_devices(self, timeout: float, began: float) -> None:
        """Until every program runs and every device answers, or its server failed for good (the
        supervisor gave up on it)."""
        waiting = {device.name: device.server for device in self.config.devices}
        proxies = {device: self.proxy(device) for device in waiting}
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive("supervisor", f"{SUPERVISOR}/{host_name()}")
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
            starting = [name for name, phase in phases.items() if phase not in ("running", "failed")]
            if not waiting and not starting:
                return
            if time.monotonic() > deadline:
                raise LabError(f"not up within {timeout:g} s: {', '.join([*waiting, *starting])}; "
                               f"see {self.run_dir / 'log'} and `tangolab status`")
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
        """One row per device: name, class, state, URL."""
        rows = []
        for device in self.config.devices:
            try:
                proxy = self.proxy(device.name)
                proxy.set_timeout_millis(3000)
                state = str(proxy.state())
            except tango.DevFailed as exc:
                state = f"unreachable: {exc.args[0].desc.strip()}"
            rows.append({"device": device.name, "class": device.tango_class, "state": state, "url": device.url})
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
        supervisor and the database go; whatever of the lab is still found (a server started by
        hand, a supervisor that did not answer) is stopped too. Raises if something survived."""
        try:
            self.supervisor.command_inout("StopAll")
        except tango.DevFailed:
            pass  # not up, or gone: what it ran is found below
        survivors = self._stop_found(exclude=("database",), timeout=timeout)
        survivors += self._stop_found(timeout=timeout)
        (self.run_dir / STATE_FILE).unlink(missing_ok=True)
        self._release_lock()
        if survivors:
            raise LabError("could not stop " + ", ".join(f"{p.name} (pid {p.pid})" for p in survivors))

    def _stop_found(self, exclude: tuple[str, ...] = (), timeout: float = 10.0) -> list[LabProcess]:
        """Stop the lab's processes still found: marked with the run folder, or servers of the lab
        started by hand on its TANGO_HOST; the supervisor first, so it restarts nothing meanwhile."""
        servers = tuple((server.executable, server.instance) for server in self.config.servers)
        found = {p.pid: p for p in lab_processes(self.run_dir, self.tango_host, servers) if p.name not in exclude}
        found.update({pid: LabProcess(pid, name, "", "", ()) for name, pid in self.pids.items()
                      if name not in exclude and is_alive(pid) and pid not in found})
        ordered = sorted(found.values(), key=lambda p: not p.name.startswith(SUPERVISOR))
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
        lab.pids = {name: pid for name, pid in state.get("pids", {}).items() if is_alive(pid)}
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


def start_database(run_dir: Path, tango_host: str, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """The lab's Tango database server (`tangolab.database`, its SQLite file in `run_dir`), as a
    lab process; a lab on the loopback has it listen there, by address (else its events listen
    everywhere)."""
    host, port = tango_host.rsplit(":", 1)
    listen = "127.0.0.1" if is_loopback(host) else host
    argv = [sys.executable, "-m", "tangolab.database", "--host", listen, "--port", port, "2"]
    return spawn("database", argv, run_dir, tango_host, pass_fds)


def answering_database(host: str, port: int) -> tango.Database:
    """The database once it answers: its port opens before its device is exported, so a connection
    is not enough (raises until then)."""
    socket.create_connection((host, port), timeout=1.0).close()
    return tango.Database(host, port)


def _state_from_processes(run_dir: Path) -> dict:
    """What the state file said, rebuilt from the lab's running processes and its lab file copy."""
    running = lab_processes(run_dir)
    database = next((p for p in running if p.name == "database"), None)
    if not running:
        raise LabError(f"no lab is up in {run_dir} (no {STATE_FILE}, and no process of it runs)")
    try:
        config = json.loads((run_dir / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        config = {}
    tango_host = database.tango_host if database else running[0].tango_host
    pids = {("supervisor" if p.name.startswith(SUPERVISOR) else p.name): p.pid for p in running
            if p.name == "database" or p.name.startswith(SUPERVISOR)}
    return {"tango_host": tango_host, "config": config, "pids": pids}


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
