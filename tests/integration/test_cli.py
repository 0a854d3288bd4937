"""`tangolab up`, `status` and `down` as a user types them, and the mistakes a user makes: a second
`up` in the same folder, a lost state file, a server restarted by hand, a misspelled server."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tangolab.lab_config import LabConfig, free_port
from tangolab.launcher import STATE_FILE
from tangolab.processes import lab_processes, terminate
from tangolab.scripting import wait_until
from tests.conftest import shared_lab
from tests.wire import Wire

TANGOLAB = [sys.executable, "-m", "tangolab"]


def tangolab(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*TANGOLAB, *args], check=False, capture_output=True, text=True, timeout=timeout)


def lab_file(folder: Path) -> Path:
    path = folder / "lab.json"
    path.write_text(json.dumps(shared_lab().with_free_ports().data))
    return path


def small_lab_file(folder: Path) -> Path:
    """The relay and the cryocon with its simulator: a whole lab all the same, up sooner."""
    data = LabConfig.load().with_free_ports().data
    data["servers"] = {name: data["servers"][name] for name in ("Relay", "TemperatureController")}
    tangolab = data["tangolab"]
    tangolab["simulators"] = {"cryocon": tangolab["simulators"]["cryocon"]}
    tangolab["levels"] = {"Relay/lab": 1}
    tangolab.pop("web", None)  # no web monitor, no alarm rules: nothing the relay and cryocon do not need
    tangolab.pop("alarms", None)
    path = folder / "small-lab.json"
    path.write_text(json.dumps(data))
    return path


def up(run_dir: Path, host: str, config: Path) -> subprocess.CompletedProcess:
    return tangolab("up", "--detach", "--config", str(config), "--tango-host", host, "--run-dir", str(run_dir))


def kill_everything_of(run_dir: Path) -> None:
    """Whatever a test did, nothing of its lab stays behind."""
    for process in lab_processes(run_dir):
        terminate(process.pid, timeout=5, sig=signal.SIGKILL)


@pytest.fixture(scope="module")
def detached(tmp_path_factory):
    """A lab a user brought up with `tangolab up --detach`: (run folder, TANGO_HOST, the up's output)."""
    folder = tmp_path_factory.mktemp("detached")
    run_dir, host = folder / "var", f"127.0.0.1:{free_port()}"
    started = up(run_dir, host, lab_file(folder))
    try:
        assert started.returncode == 0, started.stderr
        yield run_dir, host, started
    finally:
        tangolab("down", "--run-dir", str(run_dir))
        kill_everything_of(run_dir)


def test_up_prints_the_devices_and_status_the_programs(detached):
    run_dir, host, started = detached
    assert "lab/cryocon/1" in started.stdout and "TemperatureController" in started.stdout
    assert f"export TANGO_HOST={host}" in started.stdout
    status = tangolab("status", "--run-dir", str(run_dir))
    assert status.returncode == 0, status.stderr
    assert "lab/cryocon/1" in status.stdout and any(s in status.stdout for s in ("ON", "RUNNING"))
    assert "TemperatureController/lab" in status.stdout and "simulator/cryocon" in status.stdout
    assert "running" in status.stdout


def test_status_keeps_cells_short_and_says_below_why_a_device_does_not_answer(detached):
    run_dir, host, _ = detached
    assert tangolab("call", "--tango-host", host, "supervisor", "Kill", "Chiller/lab").returncode == 0
    try:
        status = tangolab("status", "--run-dir", str(run_dir))
    finally:
        assert tangolab("call", "--tango-host", host, "supervisor", "Start", "Chiller/lab").returncode == 0
    table = status.stdout.split("\n\n")[0].splitlines()
    assert max(len(line) for line in table) < 100, status.stdout
    chiller = next(line for line in table if line.startswith("lab/chiller/1 "))
    assert chiller.split()[2:4] == ["no", "answer"], chiller
    why = status.stdout.split("\n\n")[1]  # below the table, in full
    assert why.startswith("lab/chiller/1: ") and "connect" in why.lower(), status.stdout
    wait_until(lambda: tangolab("get", "--tango-host", host, "chiller/1/State").returncode == 0, 60,
               what="the chiller back")


def test_status_shows_each_simulators_port_and_control_port(detached):
    run_dir, _, _ = detached
    status = tangolab("status", "--run-dir", str(run_dir))
    row = next(line for line in status.stdout.splitlines() if line.startswith("simulator/cryocon "))
    port, control = re.search(r" (\d+), control (\d+)$", row).groups()
    config = json.loads((run_dir.parent / "lab.json").read_text())
    assert int(port) == config["tangolab"]["simulators"]["cryocon"]["port"]
    with Wire(int(control)) as wire:  # a user injecting a fault needs no log to find it
        assert wire.ask(b"status\n").startswith(b"delay=0 garbage=off offline=off")


def test_the_lab_is_heard_on_the_network(detached):
    _, host, _ = detached
    heard = tangolab("discover", "--all", "--timeout", "5")
    assert heard.returncode == 0, heard.stderr
    assert any(line.startswith(f"{host}\ttangolab demo lab\t") for line in heard.stdout.splitlines()), heard.stdout


def test_second_up_in_the_same_folder_is_refused_and_changes_nothing(detached, tmp_path):
    run_dir, host, _ = detached
    before = {p.pid for p in lab_processes(run_dir)}
    state = (run_dir / STATE_FILE).read_text()
    logs = {log.name: log.stat().st_size for log in (run_dir / "log").iterdir()}
    other = f"127.0.0.1:{free_port()}"  # as the user tried: the same folder, another TANGO_HOST
    second = up(run_dir, other, lab_file(tmp_path))
    assert second.returncode == 1
    assert "already up" in second.stderr and str(run_dir) in second.stderr and host in second.stderr, second.stderr
    assert {p.pid for p in lab_processes(run_dir)} == before
    assert (run_dir / STATE_FILE).read_text() == state
    assert all((run_dir / "log" / name).stat().st_size >= size for name, size in logs.items()), "a log was truncated"
    named = re.findall(r"`([^`]+)`", second.stderr)  # the commands it names work as given, from here
    status = next(command for command in named if " status" in command)
    shown = subprocess.run(status, shell=True, capture_output=True, text=True, timeout=180, check=False)
    assert shown.returncode == 0 and "lab/cryocon/1" in shown.stdout, (status, shown.stderr)
    assert any(" down" in command and str(run_dir) in command for command in named), second.stderr


def test_a_lab_on_the_loopback_listens_only_on_the_loopback(detached):
    run_dir, host, _ = detached
    subscribe = ("import tango, time; p = tango.DeviceProxy('lab/cryocon/1'); "
                 "p.subscribe_event('temperatureA', tango.EventType.CHANGE_EVENT, lambda e: None); time.sleep(1)")
    subscriber = subprocess.run(  # events open each server's event sockets: those must stay local too
        [sys.executable, "-c", subscribe], env=dict(os.environ, TANGO_HOST=host), capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert subscriber.returncode == 0, subscriber.stderr
    pids = {p.pid for p in lab_processes(run_dir) if p.name != "watchdog"}  # the watchdog has no socket at all
    listening = listening_sockets(pids)
    assert len({pid for pid, _ in listening}) == len(pids), "every process of the lab listens somewhere"
    assert not [(pid, address) for pid, address in listening if not address.startswith("127.")], listening


def listening_sockets(pids: set[int]) -> list[tuple[int, str]]:
    """(pid, local address) of every listening TCP socket of these processes, from /proc."""
    owners = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                owners[target[8:-1]] = pid
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in owners:  # LISTEN
                found.append((owners[fields[9]], _address(fields[1].split(":")[0], width)))
    return found


def _address(hexadecimal: str, width: int) -> str:
    raw = bytes.fromhex(hexadecimal)
    if width == 8:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    text = socket.inet_ntop(socket.AF_INET6, words)
    return text.removeprefix("::ffff:") if text.startswith("::ffff:") else text


def test_down_finds_the_lab_without_its_state_file_and_stops_a_server_restarted_by_hand(tmp_path):
    run_dir, host = tmp_path / "var", f"127.0.0.1:{free_port()}"
    config = lab_file(tmp_path)
    try:
        assert up(run_dir, host, config).returncode == 0
        (run_dir / STATE_FILE).unlink()
        status = tangolab("status", "--run-dir", str(run_dir))
        assert status.returncode == 0 and "lab/cryocon/1" in status.stdout, status.stderr

        # the user stops the chiller's server and starts it again by hand in a shell
        stop = tangolab("call", "--tango-host", host, "supervisor", "Stop", "Chiller/lab")
        assert stop.returncode == 0, stop.stderr
        by_hand = subprocess.Popen([str(Path(sys.executable).parent / "Chiller"), "lab"],
                                   env=dict(os.environ, TANGO_HOST=host), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: tangolab("get", "--tango-host", host, "chiller/1/State").returncode == 0, 60,
                   what="the chiller started by hand")

        down = tangolab("down", "--tango-host", host)  # by its TANGO_HOST, as `up` took it
        assert down.returncode == 0, down.stderr
        assert "nothing of it runs" in down.stdout
        assert by_hand.wait(timeout=30) is not None, "down left the server started by hand running"
        assert not lab_processes(run_dir)

        again = up(run_dir, host, config)  # the same folder again: the logs of the first run are kept
        assert again.returncode == 0, again.stderr
        log = (run_dir / "log" / "TemperatureController-lab.log").read_text()
        assert log.count("----- ") == 2, log[:2000]
        assert tangolab("down", "--run-dir", str(run_dir)).returncode == 0
    finally:
        kill_everything_of(run_dir)


def test_a_misspelled_server_is_named_with_what_exists(tmp_path):
    data = LabConfig.load().with_free_ports().data
    data["servers"]["TemperatureControler"] = data["servers"].pop("TemperatureController")
    (tmp_path / "lab.json").write_text(json.dumps(data))
    result = up(tmp_path / "var", f"127.0.0.1:{free_port()}", tmp_path / "lab.json")
    assert result.returncode == 1
    assert "TemperatureControler" in result.stderr and "did you mean 'TemperatureController'" in result.stderr
    assert "pip install" not in result.stderr
    assert not lab_processes((tmp_path / "var").resolve())


def test_tango_host_port_in_use_is_reported_with_a_way_out(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = up(tmp_path / "var", f"127.0.0.1:{port}", lab_file(tmp_path))
    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "already in use" in result.stderr and "--tango-host" in result.stderr


def test_status_without_a_lab_says_so(tmp_path):
    result = tangolab("status", "--run-dir", str(tmp_path))
    assert result.returncode == 1
    assert "no lab is up" in result.stderr


def foreground(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """`tangolab up` in the foreground, its output a pipe, once it says how to stop the lab."""
    run_dir = (tmp_path / "var").resolve()
    process = subprocess.Popen(
        [*TANGOLAB, "up", "--config", str(small_lab_file(tmp_path)), "--tango-host", f"127.0.0.1:{free_port()}",
         "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        for line in process.stdout:  # ends if `up` fails: its output closes
            if "Ctrl-C stops the lab" in line:
                break
        assert process.poll() is None, "the lab did not come up"
        assert {p.name for p in lab_processes(run_dir)} >= {"database", "watchdog", "Relay/lab", "simulator/cryocon"}
    except BaseException:
        process.kill()
        stopped_everything(process, run_dir)
        raise
    return process, run_dir


def stopped_everything(process: subprocess.Popen, run_dir: Path) -> list:
    """Wait for the foreground `up` to end; what of its lab is left (then stopped by PID)."""
    try:
        process.wait(timeout=180)  # stopping a lab's programs one by one, beside other busy labs
    finally:
        if process.poll() is None:
            process.kill()
        leftovers = lab_processes(run_dir)
        kill_everything_of(run_dir)
    return leftovers


def test_foreground_lab_stops_everything_on_sigterm_and_its_supervisor_is_restarted_meanwhile(tmp_path):
    process, run_dir = foreground(tmp_path)
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()

    def supervisors() -> list[int]:
        return [p.pid for p in lab_processes(run_dir) if p.name.startswith("Supervisor/")]

    first = supervisors()
    os.kill(first[0], signal.SIGKILL)  # its watchdog restarts it
    wait_until(lambda: supervisors() and supervisors() != first, 60, what="the supervisor started again")
    process.send_signal(signal.SIGTERM)
    assert not stopped_everything(process, run_dir), "SIGTERM left lab processes running"
    assert process.returncode == 0, "".join(output)


def test_foreground_lab_stops_everything_when_its_terminal_hangs_up(tmp_path):
    process, run_dir = foreground(tmp_path)
    threading.Thread(target=lambda: process.stdout.read(), daemon=True).start()
    process.send_signal(signal.SIGHUP)
    assert not stopped_everything(process, run_dir), "SIGHUP left lab processes running"
    assert process.returncode == 0


def test_foreground_lab_whose_output_closed_stops_everything_on_ctrl_c(tmp_path):
    """`tangolab up | tee lab.log` ended with Ctrl-C: tee goes first, the lab's messages meet a closed pipe."""
    process, run_dir = foreground(tmp_path)
    process.stdout.close()
    process.send_signal(signal.SIGINT)
    assert not stopped_everything(process, run_dir), "the lab was left running"
    assert process.returncode == 0
