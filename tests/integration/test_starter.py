"""The demo lab's servers under Debian's real Tango Starter, on pytango's embedded database.

Registered as Astor does (host and level per server, `tango/admin/<host>` with `StartDsPath` at
tangolab's console scripts), started and stopped through Starter's commands, killed with -9 to
see what Starter reports. The instances are named after this test process: Starter recognises
servers by process name and instance on the whole host, so a `TemperatureController lab` of
another lab running here would pass for ours.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tango
from dsconfig.json2tango import apply_config, prepare_config

from simulators import SIMULATORS, run_in_thread
from tangolab.lab_config import LabConfig, free_port
from tangolab.processes import terminate
from tangolab.scripting import wait_until
from tangolab.starter import (
    STARTER_EXECUTABLE,
    StarterClient,
    StarterError,
    register_servers,
    short_host,
    starter_log,
)

pytestmark = pytest.mark.skipif(
    not os.access(STARTER_EXECUTABLE, os.X_OK),
    reason=f"Tango's Starter is not installed ({STARTER_EXECUTABLE})",
)

INSTANCE = f"st{os.getpid()}"
CRYOCON = f"TemperatureController/{INSTANCE}"
RELAY = f"Relay/{INSTANCE}"
LEVELS = {RELAY: 1, CRYOCON: 2}
DATABASE_SERVER = "tango.databaseds.database"


def _lab_servers(config: LabConfig) -> dict:
    """lab.json's TemperatureController and Relay servers, renamed to this test's instance."""
    servers = config.data["servers"]
    return {
        "servers": {name.split("/")[0]: {INSTANCE: servers[name.split("/")[0]]["lab"]} for name in LEVELS}
    }


class StarterLab:
    """An embedded database, the lab's servers registered on it, and a Starter for this host."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.tango_host = f"127.0.0.1:{free_port()}"
        self.host = short_host()
        self.log_home = folder / "log"
        (self.log_home / "ds.log").mkdir(parents=True)  # else Starter's first lines are lost
        self.env = dict(os.environ, TANGO_HOST=self.tango_host)
        self.popen: dict[str, subprocess.Popen] = {}

    def spawn(self, name: str, argv: list[str], **environment: str) -> None:
        with open(self.folder / f"{name}.out", "w") as out:
            self.popen[name] = subprocess.Popen(
                argv,
                cwd=self.folder,
                env={**self.env, **environment},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def database(self) -> tango.Database:
        host, port = self.tango_host.split(":")
        return tango.Database(host, int(port))

    def server_pid(self, server: str) -> int:
        return self.database().get_device_info(f"dserver/{server}").pid

    def processes_left(self) -> list[int]:
        """Processes of this machine that run on this lab's TANGO_HOST (Starter's children are in
        sessions of their own, re-parented: their environment is how to find them)."""
        mine = f"TANGO_HOST={self.tango_host}".encode()
        found = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and int(proc.name) != os.getpid():
                try:
                    if mine in proc.joinpath("environ").read_bytes().split(b"\0"):
                        found.append(int(proc.name))
                except OSError:
                    continue
        return found

    def stop(self) -> None:
        for name in reversed(list(self.popen)):  # the Starter before the database
            terminate(self.popen[name].pid)
        for pid in self.processes_left():
            _kill(pid, signal.SIGKILL)
        wait_until(lambda: not self.processes_left(), 10, what="every process of the test lab gone")


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _is_alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StarterLab]:
    config = LabConfig.load().with_free_ports()
    cryocon = next(sim for sim in config.simulators if sim.kind == "cryocon")
    lab = StarterLab(tmp_path_factory.mktemp("starter"))
    try:
        with run_in_thread(SIMULATORS["cryocon"](seed=1), port=cryocon.port):
            port = lab.tango_host.split(":")[1]
            lab.spawn(
                "database",
                [sys.executable, "-m", DATABASE_SERVER, "--host", "127.0.0.1", "--port", port, "2"],
            )
            wait_until(lambda: lab.database().get_device_exported("*") is not None, 30, what="the database")
            apply_config(prepare_config(_lab_servers(config)), lab.database(), write=True)
            register_servers(
                lab.database(),
                [(server, lab.host, level) for server, level in LEVELS.items()],
                str(Path(sys.executable).parent),
                log_home=str(lab.log_home),
            )
            lab.spawn("starter", [STARTER_EXECUTABLE, lab.host])
            lab.starter = StarterClient(lab.host, lab.tango_host)
            wait_until(lab.starter.ping, 30, what=f"Starter {lab.starter.device}")
            yield lab
    finally:
        lab.stop()
    assert not lab.processes_left()


