"""The GpibBus device in a DeviceTestContext, in front of the Prologix simulator.

Clients reach the instruments as drivers do, through `gpib://` links from the test process
(and, for the soak test, from a process of their own). The instruments are a test double: a
meter that echoes what it is asked (`ECHO x` → `<address>:x`) so a reply crossed between
clients would show, and answers `SLOW?` after 1.5 s; and a waveform memory (simulators/gpib.py)
that stores and returns IEEE 488.2 binary blocks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.core.errors import LinkError
from device_servers.core.framing import BlockLines, Lines, block_data, definite_length_block
from device_servers.core.link import Link, link_for_url
from device_servers.gpib.device import GpibBus
from simulators import run_in_thread
from simulators.gpib import GpibInstrument, WaveformMemory
from simulators.prologix import PrologixSimulator
from tangolab.scripting import wait_until

ADDRESSES = (14, 15, 16)
MEMORY = 17
#: Seconds of the crossed-replies soak test; the issue's acceptance run uses 60.
SOAK_S = float(os.environ.get("TANGOLAB_GPIB_SOAK_S", "10"))


class Meter(GpibInstrument):
    """A test double of a GPIB meter: `*IDN?`, `READ?` after 20 ms, `ECHO x`, `SLOW?` after 1.5 s."""

    model = "test meter"

    def handle(self, message: str) -> str | None:
        if message == "*IDN?":
            return f"TEST,METER,{self.address},1.0"
        if message == "READ?":
            return "+1.234E-09"
        if message == "SLOW?":
            return "slow"
        if message.startswith("ECHO "):
            return f"{self.address}:{message[5:]}"
        return None

    def reply_time(self, message: str) -> float:
        return {"READ?": 0.02, "SLOW?": 1.5}.get(message, 0.0)


@pytest.fixture(scope="module")
def simulator():
    instruments = {a: Meter(a) for a in ADDRESSES} | {MEMORY: WaveformMemory(MEMORY)}
    with run_in_thread(PrologixSimulator(instruments, seed=2)) as running:
        yield running


@pytest.fixture(scope="module")
def context(simulator) -> Iterator[DeviceTestContext]:
    properties = {"Url": simulator.url, "PollPeriod": 0.3, "Timeout": 1.0, "QueueTimeout": 10.0}
    context = DeviceTestContext(GpibBus, properties=properties, process=True, timeout=30)
    with context as proxy:
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="bus connected")
        yield context


@pytest.fixture(scope="module")
def bus(context) -> tango.DeviceProxy:
    return context.device


@pytest.fixture(scope="module")
def trl(context) -> str:
    """The bus device's full name (no database), as a `gpib://` Url names it."""
    return context.get_device_access()


@pytest.fixture(autouse=True)
def healthy(simulator, bus):
    simulator.simulator.clear()
    wait_until(lambda: bus.state() == tango.DevState.ON, 30, what="bus back ON")
    yield
    simulator.simulator.clear()


def gpib_link(trl: str, address: int, timeout: float = 1.0) -> Link:
    """A driver's link to `address`, through the bus device, as a `gpib://` Url gives it."""
    link = link_for_url(f"gpib://{trl}/{address}", framing=Lines(b"\n"), timeout=timeout)
    link.open()
    return link


# -- what a driver sees -----------------------------------------------------------------------


def test_a_driver_queries_through_a_gpib_url_as_on_a_serial_link(bus, trl):
    link = gpib_link(trl, 14)
    assert link.query("*IDN?") == "TEST,METER,14,1.0"
    assert link.query("READ?") == "+1.234E-09"
    link.write_line("*RST")
    assert link.query("ECHO after write") == "14:after write"


def test_the_reply_keeps_every_byte(bus, simulator):
    text = "".join(chr(byte) for byte in range(1, 256) if byte not in (10, 13))
    _, reply = bus.Query([[1000, 15], [f"ECHO {text}\n"]])
    assert reply == b"15:" + text.encode("latin-1") + b"\n"
    assert simulator.simulator.instruments[15].received[-1] == f"ECHO {text}"


