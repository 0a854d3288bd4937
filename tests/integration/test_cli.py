"""`tangolab up --detach`, `status` and `down` as a user types them, and the errors a user meets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tangolab.lab_config import LabConfig, free_port
from tangolab.launcher import STATE_FILE
from tangolab.scripting import wait_until

TANGOLAB = [sys.executable, "-m", "tangolab"]


def tangolab(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*TANGOLAB, *args], check=False, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def lab_file(tmp_path: Path) -> Path:
    path = tmp_path / "lab.json"
    path.write_text(json.dumps(LabConfig.load().with_free_ports().data))
    return path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0


def test_up_detached_then_status_then_down_leaves_nothing_running(tmp_path, lab_file):
    run_dir = tmp_path / "var"
    host = f"127.0.0.1:{free_port()}"
    up = tangolab("up", "--detach", "--config", str(lab_file), "--tango-host", host, "--run-dir", str(run_dir))
    state = run_dir / STATE_FILE
    pids = [p["pid"] for p in json.loads(state.read_text())["processes"].values()] if state.exists() else []
    try:
        assert up.returncode == 0, up.stderr
        assert "lab/cryocon/1" in up.stdout and "TemperatureController" in up.stdout
        assert f"export TANGO_HOST={host}" in up.stdout
        assert (run_dir / "log" / "TemperatureController-lab.log").exists()
        assert (run_dir / "log" / "simulator-cryocon.log").exists()

        status = tangolab("status", "--run-dir", str(run_dir))
        assert status.returncode == 0, status.stderr
        assert "lab/cryocon/1" in status.stdout
        assert any(s in status.stdout for s in ("ON", "RUNNING")), status.stdout
    finally:
        down = tangolab("down", "--run-dir", str(run_dir))
        for pid in pids:  # whatever happened above, nothing of this test stays behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert down.returncode == 0, down.stderr
    config = LabConfig.load(lab_file)
    assert len(pids) == 1 + len(config.simulators) + len(config.servers)  # the database, and the rest
    assert not [pid for pid in pids if alive(pid)], "tangolab down left processes running"
    assert not state.exists()


def test_tango_host_port_in_use_is_reported_with_a_way_out(tmp_path, lab_file):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        up = tangolab("up", "--detach", "--config", str(lab_file), "--tango-host", f"127.0.0.1:{port}",
                      "--run-dir", str(tmp_path / "var"), timeout=60)
    assert up.returncode == 1
    assert f"port {port}" in up.stderr and "already in use" in up.stderr and "--tango-host" in up.stderr


def test_status_without_a_lab_says_so(tmp_path):
    result = tangolab("status", "--run-dir", str(tmp_path))
    assert result.returncode == 1
    assert "no lab is up" in result.stderr


def test_foreground_lab_stops_everything_on_sigterm(tmp_path, lab_file):
    run_dir = tmp_path / "var"
    process = subprocess.Popen(
        [*TANGOLAB, "up", "--config", str(lab_file), "--tango-host", f"127.0.0.1:{free_port()}",
         "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()
    state, pids = run_dir / STATE_FILE, []
    try:
        wait_until(lambda: any("Ctrl-C stops the lab" in line for line in output), 180, what="the lab up")
        pids = [p["pid"] for p in json.loads(state.read_text())["processes"].values()]
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the launcher stops what it started
            process.wait(timeout=60)
        if state.exists():  # whatever happened, nothing of this test stays behind
            pids = pids or [p["pid"] for p in json.loads(state.read_text())["processes"].values()]
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert process.returncode == 0
    assert not [pid for pid in pids if alive(pid)], "SIGTERM left lab processes running"


def test_a_server_dying_at_start_up_is_named_with_its_log_and_nothing_stays(tmp_path):
    from tangolab.launcher import Lab, LabError

    data = LabConfig.load().with_free_ports().data
    data["tangolab"]["commands"] = {"TemperatureController": [sys.executable, "-c", "raise SystemExit('no hardware')"]}
    lab = Lab(LabConfig(data), tmp_path, f"127.0.0.1:{free_port()}")
    with pytest.raises(LabError) as failure:
        lab.start(timeout=60)
    message = str(failure.value)
    assert "TemperatureController-lab exited at start-up" in message and "no hardware" in message
    assert str(tmp_path / "log" / "TemperatureController-lab.log") in message
    assert not [p.name for p in lab.processes.values() if p.is_alive()]
