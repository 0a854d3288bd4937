"""The processes of a lab: started with a mark, logged without loss, found again without a state file.

Every process a lab starts (database, supervisor, simulators, device servers) carries two
environment variables, `TANGOLAB_RUN_DIR` (the lab's run folder) and `TANGOLAB_PROCESS` (its
name in the lab), so `tangolab down` and a restarted supervisor find them from /proc even when
the state file is gone. A server started by hand in a shell carries no mark: it is recognised
by its TANGO_HOST and its command line. Logs are appended, never truncated, and rotated at start
when they have grown past `LOG_LIMIT`.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import logging
import logging.handlers
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Self

RUN_DIR_MARK = "TANGOLAB_RUN_DIR"
NAME_MARK = "TANGOLAB_PROCESS"
LOG_LIMIT = 5_000_000  # bytes a log may reach before the next start rotates it
LOG_KEEP = 3  # rotated logs kept: name.log.1 (newest) … name.log.3
START_LINE = b"----- "  # opens the log of each start
SIMULATOR_READY = re.compile(rb"listening on (\S+):(\d+) control (\S+):(\d+)")  # a simulator's first line
LOCK_FILE = "lab.lock"  # held by whoever starts, repairs or stops the lab of a run folder
DATABASE, WATCHDOG, SUPERVISOR = "database", "watchdog", "Supervisor"  # the lab's own processes (level 0)
DATABASE_READY = b"Ready to accept request"  # pytango's database server, once its device is exported
WATCHDOG_READY = b"watching "  # the watchdog's first line
HEARTBEAT_FILE = "supervisor.heartbeat"  # touched each second by a supervisor that goes round
STOPPED_FILE = "lab.stopped.json"  # the programs stopped on request, kept by the supervisor for the next one


@dataclass(frozen=True)
class LabProcess:
    """A running process that belongs to a lab, found from /proc."""

    pid: int
    name: str  # its name in the lab ("database", "TemperatureController/lab", "simulator/cryocon"), or its argv
    run_dir: str
    tango_host: str
    argv: tuple[str, ...]


class RunLock:
    """The run folder's lock: one at a time starts, repairs or stops the lab there (`tangolab up`,
    `tangolab down`, the watchdog), so that two never start the same program. Held only while
    doing so: whether a lab runs is read from /proc (`lab_processes`), not from the lock."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.fd: int | None = None

    def acquire(self, timeout: float | None = 0.0) -> bool:
        """Take it, waiting up to `timeout` seconds (None: as long as it takes); False if not taken."""
        if self.fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.fd = fd
                return True
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> Self:
        self.acquire(None)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def stopped_on_request(run_dir: Path) -> set[str] | None:
    """The programs a lab's supervisor was asked to keep stopped; None for a lab never started."""
    try:
        return set(json.loads((run_dir / STOPPED_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def log_path(run_dir: Path, name: str) -> Path:
    """`<run dir>/log/<name with / as ->.log`."""
    return run_dir / "log" / f"{name.replace('/', '-')}.log"


def lab_log(run_dir: Path) -> Path:
    """The lab log: every action of the supervisor, in words."""
    return run_dir / "log" / "lab.log"


def lab_logger(run_dir: Path, source: str) -> logging.Logger:
    """A writer of the lab log, its lines marked with `source` (supervisor, watchdog, tangolab):
    each process of the lab that acts on it says so there."""
    log = logging.getLogger(f"tangolab.lab.{source}:{run_dir}")  # one process may meet several labs (tests)
    if not log.handlers:
        lab_log(run_dir).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(lab_log(run_dir), maxBytes=LOG_LIMIT, backupCount=LOG_KEEP,
                                                       delay=True)
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {source}: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def open_log(path: Path, argv: list[str]) -> IO[str]:
    """The log of one start: appended to the previous runs' log (rotated first if it grew too big),
    opened by a line saying when and what started."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size > LOG_LIMIT:
        for index in range(LOG_KEEP - 1, 0, -1):
            older = path.with_name(f"{path.name}.{index}")
            if older.exists():
                older.replace(path.with_name(f"{path.name}.{index + 1}"))
        path.replace(path.with_name(f"{path.name}.1"))
    out = open(path, "a")  # noqa: SIM115 - the caller closes it once the process has it
    out.write(f"{START_LINE.decode()}{datetime.now().isoformat(timespec='seconds')} starting: {' '.join(argv)}\n")
    out.flush()
    return out


def current_run(path: str | Path) -> bytes:
    """What a log holds since the start of its current process (from its last start line)."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 65536))
            data = log.read()
    except OSError:
        return b""
    start = data.rfind(START_LINE)
    return data[start:] if start >= 0 else data


def simulator_ports(log: str | Path) -> tuple[str, int, int] | None:
    """(host, protocol port, control port) a running simulator announced in its log, or None yet."""
    match = None
    for match in SIMULATOR_READY.finditer(current_run(log)):
        pass
    return (match.group(1).decode(), int(match.group(2)), int(match.group(4))) if match else None


def host_name() -> str:
    """This host as the supervisor and Starter name it: short, as `hostname` prints it."""
    return socket.gethostname().split(".")[0]


def database_argv(tango_host: str) -> list[str]:
    """The lab's Tango database server (`tangolab.database`, its SQLite file in the working folder);
    a lab on the loopback has it listen there, by address (else its events listen everywhere)."""
    host, _, port = tango_host.rpartition(":")
    listen = "127.0.0.1" if is_loopback(host) else host
    return [sys.executable, "-m", "tangolab.database", "--host", listen, "--port", port, "2"]


def supervisor_argv() -> list[str]:
    """This host's supervisor, `Supervisor/<host>`: the console script beside the running Python."""
    return [str(Path(sys.executable).parent / SUPERVISOR), host_name()]


def watchdog_argv(hang_timeout: float) -> list[str]:
    return [sys.executable, "-m", "tangolab.watchdog", "--hang-timeout", f"{hang_timeout:g}"]


def supervisor_name() -> str:
    """The supervisor's server name, as its process is named in the lab."""
    return f"{SUPERVISOR}/{host_name()}"


def lab_environment(run_dir: Path, name: str, tango_host: str) -> dict[str, str]:
    """The environment of a lab's process: its marks, its TANGO_HOST and, for a lab on the
    loopback, an omniORB end point on the loopback so that the server listens nowhere else."""
    env = dict(os.environ, TANGO_HOST=tango_host, PYTHONUNBUFFERED="1")
    env[RUN_DIR_MARK], env[NAME_MARK] = str(run_dir), name
    if is_loopback(tango_host.rpartition(":")[0]):
        env["ORBendPoint"] = "giop:tcp:127.0.0.1:"
    else:
        env.pop("ORBendPoint", None)
    return env


def spawn(name: str, argv: list[str], run_dir: Path, tango_host: str, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start one process of the lab in its own session, its output appended to its log."""
    with open_log(log_path(run_dir, name), argv) as out:
        return subprocess.Popen(
            argv, cwd=run_dir, env=lab_environment(run_dir, name, tango_host), stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, pass_fds=pass_fds,
        )


def is_loopback(host: str, resolve: bool = False) -> bool:
    """True for localhost and 127.x / ::1; with `resolve`, also for a name that resolves there (as
    Debian's own host name often does, 127.0.1.1). A lab named by its host name is meant for the
    network: it listens where Tango normally does, so the launcher does not resolve."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(socket.gethostbyname(host) if resolve else host).is_loopback
    except (OSError, ValueError):
        return False


def lab_processes(
    run_dir: Path | None = None, tango_host: str | None = None, servers: tuple[tuple[str, str], ...] = ()
) -> list[LabProcess]:
    """The processes of the lab in `run_dir` (by their mark) or on `tango_host` (by their mark,
    or, started by hand, by TANGO_HOST and a command line `<executable> <instance>` of `servers`)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            env = _environment(proc)
            argv = tuple(arg.decode(errors="replace") for arg in (proc / "cmdline").read_bytes().split(b"\0")[:-1])
        except OSError:  # gone meanwhile, or someone else's
            continue
        if not argv or _is_zombie(proc):
            continue
        marked_dir, host = env.get(RUN_DIR_MARK), env.get("TANGO_HOST", "")
        in_folder = run_dir is not None and marked_dir == str(run_dir)
        on_host = tango_host is not None and _same_tango_host(host, tango_host)
        if not (in_folder or on_host and (marked_dir or _runs_server(argv, servers))):
            continue
        name = env.get(NAME_MARK) or " ".join(argv)
        found.append(LabProcess(int(proc.name), name, marked_dir or "", host, argv))
    return found


def server_pid(tango_host: str, server: str) -> int:
    """The process ID of `Executable/instance` running on this host for `tango_host`, 0 if none."""
    executable, _, instance = server.partition("/")
    for process in lab_processes(tango_host=tango_host, servers=((executable, instance),)):
        if _runs_server(process.argv, ((executable, instance),)):
            return process.pid
    return 0


def is_alive(pid: int) -> bool:
    """Running (a zombie is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(Path(f"/proc/{pid}"))


def terminate(pid: int, timeout: float = 10.0, sig: int = signal.SIGTERM) -> bool:
    """Send `sig`, then SIGKILL if the process is still there after `timeout`; True once it is gone."""
    for signum, wait in ((sig, timeout), (signal.SIGKILL, timeout)):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not is_alive(pid):
                return True
            time.sleep(0.02)
        if signum == signal.SIGKILL:
            break
    return not is_alive(pid)


def _reap(pid: int) -> None:
    """Collect the exit of our own child, so that it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _environment(proc: Path) -> dict[str, str]:
    raw = (proc / "environ").read_bytes()
    return dict(item.decode(errors="replace").partition("=")[::2] for item in raw.split(b"\0") if b"=" in item)


def _is_zombie(proc: Path) -> bool:
    try:
        return proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def _same_tango_host(one: str, other: str) -> bool:
    """localhost:10000, 127.0.0.1:10000 and <this host>:10000 are the same database."""
    def canonical(tango_host: str) -> tuple[str, str]:
        host, _, port = tango_host.rpartition(":")
        return ("loopback" if is_loopback(host) else host.split(".")[0].lower(), port)

    return bool(one) and canonical(one) == canonical(other)


def _runs_server(argv: tuple[str, ...], servers: tuple[tuple[str, str], ...]) -> bool:
    """`<executable> <instance>`, run directly or through an interpreter (`python3 /path/Executable lab`)."""
    names = [Path(arg).name for arg in argv]
    return any(
        executable in names and names.index(executable) + 1 < len(argv) and argv[names.index(executable) + 1] == instance
        for executable, instance in servers
    )