def test_a_1_kb_binary_block_crosses_the_bus_intact_both_ways(bus, trl, simulator):
    """Every byte value, CR, LF, ESC, `+` and NUL among them, to the instrument and back."""
    data = bytes(range(256)) * 4
    link = link_for_url(f"gpib://{trl}/{MEMORY}", framing=BlockLines(b"\n"), timeout=5.0)
    link.open()
    link.transaction(b"DATA " + definite_length_block(data) + b"\n", reply=False)
    memory = simulator.simulator.instruments[MEMORY]
    wait_until(lambda: memory.data == data, 10, what="the block stored in the instrument, intact")
    assert block_data(link.transaction(b"DATA?\n")) == data  # and back


def test_addr_is_sent_only_when_the_address_changes(bus, trl, simulator):
    sim = simulator.simulator
    link14, link15 = gpib_link(trl, 14), gpib_link(trl, 15)
    link14.query("*IDN?")
    start = len(sim.received)
    for _ in range(3):
        link14.query("*IDN?")
    link15.query("*IDN?")
    sent = [message for message in sim.received[start:] if message.startswith(b"++addr")]
    assert sent == [b"++addr 15"]


def test_a_bad_address_or_timeout_is_refused_and_nothing_is_sent(bus, simulator):
    start = len(simulator.simulator.received)
    with pytest.raises(tango.DevFailed) as failure:
        bus.Query([[1000, 31], ["*IDN?\n"]])
    assert failure.value.args[0].reason == "ValueRejected"
    assert "0 to 30" in failure.value.args[0].desc
    with pytest.raises(tango.DevFailed) as failure:
        bus.Query([[5000, 14], ["*IDN?\n"]])
    assert "1 to 3000 ms" in failure.value.args[0].desc
    assert simulator.simulator.received[start:] == []


def test_an_unreachable_bus_device_is_a_link_error():
    link = link_for_url("gpib://tango://127.0.0.1:1/lab/gpib/99#dbase=no/14", timeout=0.5)
    with pytest.raises(LinkError, match="lab/gpib/99"):
        link.open()


# -- concurrency ------------------------------------------------------------------------------


