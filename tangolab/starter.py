"""A lab over many hosts, run by Tango's own Starter (one per host), as Astor sets it up.

Each server is registered with its host and start-up level (`put_server_info`, mode 1 =
controlled), and each host gets a Starter device `tango/admin/<host>` (server `Starter/<host>`)
whose `StartDsPath` names the folder of the servers' executables. `StarterClient` then drives
one host's Starter: start and stop a server or a level, which servers run, a server's log.

What Starter does and does not do (Debian's tango-starter 9.3.4, measured on this project's VM):
- it knows a server is running by its process name and instance in the host's process table,
  whoever started it (another lab on the same host with the same server names counts), and that
  it answers by pinging its admin device every 2 s: a killed server leaves `RunningServers`
  within about 2 s (state MOVING, then FAULT); a hung one (SIGSTOP) is seen as MOVING ("running
  but not responding") after about 10 s and is never restarted, nor stopped by `DevStop`;
- it restarts a dead controlled server only when `AutoRestartDuration` > 0 and the server had
  run longer than that many minutes before it died (answering again about 4 s after the kill):
  one threshold, no back-off, no cap; one that dies sooner stays dead;
- servers run in a session of their own (they outlive the Starter), stdout goes to /dev/null
  and stderr to `<LogFileHome>/ds.log/<Executable>_<instance>.log` (default /var/tmp), the
  previous file renamed with its date, `KeepLogFiles` kept;
- `DevStart` returns at once (a started server is listed running 2 to 4 s later); Starter's own
  check of a start comes 4 s or more after it, and Starter stays MOVING until then;
- the Starter's instance must be the machine's short host name (it refuses to run elsewhere),
  and it runs the servers the database places on that name.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import tango

STARTER_EXECUTABLE = "/usr/lib/tango/Starter"
CONTROLLED = 1  # DbServerInfo.mode: the Starter of the server's host starts and watches it


class StarterError(RuntimeError):
    """A Starter refused or could not be reached; the message says which, and why. `reason` is
    Starter's own (e.g. SERVER_NOT_RUNNING, ALREADY_RUNNING, CANNOT_RUN_FILE), or UNREACHABLE,
    NOT_REGISTERED, TIMEOUT."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


def short_host(host: str | None = None) -> str:
    """The host name a Starter goes by: short, lower case (Starter compares it with its instance)."""
    return (host or socket.gethostname()).split(".")[0].lower()


def starter_device(host: str | None = None) -> str:
    return f"tango/admin/{short_host(host)}"


def register_servers(
    database: tango.Database,
    servers: Iterable[tuple[str, str, int]],
    starter_path: str | Sequence[str],
    *,
    log_home: str | None = None,
    keep_log_files: int = 3,
    auto_restart_minutes: int = 0,
    startup_timeout: int = 30,
    inter_level_wait: int = 0,
    start_at_startup: bool = False,
) -> list[str]:
    """Put each `(server, host, level)` under its host's Starter; returns the Starter devices.

    The servers' devices must already be in the database (the lab file applied). A Starter that
    runs is told to read the database again; one that does not will read it when it starts.
    `auto_restart_minutes` is Starter's `AutoRestartDuration` (0: never restart by itself).
    """
    paths = [starter_path] if isinstance(starter_path, str) else list(starter_path)
    properties = {
        "StartDsPath": paths,
        "KeepLogFiles": [str(keep_log_files)],
        "AutoRestartDuration": [str(auto_restart_minutes)],
        "ServerStartupTimeout": [str(startup_timeout)],
        "InterStartupLevelWait": [str(inter_level_wait)],
        "StartServersAtStartup": ["true" if start_at_startup else "false"],
    }
    if log_home:
        properties["LogFileHome"] = [log_home]
    hosts: dict[str, None] = {}
    for server, host, level in servers:
        put_server_info(database, server, host, level)
        hosts[short_host(host)] = None
    devices = []
    for host in hosts:
        device = starter_device(host)
        info = tango.DbDevInfo()
        info.name, info._class, info.server = device, "Starter", f"Starter/{host}"
        database.add_device(info)
        database.put_device_property(device, properties)
        devices.append(device)
        _tell_to_reread(database, device)
    return devices


