"""A throwaway PostgreSQL server for tests: its own data folder, a free port, gone afterwards.

Use the fixtures by importing them into a test module::

    from tests.postgres import postgres_server, postgres_url  # noqa: F401

`postgres_url` is a fresh, empty database on the session's server, for one test. Without the
PostgreSQL server binaries the tests that need them skip, saying how to install them; under CI
(CI=true) they fail instead, since CI must test both stores.
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: install them with `apt-get install postgresql`"
)


def find_bindir() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    on_path = [Path(found).resolve().parent] if (found := shutil.which("pg_ctl")) else []
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version, reverse=True)
    return next((bindir for bindir in on_path + debian if (bindir / "initdb").exists()), None)


def _version(bindir: Path) -> list[int]:
    return [int(part) for part in re.findall(r"\d+", bindir.parent.name)]


def _unprivileged_user() -> str:
    """initdb refuses root: the server then runs as `postgres` (Debian's), created if missing."""
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    return "postgres"


class PostgresServer:
    """initdb, pg_ctl start and stop, by the binaries of `bindir`, in a temporary folder."""

    def __init__(self, bindir: Path, fast: bool = True) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="tangolab-pg-"))
        self.data = self.root / "data"
        self.user = _unprivileged_user() if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.root, self.user)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        # fsync off makes tests fast; a crash would lose the data, which tests throw away anyway
        self.options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        if fast:
            self.options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._databases = itertools.count(1)

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresServer:
        """Create the data folder on first start; start the server on it."""
        if not self.data.exists():
            self._run(
                "initdb", "-D", str(self.data), "-U", "tangolab", "-A", "trust", "-E", "UTF8", "--no-locale", "-N"
            )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            self.options,
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def halt(self) -> None:
        """Stop the server as an administrator would (clients are cut off), keeping its data."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def stop(self) -> None:
        """Stop the server and remove it."""
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "20", "stop")
        except (subprocess.SubprocessError, OSError):
            pid_file = self.data / "postmaster.pid"
            if pid_file.exists():
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://tangolab@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"test_{next(self._databases)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _server() -> Iterator[PostgresServer]:
    bindir = find_bindir()
    if bindir is None:
        if _in_ci():
            pytest.fail(INSTALL_HINT + " (CI must run the PostgreSQL tests)")
        pytest.skip(INSTALL_HINT)
    server = PostgresServer(bindir)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the test session."""
    yield from _server()


@pytest.fixture
def private_postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of one test's own, which it may stop and start."""
    yield from _server()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh database of its own for one test."""
    return postgres_server.create_database()
