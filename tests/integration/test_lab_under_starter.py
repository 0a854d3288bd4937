"""The demo lab with its device servers run by Debian's Tango Starter (`tangolab up --starter`), the
supervisor watching and restarting them through Starter's commands."""

from __future__ import annotations

import os
import signal

import pytest

from tangolab.lab_config import LabConfig
from tangolab.launcher import host_name
from tangolab.processes import lab_log
from tangolab.scripting import ConditionTimeout, wait_until
from tangolab.starter import STARTER_EXECUTABLE, StarterClient
from tests.conftest import run_lab, shared_lab

pytestmark = pytest.mark.skipif(not os.access(STARTER_EXECUTABLE, os.X_OK),
                                reason=f"Tango's Starter is not installed ({STARTER_EXECUTABLE})")

INSTANCE = f"st{os.getpid()}"  # Starter knows servers by name and instance host-wide: not another lab's "lab"
CRYOCON = f"TemperatureController/{INSTANCE}"


def renamed(config: LabConfig, instance: str) -> LabConfig:
    """The same lab with every server's instance renamed."""
    data = config.data
    data["servers"] = {executable: {instance: next(iter(instances.values()))}  # one instance each
                       for executable, instances in data["servers"].items()}
    tangolab = data["tangolab"]
    tangolab["levels"] = {f"{name.split('/')[0]}/{instance}": level for name, level in tangolab["levels"].items()}
    return LabConfig(data)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    config = renamed(shared_lab().with_free_ports(), INSTANCE)
    with run_lab(config, tmp_path_factory.mktemp("starter"), use_starter=True) as lab:
        yield lab


def test_starter_runs_every_server_of_the_lab(lab):
    starter = StarterClient(host_name(), lab.tango_host)
    servers = {server.name for server in lab.config.servers}
    wait_until(lambda: servers <= set(starter.running()), 30, what="Starter listing every server running")
    assert " started" in starter.starter_log()  # Starter keeps only its latest lines
    for device in lab.config.devices:
        assert lab.proxy(device.name).ping()
    # Starter runs servers in its log folder: the archive is still the run folder's, where `history` looks
    wait_until(lambda: (lab.run_dir / "archive.db").exists(), 30, what="the archive in the run folder")


def test_a_killed_server_is_restarted_through_starter(lab):
    pid = lab.pid(CRYOCON)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: lab.pid(CRYOCON) not in (0, pid), 90, what="the server started again by Starter")
    lab.wait_device("lab/cryocon/1")
    assert any(CRYOCON in line and "killed by SIGKILL" not in line and "exited" in line
               for line in lab_log(lab.run_dir).read_text().splitlines())
    starter = StarterClient(host_name(), lab.tango_host)
    wait_until(lambda: CRYOCON in starter.running(), 30, what="Starter listing it running again")


def test_a_killed_supervisor_is_restarted_by_its_watchdog_and_restarts_servers_through_starter(lab):
    old = lab.own_pids()["supervisor"]
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: lab.own_pids().get("supervisor", old) != old, 60, what="a new supervisor")
    def unwatched() -> list[str]:
        return [f"{p['name']} {p['phase']}" for p in lab.programs() if p["phase"] != "running"]

    try:
        wait_until(lambda: not unwatched(), 60, what="every program watched again")
    except ConditionTimeout:
        raise AssertionError(f"not watched again after 60 s: {unwatched()}; the lab log says:\n"
                             + "\n".join(lab_log(lab.run_dir).read_text().splitlines()[-40:])) from None
    pid = lab.pid(CRYOCON)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: lab.pid(CRYOCON) not in (0, pid), 90, what="the server started again through Starter")
    lab.wait_device("lab/cryocon/1")