def starter_log(run_dir: str | Path, server: str) -> Path:
    """Where Starter writes `server`'s stderr for a lab registered with `log_home=<run_dir>/log`."""
    executable, _, instance = server.partition("/")
    return Path(run_dir) / "log" / "ds.log" / f"{executable}_{instance}.log"


def _check_server_name(server: str) -> None:
    executable, _, instance = server.partition("/")
    if not executable or not instance or "/" in instance:
        raise StarterError(f"a server name is Executable/instance, got {server!r}")


def put_server_info(database: tango.Database, server: str, host: str, level: int) -> None:
    """Record `server`'s host and start-up level in the database as controlled, as Astor does."""
    _check_server_name(server)
    host = short_host(host)
    admin = f"dserver/{server}"
    try:
        device = database.get_device_info(admin)
    except tango.DevFailed as exc:
        raise StarterError(
            f"server {server} has no devices in the Tango database: apply the lab file first"
        ) from exc
    info = tango.DbServerInfo()
    info.name, info.host, info.mode, info.level = server, host, CONTROLLED, int(level)
    try:
        database.put_server_info(info)
    except tango.DevFailed:
        # pytango's embedded database stores the info, then fails to tell the host's Starter
        # when its device is defined but not running: what counts is what was stored
        stored = database.get_server_info(server)
        if (short_host(stored.host), stored.mode, stored.level) != (host, CONTROLLED, int(level)):
            raise
    if not device.exported and short_host(device.host) != host:
        # pytango's embedded database lists a host's servers (DbGetHostServersInfo, what the
        # Starter asks) by the host their admin device was last exported from, not by the host
        # given to put_server_info: record that host as a server that ran and stopped would.
        export = tango.DbDevExportInfo()
        export.name, export.ior, export.host, export.pid, export.version = admin, "nada", host, 0, "0"
        database.export_device(export)
        database.unexport_server(server)


def _tell_to_reread(database: tango.Database, device: str) -> None:
    try:
        proxy = tango.DeviceProxy(f"tango://{database.get_db_host()}:{database.get_db_port()}/{device}")
        proxy.set_timeout_millis(2000)
        proxy.command_inout("UpdateServersInfo")
    except tango.DevFailed:
        pass  # not running yet: it reads the database when it starts


@dataclass(frozen=True)
class ServerStatus:
    """One line of Starter's `Servers` attribute."""

    name: str
    state: str  # ON: runs and answers; MOVING: runs, does not answer; FAULT: not running
    controlled: bool
    level: int
    instances: int  # processes with this name and instance on the host (more than 1: trouble)

    @property
    def running(self) -> bool:
        return self.state == "ON"