def test_starter_lists_the_registered_servers_as_controlled_and_stopped(lab: StarterLab) -> None:
    servers = wait_until(lambda: LEVELS.keys() <= lab.starter.servers().keys() and lab.starter.servers(), 10)
    for name, level in LEVELS.items():
        assert servers[name].controlled and servers[name].level == level
    assert set(LEVELS) <= set(lab.starter.stopped())


def test_a_server_started_through_starter_answers_and_is_listed_running(lab: StarterLab) -> None:
    lab.starter.start(CRYOCON)
    lab.starter.wait_running(CRYOCON, timeout=60)
    assert CRYOCON in lab.starter.running()
    device = tango.DeviceProxy(f"tango://{lab.tango_host}/lab/cryocon/1")
    wait_until(lambda: device.state() == tango.DevState.ON, 30, what="lab/cryocon/1 ON with its simulator")
    assert -300 < device.read_attribute("temperatureA").value < 500
    pid = lab.server_pid(CRYOCON)
    # Starter's children work in its log folder: a relative path in a property lands there
    assert Path(f"/proc/{pid}/cwd").resolve() == lab.log_home / "ds.log"
    command_line = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert command_line[1:3] == [
        str(Path(sys.executable).parent / "TemperatureController").encode(),
        INSTANCE.encode(),
    ]


def test_starting_a_running_server_again_is_refused_with_the_reason(lab: StarterLab) -> None:
    lab.starter.wait_running(CRYOCON, timeout=60)
    with pytest.raises(StarterError, match="already running") as refused:
        lab.starter.start(CRYOCON)
    assert refused.value.reason == "ALREADY_RUNNING"


def test_a_server_killed_with_sigkill_leaves_running_and_is_not_restarted_by_default(lab: StarterLab) -> None:
    lab.starter.wait_running(CRYOCON, timeout=60)
    pid = lab.server_pid(CRYOCON)
    os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: lab.starter.servers()[CRYOCON].state == "FAULT", 15, what="Starter sees the server dead"
    )
    assert CRYOCON in lab.starter.stopped() and CRYOCON not in lab.starter.running()

    # MOVING while its start-up check of the server (4 s and more after the start) is still on
    def settled() -> str | None:
        state, status = lab.starter.state()
        return status if state in ("ALARM", "OFF") else None

    assert "not running" in wait_until(settled, 30, what="Starter ALARM or OFF")
    time.sleep(3)  # AutoRestartDuration 0: Starter leaves it dead (it looks every 2 s)
    assert lab.starter.servers()[CRYOCON].state == "FAULT"


def test_a_start_right_after_a_crash_is_not_lost_while_starter_still_sees_the_old_process(
    lab: StarterLab,
) -> None:
    lab.starter.restart(CRYOCON, timeout=60)
    pid = lab.server_pid(CRYOCON)
    os.kill(pid, signal.SIGKILL)  # Starter still says ON for up to 2 s, then its list shows a zombie
    lab.starter.start(CRYOCON)
    lab.starter.wait_running(CRYOCON, timeout=60)
    assert lab.server_pid(CRYOCON) != pid


def test_a_server_stopped_through_starter_is_gone(lab: StarterLab) -> None:
    lab.starter.restart(CRYOCON, timeout=60)
    pid = lab.server_pid(CRYOCON)
    lab.starter.stop(CRYOCON)
    lab.starter.wait_stopped(CRYOCON, timeout=30)
    wait_until(lambda: not _is_alive(pid), 10, what="the stopped server's process gone")


def test_a_server_stopped_before_starter_saw_it_running_is_stopped_all_the_same(lab: StarterLab) -> None:
    lab.starter.wait_stopped(CRYOCON, timeout=30)
    lab.starter.start(CRYOCON)
    admin = tango.DeviceProxy(f"tango://{lab.tango_host}/dserver/{CRYOCON}")
    wait_until(admin.ping, 60, what="the server's admin device")  # Starter sees it up to 2 s later
    pid = lab.server_pid(CRYOCON)
    lab.starter.stop(CRYOCON)
    wait_until(lambda: not _is_alive(pid), 10, what="the server's process gone")
    lab.starter.wait_stopped(CRYOCON, timeout=30)


