"""The shared simulator machinery: the control port, the test thread, `python -m simulators`."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from device_servers.core.framing import FixedLength
from simulators import CryoConSimulator, Running, Simulator, run_in_thread

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served() -> Iterator[Running]:
    with run_in_thread(CryoConSimulator(seed=1)) as running:
        yield running


class Lines:
    """A line-per-line TCP conversation."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.file = self.socket.makefile("rb")

    def ask(self, line: str) -> str:
        self.socket.sendall(line.encode() + b"\n")
        return self.file.readline().decode().rstrip("\r\n")

    def hung_up(self) -> bool:
        """Whether the other end closes this connection (reading till then)."""
        try:
            return self.file.read() == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.file.close()
        self.socket.close()


@pytest.fixture
def control(served: Running) -> Iterator[Lines]:
    lines = Lines(served.control_port)
    yield lines
    lines.close()


def test_control_port_sets_and_clears_faults(served, control):
    sim = served.simulator
    assert control.ask("status") == "delay=0 garbage=off offline=off frozen=none faults=none"
    assert control.ask("delay 0.25") == "OK"
    assert control.ask("garbage on") == "OK"
    assert control.ask("freeze b on") == "OK"
    assert control.ask("truncate on") == "OK"
    assert (sim.delay, sim.garbage, set(sim.frozen), sim.faults) == (0.25, True, {"B"}, {"truncate"})
    assert control.ask("status") == "delay=0.25 garbage=on offline=off frozen=B faults=truncate"

    assert control.ask("clear") == "OK"
    assert (sim.delay, sim.garbage, sim.frozen, sim.faults) == (0.0, False, {}, set())


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("explode", "ERROR unknown command 'explode'"),
        ("freeze Z on", "ERROR no reading 'Z'; readings are A, B, C, D"),
        ("garbage maybe", "ERROR expected on or off, not 'maybe'"),
        ("delay -1", "ERROR delay must be 0 or more seconds"),
        ("delay", "ERROR wrong arguments for delay"),
        ("checksum on", "ERROR the cryocon simulator has no checksum fault"),
    ],
)
def test_control_port_says_what_is_wrong(control, command, error):
    assert control.ask(command).startswith(error)


def test_control_port_help_lists_the_commands_and_readings(control):
    assert control.ask("help") == (
        "commands: drop | offline on|off | delay SECONDS | garbage on|off | checksum on|off | "
        "truncate on|off | address on|off | freeze NAME on|off (names: A, B, C, D) | clear | status | help"
    )


def test_a_truncated_reply_is_cut_in_half_and_the_rest_never_comes(served, control):
    instrument = socket.create_connection(("127.0.0.1", served.port), timeout=5)
    try:
        assert control.ask("truncate on") == "OK"
        instrument.sendall(b"*IDN?\n")
        assert instrument.recv(100) == b"Cryo-con,24C,"  # half of 'Cryo-con,24C,204683,1.01A\r\n'
        instrument.settimeout(0.3)
        with pytest.raises(TimeoutError):
            instrument.recv(100)
    finally:
        instrument.close()


class Doubler(Simulator):
    """A made-up binary instrument: 3-byte frames (address, value, checksum), replies the value
    doubled; it reports every tenth of a second with an unasked frame."""

    kind = "doubler"
    framing = FixedLength(3)

    def handle(self, frame: bytes) -> bytes:
        self.received.append(frame)
        return self.frame(frame[0], frame[1] * 2 % 256)

    @staticmethod
    def frame(address: int, value: int) -> bytes:
        return bytes([address, value, (address + value) % 256])

    def spoil(self, fault: str, reply: bytes) -> bytes:
        if fault == "checksum":
            return reply[:2] + bytes([reply[2] ^ 0xFF])
        if fault == "address":
            return bytes([reply[0] + 1]) + reply[1:]
        return super().spoil(fault, reply)


def test_a_binary_simulator_frames_requests_split_on_the_wire_and_spoils_replies():
    with run_in_thread(Doubler()) as running:
        instrument = socket.create_connection(("127.0.0.1", running.port), timeout=5)
        try:
            instrument.sendall(b"\x07\x15")
            instrument.sendall(b"\x1c" + b"\x07\x01\x08")  # the end of one frame and a whole one
            assert _receive(instrument, 6) == b"\x07\x2a\x31" + b"\x07\x02\x09"
            assert running.simulator.received == [b"\x07\x15\x1c", b"\x07\x01\x08"]

            running.simulator.faults.update({"checksum", "address"})
            instrument.sendall(b"\x07\x15\x1c")
            assert _receive(instrument, 3) == b"\x08\x2a\xce"

            running.simulator.clear()
            running.simulator.send_unasked(b"\x07\xee\xf5")  # from the test's thread
            assert _receive(instrument, 3) == b"\x07\xee\xf5"
        finally:
            instrument.close()


def _receive(connection: socket.socket, length: int) -> bytes:
    data = b""
    while len(data) < length:
        chunk = connection.recv(length - len(data))
        assert chunk, "the simulator hung up"
        data += chunk
    return data


def test_drop_closes_the_instrument_connections_only(served, control):
    instrument = Lines(served.port)
    try:
        assert instrument.ask("*IDN?") == "Cryo-con,24C,204683,1.01A"
        assert control.ask("drop") == "OK"
        assert instrument.hung_up()
    finally:
        instrument.close()
    assert control.ask("status").startswith("delay=0")  # the control line is still there


def test_offline_refuses_connections_until_back(served, control):
    assert control.ask("offline on") == "OK"
    refused = Lines(served.port)
    try:
        refused.socket.sendall(b"*IDN?\n")
        assert refused.hung_up()
    finally:
        refused.close()

    assert control.ask("offline off") == "OK"
    instrument = Lines(served.port)
    try:
        assert instrument.ask("*IDN?") == "Cryo-con,24C,204683,1.01A"
    finally:
        instrument.close()


def test_run_in_thread_stops_the_thread_and_frees_the_ports():
    with run_in_thread(CryoConSimulator()) as running:
        connection = Lines(running.port)
        assert connection.ask("*IDN?") == "Cryo-con,24C,204683,1.01A"
    try:
        assert connection.hung_up()  # the simulator closed the connection it still had
    finally:
        connection.close()

    assert not [thread for thread in threading.enumerate() if thread.name == "cryocon-simulator"]
    for port in (running.port, running.control_port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)


def test_run_in_thread_reports_a_port_in_use():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(OSError), run_in_thread(CryoConSimulator(), port=port):
            pass


def test_command_line_prints_one_line_serves_and_exits_cleanly_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators", "cryocon", "--port", "0", "--seed", "1", "--speed", "10"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = process.stdout.readline().decode()
        match = re.fullmatch(
            r"cryocon simulator listening on 127\.0\.0\.1:(\d+) control 127\.0\.0\.1:(\d+)\n", line
        )
        assert match, f"first line {line!r}; stderr {process.stderr.read().decode() if not line else ''!r}"
        instrument, control = Lines(int(match.group(1))), Lines(int(match.group(2)))
        try:
            assert instrument.ask("*IDN?") == "Cryo-con,24C,204683,1.01A"
            assert control.ask("status").startswith("delay=0")
        finally:
            instrument.close()
            control.close()

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stdout.read() == b""  # exactly one line
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
