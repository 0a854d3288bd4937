"""Bring a whole lab up on one machine, and down again.

`Lab.start()` starts pytango's embedded Tango database in the run folder, applies the lab's
dsconfig JSON to it, starts the simulators the lab names and every device server (each as its
console script, so Tango's Starter recognises it), and waits until every device answers. The
same object stops everything it started; `Lab.attach()` finds a detached lab again from the
state file it left in the run folder. Tests use exactly this code, on free ports.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import tango
from dsconfig.json2tango import apply_config, prepare_config

from .lab_config import LabConfig

STATE_FILE = "lab.state.json"
EMBEDDED_DATABASE = "tango_database.db"  # pytango's database server writes it in its working folder
APPLIED_FILE = "lab.applied.json"  # the lab file's Tango part as last applied to the run folder's database
T = TypeVar("T")
SIMULATOR_READY = re.compile(r"listening on (\S+):(\d+) control (\S+):(\d+)")


class LabError(RuntimeError):
    """The lab could not be brought up or reached; the message says what to do."""


@dataclass
class Process:
    """One process of the lab, with its own log file."""

    name: str
    argv: list[str]
    log: str
    pid: int = 0

    def is_alive(self) -> bool:
        """Running, and still the process started (a PID can be reused)."""
        if not self.pid:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        proc = Path(f"/proc/{self.pid}")
        if not proc.exists():  # no /proc here: trust the signal
            return True
        if _proc_state(proc) == "Z":  # exited, not yet reaped
            return False
        return _cmdline(self.pid).endswith(" ".join(self.argv))  # scripts show as "python3 <script> ..."


class Lab:
    """The processes of one lab: database, simulators, device servers."""

    def __init__(
        self, config: LabConfig, run_dir: str | Path = "var", tango_host: str = "localhost:10000", reset: bool = False
    ):
        self.config = config
        self.reset = reset  # apply the whole lab file, undoing what was changed at run time
        self.run_dir = Path(run_dir).resolve()
        self.tango_host = tango_host
        host, _, port = tango_host.rpartition(":")
        if not host or not port.isdigit():
            raise LabError(f"TANGO_HOST must be HOST:PORT, got {tango_host!r}")
        self.host, self.port = host, int(port)
        self.processes: dict[str, Process] = {}
        self._popen: dict[str, subprocess.Popen] = {}

    # -- bring up -----------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start everything and wait until every device answers; stops what it started on error."""
        (self.run_dir / "log").mkdir(parents=True, exist_ok=True)
        try:
            self._start_database(timeout)
            self._apply_config()
            for simulator in self.config.simulators:
                self.start_simulator(simulator.name, timeout)
            for server in self.config.servers:  # in file order, each up before the next starts:
                self.start_server(server.name)  # a device may need those before it (log target)
                self._save_state()
                for device in server.devices:
                    self.wait_device(device.name, timeout)
        except BaseException:
            self.stop()
            raise

    def _start_database(self, timeout: float) -> None:
        with socket.socket() as probe:
            try:
                probe.bind((self.host, self.port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise LabError(f"cannot use TANGO_HOST {self.tango_host}: {exc}") from exc
                raise LabError(
                    f"port {self.port} of TANGO_HOST {self.tango_host} is already in use (another Tango "
                    f"database, or a lab still up: `tangolab down`); pick another port with "
                    f"--tango-host {self.host}:{self.port + 1}"
                ) from exc
        self._database_existed = (self.run_dir / EMBEDDED_DATABASE).exists()
        self._spawn(
            "database",
            [sys.executable, "-m", "tango.databaseds.database", "--host", self.host, "--port", str(self.port), "2"],
        )
        self.database = self._wait_for("database", "the Tango database", self._connect_database, timeout)

    def _connect_database(self) -> tango.Database:
        """The port opens before the database device is exported: a connection is not enough."""
        socket.create_connection((self.host, self.port), timeout=1.0).close()
        return tango.Database(self.host, self.port)

    def _apply_config(self) -> None:
        """The lab file into the database: whole on a new run folder (or with reset); else only
        what the file changed since it was last applied, so that what users changed while the
        lab ran (archived attributes, attribute configuration, properties) stays."""
        applied = self.run_dir / APPLIED_FILE
        current = self.config.dsconfig()
        if self.reset or not self._database_existed or not applied.exists():
            apply_config(prepare_config(current), self.database, write=True)
        elif changes := _changes(json.loads(applied.read_text()), current):
            apply_config(prepare_config(changes), self.database, write=True, update=True)
        applied.write_text(json.dumps(current, indent=2))

    def start_simulator(self, name: str, timeout: float = 30.0) -> tuple[int, int]:
        """(Re)start one simulator of the lab; returns its protocol and control ports."""
        spec = next(sim for sim in self.config.simulators if sim.name == name)
        argv = [sys.executable, "-m", "simulators", spec.kind, "--port", str(spec.port), "--control-port", "0"]
        if spec.seed is not None:
            argv += ["--seed", str(spec.seed)]
        for option, value in spec.options.items():
            argv += [f"--{option.replace('_', '-')}", str(value)]
        log = self._spawn(f"simulator-{name}", argv)
        match = self._wait_for(
            f"simulator-{name}", f"simulator {name}", lambda: SIMULATOR_READY.search(log.read_text(errors="replace")), timeout
        )
        return int(match.group(2)), int(match.group(4))

    def control_port(self, simulator: str) -> int:
        """The fault-injection port a running simulator of the lab announced (in its log)."""
        log = Path(self.processes[f"simulator-{simulator}"].log).read_text(errors="replace")
        return int(SIMULATOR_READY.search(log).group(4))

    def start_server(self, name: str) -> None:
        """(Re)start one device server of the lab, `Class/instance`, as its console script."""
        server = next(server for server in self.config.servers if server.name == name)
        command = self.config.commands.get(server.executable) or [_console_script(server.executable)]
        self._spawn(_process_name(name), [*command, server.instance])

    def wait_device(self, name: str, timeout: float = 60.0) -> None:
        """Wait until `name` answers a ping; a dead server or a time-out names the log to read."""
        process = _process_name(next(d.server for d in self.config.devices if d.name == name))
        self._wait_for(process, f"device {name}", lambda: self.proxy(name).ping() is not None, timeout)

    # -- use ----------------------------------------------------------------------------------

    def proxy(self, device: str) -> tango.DeviceProxy:
        """A DeviceProxy through this lab's database, whatever TANGO_HOST the caller has."""
        return tango.DeviceProxy(f"tango://{self.tango_host}/{device}")

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

    def dead_processes(self) -> list[Process]:
        return [process for process in self.processes.values() if not self.is_running(process.name)]

    def is_running(self, name: str) -> bool:
        popen = self._popen.get(name)
        if popen is not None:
            return popen.poll() is None
        return self.processes[name].is_alive()

    # -- bring down ---------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every process of the lab: servers first, then simulators, then the database."""
        for name in reversed(list(self.processes)):
            self.kill(name, timeout)
        state = self.run_dir / STATE_FILE
        state.unlink(missing_ok=True)

    def kill(self, name: str, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
        """Stop one process by its PID: `sig` first, SIGKILL if it is still there after `timeout`."""
        process = self.processes.get(name)
        if process is None or not self.is_running(name):
            self._reap(name)
            return
        _signal(process.pid, sig)
        deadline = time.monotonic() + timeout
        while self.is_running(name) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.is_running(name):
            _signal(process.pid, signal.SIGKILL)
            while self.is_running(name) and time.monotonic() < deadline + timeout:
                time.sleep(0.05)
        self._reap(name)

    # -- detached labs ------------------------------------------------------------------------

    @classmethod
    def attach(cls, run_dir: str | Path = "var") -> Lab:
        """The lab a detached `tangolab up` left running in `run_dir`."""
        path = Path(run_dir) / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise LabError(f"no lab is up in {Path(run_dir).resolve()} (no {STATE_FILE})") from exc
        lab = cls(LabConfig(state["config"]), run_dir, state["tango_host"])
        lab.processes = {name: Process(**fields) for name, fields in state["processes"].items()}
        return lab

    def _save_state(self) -> None:
        state = {
            "tango_host": self.tango_host,
            "config": self.config.data,
            "processes": {name: asdict(process) for name, process in self.processes.items()},
        }
        (self.run_dir / STATE_FILE).write_text(json.dumps(state, indent=2))

    # -- internals ----------------------------------------------------------------------------

    def _log(self, name: str) -> Path:
        return self.run_dir / "log" / f"{name}.log"

    def _spawn(self, name: str, argv: list[str]) -> Path:
        log = self._log(name)
        env = dict(os.environ, TANGO_HOST=self.tango_host, PYTHONUNBUFFERED="1")
        with open(log, "w") as out:
            popen = subprocess.Popen(
                argv, cwd=self.run_dir, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        self._popen[name] = popen
        self.processes[name] = Process(name, argv, str(log), popen.pid)
        return log

    def _wait_for(self, process: str, what: str, answer: Callable[[], T | None], timeout: float) -> T:
        """Ask `answer` until it gives something; a dead `process` or a time-out names its log."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive(process)
            try:
                if result := answer():
                    return result
                reason = "no answer yet"
            except (tango.DevFailed, OSError) as exc:
                reason = exc.args[-1].desc.strip() if isinstance(exc, tango.DevFailed) else str(exc)
            if time.monotonic() > deadline:
                raise LabError(f"{what} did not answer within {timeout:g} s ({reason}); see {self._log(process)}")
            time.sleep(0.1)

    def _check_alive(self, name: str) -> None:
        if not self.is_running(name):
            tail = "\n".join(self._log(name).read_text(errors="replace").splitlines()[-15:])
            raise LabError(f"{name} exited at start-up; see {self._log(name)}:\n{tail}")

    def _reap(self, name: str) -> None:
        popen = self._popen.pop(name, None)
        if popen is not None:
            popen.wait()


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


def _process_name(server: str) -> str:
    return server.replace("/", "-")


def _console_script(executable: str) -> str:
    """The server's own console script, from the running Python's environment."""
    beside = Path(sys.executable).parent / executable
    if beside.exists():
        return str(beside)
    raise LabError(f"no console script {executable!r} beside {sys.executable}: is tangolab installed (pip install -e .)?")


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _proc_state(proc: Path) -> str:
    try:
        return proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""