def test_a_hung_server_is_reported_not_answering_and_stop_kills_it(lab: StarterLab) -> None:
    """Starter never restarts a hung server and its DevStop refuses one; StarterClient.stop kills it."""
    lab.starter.start(CRYOCON)
    lab.starter.wait_running(CRYOCON, timeout=60)
    pid = lab.server_pid(CRYOCON)
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: lab.starter.servers()[CRYOCON].state == "MOVING", 60, what="Starter sees it hung")
        assert CRYOCON not in lab.starter.running()
        lab.starter.stop(CRYOCON)
        lab.starter.wait_stopped(CRYOCON, timeout=30)
        wait_until(lambda: not _is_alive(pid), 10, what="the hung server's process gone")
    finally:
        _kill(pid, signal.SIGCONT)


def test_a_level_starts_and_stops_its_servers_only(lab: StarterLab) -> None:
    lab.starter.wait_stopped(CRYOCON, timeout=30)
    lab.starter.start_level(1)
    lab.starter.wait_running(RELAY, timeout=60)
    assert lab.starter.servers()[CRYOCON].state == "FAULT"
    tango.DeviceProxy(f"tango://{lab.tango_host}/lab/relay/1").ping()
    lab.starter.stop_level(1)
    lab.starter.wait_stopped(RELAY, timeout=30)


def test_server_logs_are_under_the_log_home_and_readable_through_starter(lab: StarterLab) -> None:
    log = starter_log(lab.folder, CRYOCON)  # the lab's log home is <run dir>/log
    assert log == lab.log_home / "ds.log" / f"TemperatureController_{INSTANCE}.log" and log.exists()
    assert str(log) in lab.starter.read_log(CRYOCON)
    # Starter writes "<server> started" only when it sees the server answer 4 s or more after
    # launching it; these tests stop servers sooner. Its log folder must exist when it starts.
    record = lab.starter.starter_log()
    assert "Starter startup" in record and f"{CRYOCON} stopped" in record


def test_unknown_executable_is_refused_naming_the_path_searched(lab: StarterLab) -> None:
    with pytest.raises(StarterError, match="not found in 'StartDsPath'"):
        lab.starter.start("NoSuchServer/x")


def test_a_host_without_a_starter_gives_a_clear_error(lab: StarterLab) -> None:
    with pytest.raises(StarterError, match="is `/usr/lib/tango/Starter nohost` running") as failed:
        StarterClient("nohost", lab.tango_host, timeout=1.0).running()
    assert failed.value.reason == "UNREACHABLE"


def test_registering_a_server_not_in_the_database_says_to_apply_the_lab_file(lab: StarterLab) -> None:
    with pytest.raises(StarterError, match="apply the lab file"):
        register_servers(lab.database(), [("Ghost/x", lab.host, 1)], "/nowhere")


def test_starter_restarts_a_dead_server_only_if_it_had_run_longer_than_auto_restart_duration(
    lab: StarterLab,
) -> None:
    """Starter's one restart rule, seen in seconds: with DEBUG=true in its environment Starter
    counts AutoRestartDuration in seconds instead of minutes (this test runs last: it replaces
    the module's Starter by one in that mode)."""
    threshold, server = 10, RELAY
    terminate(lab.popen.pop("starter").pid)
    register_servers(  # again, while the Starter is down
        lab.database(),
        [(server, lab.host, level) for server, level in LEVELS.items()],
        str(Path(sys.executable).parent),
        log_home=str(lab.log_home),
        auto_restart_minutes=threshold,
    )
    lab.spawn("debug-starter", [STARTER_EXECUTABLE, lab.host], DEBUG="true")
    starter = lab.starter
    wait_until(starter.ping, 30, what=f"Starter {starter.device} in debug mode")
    starter.wait_stopped(server, timeout=30)

    starter.start(server)
    starter.wait_running(server, timeout=60)
    os.kill(lab.server_pid(server), signal.SIGKILL)  # dies young (as in a crash loop): left dead
    wait_until(lambda: starter.servers()[server].state == "FAULT", 15, what="Starter sees the server dead")
    time.sleep(3)
    assert starter.servers()[server].state == "FAULT"

    starter.start(server)
    starter.wait_running(server, timeout=60)
    pid = lab.server_pid(server)
    # Starter counts the run from when it sees the server running (a loaded run from before the
    # start logged "Has run 10 sec. (> 10 ?)" and left it dead)
    time.sleep(threshold + 2)
    os.kill(pid, signal.SIGKILL)  # had run longer than the threshold: started again
    wait_until(lambda: lab.server_pid(server) not in (0, pid), 30, what="the server started again by Starter")
    starter.wait_running(server, timeout=60)
    starter.stop(server)
    starter.wait_stopped(server, timeout=30)