class StarterClient:
    """The commands of one host's Starter that a supervisor needs, with time-outs and plain errors."""

    def __init__(self, host: str | None = None, tango_host: str | None = None, timeout: float = 3.0) -> None:
        self.host = short_host(host)
        self.device = starter_device(self.host)
        self.tango_host = tango_host
        self.timeout = timeout
        self._proxy: tango.DeviceProxy | None = None

    def __repr__(self) -> str:
        return f"StarterClient({self.host!r}, {self.tango_host!r})"

    # -- what runs ---------------------------------------------------------------------------

    def ping(self) -> float:
        """Seconds a round trip takes; StarterError if the Starter does not answer."""
        return self._call("ping", lambda proxy: proxy.ping()) / 1e6

    def servers(self) -> dict[str, ServerStatus]:
        """Every server registered on the host, as Starter last saw it (it looks every 2 s)."""
        lines = self._call("read Servers", lambda proxy: proxy.read_attribute("Servers").value) or ()
        found = {}
        for line in lines:
            name, state, controlled, level, instances = (line.split("\t") + ["", "", "0", "0"])[:5]
            found[name] = ServerStatus(name, state, controlled == "1", int(level or 0), int(instances or 0))
        return found

    def running(self) -> list[str]:
        """Controlled servers that run and answer."""
        return list(
            self._call("read RunningServers", lambda proxy: proxy.read_attribute("RunningServers").value)
            or ()
        )

    def stopped(self) -> list[str]:
        """Controlled servers that do not run or do not answer."""
        return list(
            self._call("read StoppedServers", lambda proxy: proxy.read_attribute("StoppedServers").value)
            or ()
        )

    def state(self) -> tuple[str, str]:
        """The Starter's state and status: ON all controlled servers run, ALARM some do not, MOVING
        one does not answer (STANDBY: for longer than MovingMaxDuration), OFF none runs."""
        return self._call("read State", lambda proxy: (str(proxy.state()), proxy.status()))

    def read_log(self, server: str) -> str:
        """The server's standard error since its last start, as Starter keeps it."""
        text = self._call(f"DevReadLog('{server}')", lambda proxy: proxy.command_inout("DevReadLog", server))
        return text.rstrip("\0")

    def starter_log(self) -> str:
        """Starter's own record of what it started and stopped, newest first."""
        return self.read_log("Starter")

    # -- actions -----------------------------------------------------------------------------

    def start(self, server: str, confirm: float = 10.0) -> None:
        """Ask Starter to start `server` and see that it launched it (`wait_running`: it answers).

        Starter's view lags: it looks every 2 s, and until then it refuses to start a server that
        has just died (ALREADY_RUNNING) or skips the start, silently, while its list of processes
        (zombies included) still shows one. So the start is asked again until the server's log
        file is a new one (Starter begins one at each launch) or the server answers, for up to
        `confirm` s. A server that answers already is refused (reason ALREADY_RUNNING)."""
        before = self._log_stamp(server)
        deadline = time.monotonic() + confirm
        while True:
            try:
                self._call(f"DevStart('{server}')", lambda proxy: proxy.command_inout("DevStart", server))
            except StarterError as exc:
                if exc.reason != "ALREADY_RUNNING" or self._admin_answers(server):
                    raise
            asked = time.monotonic()
            while time.monotonic() - asked < 2.5:  # Starter renews its process list every 2 s
                if self._log_stamp(server) != before or self._admin_answers(server):
                    return
                if time.monotonic() > deadline:
                    raise StarterError(
                        f"Starter {self.device} did not launch {server} within {confirm:g} s "
                        f"(it still sees a process of it: {self.servers().get(server)})",
                        "NOT_LAUNCHED",
                    )
                time.sleep(0.3)

    def _admin_answers(self, server: str) -> bool:
        return self._ask_admin(server, lambda admin: admin.ping(), 1.0)

    def _log_stamp(self, server: str) -> str | None:
        """The first lines of DevReadLog: the server's log file and its time (None: no log yet)."""
        try:
            return "\n".join(self.read_log(server).splitlines()[:2])
        except StarterError as exc:
            if exc.reason == "UNREACHABLE":
                raise
            return None

    def stop(self, server: str) -> None:
        """Stop `server` through its admin device's Kill (what DevStop does), also one Starter has not
        yet seen running (it looks every 2 s); a server that does not answer is killed (-9)."""
        try:
            self._call(f"DevStop('{server}')", lambda proxy: proxy.command_inout("DevStop", server))
        except StarterError as exc:
            if exc.reason == "SERVER_NOT_RESPONDING":
                self.kill(server)
            elif exc.reason != "SERVER_NOT_RUNNING" or not self._kill_through_admin(server):
                raise

    def kill(self, server: str) -> None:
        """kill -9 of `server` by Starter, on its host."""
        self._call(f"HardKillServer('{server}')", lambda proxy: proxy.command_inout("HardKillServer", server))

    def restart(self, server: str, timeout: float = 30.0) -> None:
        """Stop `server` if it runs, wait until it is gone, start it and wait until it answers."""
        if self.servers().get(server, ServerStatus(server, "FAULT", True, 0, 0)).state != "FAULT":
            self.stop(server)
            self.wait_stopped(server, timeout)
        self.start(server)
        self.wait_running(server, timeout)

    def start_level(self, level: int) -> None:
        """Start every controlled server of `level` that is not running, one after the other."""
        self._call(f"DevStartAll({level})", lambda proxy: proxy.command_inout("DevStartAll", int(level)))

    def stop_level(self, level: int) -> None:
        self._call(f"DevStopAll({level})", lambda proxy: proxy.command_inout("DevStopAll", int(level)))

    def update_servers_info(self) -> None:
        """Make Starter read the servers' hosts and levels from the database again."""
        self._call("UpdateServersInfo", lambda proxy: proxy.command_inout("UpdateServersInfo"))

    def wait_running(self, server: str, timeout: float = 30.0) -> None:
        """Until Starter reports `server` running and answering; a time-out names its log."""
        self._wait(server, lambda status: status.state == "ON", "running", timeout)

    def wait_stopped(self, server: str, timeout: float = 30.0) -> None:
        """Until Starter reports no process of `server` on the host (state FAULT alone may be one
        still starting, or one gone that its process list still shows)."""
        self._wait(
            server, lambda status: status.state == "FAULT" and status.instances == 0, "stopped", timeout
        )

    # -- internals ---------------------------------------------------------------------------

    def _wait(self, server: str, done: Callable[[ServerStatus], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = self.servers().get(server)
            if status is None:
                raise StarterError(
                    f"{server} is not registered on host {self.host} (see register_servers)", "NOT_REGISTERED"
                )
            if done(status):
                return
            if time.monotonic() > deadline:
                raise StarterError(
                    f"{server} not {what} within {timeout:g} s (Starter {self.device} says {status.state}); "
                    f"its log: DevReadLog('{server}')",
                    "TIMEOUT",
                )
            time.sleep(0.2)

    def _kill_through_admin(self, server: str) -> bool:
        return self._ask_admin(server, lambda admin: admin.command_inout("Kill"), self.timeout)

    def _ask_admin(self, server: str, ask: Callable[[tango.DeviceProxy], object], timeout: float) -> bool:
        """Something of the server's admin device itself; False if it does not answer."""
        name = f"tango://{self.tango_host}/dserver/{server}" if self.tango_host else f"dserver/{server}"
        try:
            admin = tango.DeviceProxy(name)
            admin.set_timeout_millis(int(timeout * 1000))
            ask(admin)
        except tango.DevFailed:
            return False
        return True

    def _proxy_or_connect(self) -> tango.DeviceProxy:
        if self._proxy is None:
            name = f"tango://{self.tango_host}/{self.device}" if self.tango_host else self.device
            proxy = tango.DeviceProxy(name)
            proxy.set_timeout_millis(int(self.timeout * 1000))
            self._proxy = proxy
        return self._proxy

    def _call(self, what: str, action: Callable[[tango.DeviceProxy], object]):
        try:
            return action(self._proxy_or_connect())
        except tango.DevFailed as exc:
            error = exc.args[0]
            reason, desc = error.reason, error.desc.strip()
            if any(e.reason in _UNREACHABLE for e in exc.args) and not self._answers():
                raise StarterError(
                    f"Starter {self.device} on {self.tango_host or 'TANGO_HOST'} does not answer ({desc}); "
                    f"is `{STARTER_EXECUTABLE} {self.host}` running on host {self.host}?",
                    "UNREACHABLE",
                ) from exc
            raise StarterError(f"Starter {self.device}: {what} failed: {reason}: {desc}", reason) from exc

    def _answers(self) -> bool:
        try:
            self._proxy_or_connect().ping()
        except tango.DevFailed:
            return False
        return True


_UNREACHABLE = {
    "API_DeviceNotExported",
    "API_CantConnectToDevice",
    "API_DeviceNotDefined",
    "API_DeviceTimedOut",
    "API_CorbaException",
    "API_ServerNotRunning",
}