def test_concurrent_clients_on_different_addresses_get_their_own_replies(bus, trl):
    failures: list[str] = []

    def client(address: int, name: str) -> None:
        link = gpib_link(trl, address)
        for n in range(30):
            asked = f"{name}-{n}"
            reply = link.query(f"ECHO {asked}")
            if reply != f"{address}:{asked}":
                failures.append(f"{asked} at {address} got {reply!r}")

    threads = [
        threading.Thread(target=client, args=(address, f"t{i}"))
        for i, address in enumerate((14, 15, 16, 14))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    wait_until(lambda: bus.read_attribute("queries").value[14] >= 60, 10, what="the queries counted per address")


def test_calls_wait_in_queues_not_on_the_device_monitor(bus, simulator):
    """A client is served (here, a State read) while another's query is in progress, though the
    server keeps Tango's serialisation by device (not NO_SYNC) for every other device."""
    instrument = simulator.simulator.instruments[16]
    done = threading.Event()

    def slow() -> None:
        bus.Query([[3000, 16], ["SLOW?\n"]])
        done.set()

    thread = threading.Thread(target=slow)
    thread.start()
    wait_until(lambda: "SLOW?" in instrument.received, 10, what="the slow query on the bus")
    bus.state()
    bus.read_attribute("queued")
    assert not done.is_set(), "the State read waited for the slow query: calls are serialised"
    thread.join(10)
    assert done.is_set()


def test_one_silent_address_does_not_stop_the_others(bus, trl, simulator):
    simulator.simulator.mute(15)
    link14, link15 = gpib_link(trl, 14, timeout=0.2), gpib_link(trl, 15, timeout=0.2)
    with pytest.raises(LinkError, match="address 15 did not answer within 0.2 s"):
        link15.query("*IDN?")
    assert link14.query("*IDN?") == "TEST,METER,14,1.0"
    wait_until(lambda: bus.state() == tango.DevState.ALARM, 10, what="ALARM naming the silent address")
    assert "GPIB address 15 silent" in bus.status()
    assert "15" in bus.read_attribute("lastError").value
    for _ in range(5):
        assert link14.query("READ?") == "+1.234E-09"
    simulator.simulator.mute(15, False)
    link15.open()
    assert link15.query("*IDN?") == "TEST,METER,15,1.0"
    wait_until(lambda: bus.state() == tango.DevState.ON, 10, what="ON once address 15 answers again")
    assert bus.read_attribute("timeouts").value[15] >= 1  # published with the ALARM seen above


def test_a_lost_prologix_is_fault_then_recovers_by_itself(bus, trl, simulator):
    simulator.simulator.set_offline(True)
    wait_until(lambda: bus.state() == tango.DevState.FAULT, 20, what="FAULT with the Prologix away")
    assert "LinkError" in bus.status()
    link = link_for_url(f"gpib://{trl}/14", timeout=0.5)
    with pytest.raises(LinkError, match="FAULT"):
        link.open()
    with pytest.raises(tango.DevFailed) as failure:
        bus.Query([[500, 14], ["*IDN?\n"]])
    assert failure.value.args[0].reason == "LinkError"
    simulator.simulator.set_offline(False)
    wait_until(lambda: bus.state() == tango.DevState.ON, 30, what="ON after the Prologix is back")
    assert gpib_link(trl, 14).query("*IDN?") == "TEST,METER,14,1.0"


def test_garbage_from_the_controller_is_a_lost_link_then_recovery(bus, trl, simulator):
    link = gpib_link(trl, 14, timeout=0.5)
    simulator.simulator.garbage = True
    with pytest.raises(LinkError):
        link.query("*IDN?")
    simulator.simulator.garbage = False
    wait_until(lambda: bus.state() == tango.DevState.ON, 30, what="ON after garbage ends")
    link.open()
    assert link.query("*IDN?") == "TEST,METER,14,1.0"


def test_the_bus_is_the_prologix_only_client(bus, trl, simulator):
    import socket

    with socket.create_connection(("127.0.0.1", simulator.port), timeout=10) as intruder:
        intruder.sendall(b"++addr 15\n")
        try:
            assert intruder.recv(100) == b""
        except ConnectionResetError:
            pass
    assert gpib_link(trl, 14).query("*IDN?") == "TEST,METER,14,1.0"


# -- the soak test: no reply ever crossed -------------------------------------------------------

CLIENT_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from device_servers.core.framing import BlockLines, Lines, block_data, definite_length_block
    from device_servers.core.link import link_for_url

    url, address, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    link = link_for_url(url, framing=Lines(b"\\n"), timeout=5.0)
    link.open()
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        reply = link.query(f"ECHO script-{n}")
        if reply != f"{address}:script-{n}":
            print(f"CROSSED script-{n} got {reply!r}")
            sys.exit(1)
        n += 1
    print(f"OK {n}")
    """
)


@pytest.mark.parametrize("seconds", [SOAK_S])
def test_clients_in_threads_and_a_script_at_full_speed_never_get_each_others_replies(bus, trl, seconds):
    script = subprocess.Popen(
        [sys.executable, "-c", CLIENT_SCRIPT, f"gpib://{trl}/16", "16", str(seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        stop = threading.Event()
        counts: dict[str, int] = {}
        failures: list[str] = []

        def client(address: int, name: str, query: str) -> None:
            link = gpib_link(trl, address)
            n = 0
            while not stop.is_set():
                asked = f"{name}-{n}"
                reply = link.query(f"ECHO {asked}")
                if reply != f"{address}:{asked}":
                    failures.append(f"{asked} at {address} got {reply!r}")
                    return
                if query:
                    assert link.query(query) == "+1.234E-09"
                n += 1
            counts[name] = n

        threads = [
            threading.Thread(target=client, args=(14, "picoammeter", "READ?")),
            threading.Thread(target=client, args=(15, "electrometer", "")),
            threading.Thread(target=client, args=(14, "script-on-14", "")),
        ]
        for thread in threads:
            thread.start()
        out, err = script.communicate(timeout=seconds + 60)
        stop.set()
        for thread in threads:
            thread.join(30)
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()
    assert script.returncode == 0, f"{out}\n{err[-2000:]}"
    assert out.startswith("OK ")
    assert not failures
    assert all(counts.get(name, 0) > 0 for name in ("picoammeter", "electrometer", "script-on-14")), counts
