"""A lab's beacon and `tangolab discover`, over real UDP sockets on a free port."""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tangolab.discovery import (
    LOOPBACK_BROADCAST,
    MAGIC,
    VERSION,
    Beacon,
    add_discover_command,
    discover,
    parse,
    run_discover,
)


@pytest.fixture
def port() -> int:
    """A UDP port nobody listens on right now (tests never use the default beacon port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def announcement(**fields: object) -> bytes:
    message = {
        "magic": MAGIC,
        "version": VERSION,
        "tango_host": "127.0.0.1:10000",
        "lab": "demo",
        "host": "vm",
    }
    return json.dumps({**message, **fields}).encode()


@pytest.fixture
def noise(port: int) -> Iterator[None]:
    """Datagrams on the beacon port that are not announcements, sent as fast as beacons come."""
    stop = threading.Event()
    datagrams = [
        b"\x00\xff garbage",
        b"not json",
        b"[1, 2, 3]",
        announcement(magic="someone-else"),
        announcement(version=99),
        announcement(tango_host="evil; rm -rf /:10000"),
    ]

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            while not stop.is_set():
                for datagram in datagrams:
                    sender.sendto(datagram, (LOOPBACK_BROADCAST, port))
                stop.wait(0.1)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(5)


def command(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tangolab")
    add_discover_command(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["discover", *argv])


def test_a_beacon_is_heard_with_the_labs_tango_host_name_and_host(port: int) -> None:
    with Beacon("127.0.0.1:41002", "cryostat lab", port=port, period=0.2):
        heard = discover(timeout=10, port=port, settle=0.5)
    assert [(a.tango_host, a.lab, a.host, a.sender) for a in heard] == [
        ("127.0.0.1:41002", "cryostat lab", socket.gethostname(), "127.0.0.1")
    ]


def test_a_lab_on_the_loopback_announces_only_on_the_loopback() -> None:
    assert Beacon("localhost:10000", "demo").destinations() == [LOOPBACK_BROADCAST]
    assert Beacon("127.0.0.1:10000", "demo").destinations() == [LOOPBACK_BROADCAST]
    for tango_host in ("192.0.2.77:10000", f"{socket.gethostname()}:10000"):  # a host name: the network's
        network = Beacon(tango_host, "demo").destinations()
        assert "255.255.255.255" in network and LOOPBACK_BROADCAST in network


def test_a_lab_on_the_loopback_sends_from_the_loopback(port: int) -> None:
    """Its socket is bound there, not to 0.0.0.0 (where anything sent to its port would reach it)."""
    before = udp_sockets()
    with Beacon("localhost:10000", "demo", port=port, period=0.2):
        discover(timeout=10, port=port, settle=0.1)  # it has sent: its socket is bound
        opened = {inode: address for inode, address in udp_sockets().items() if inode not in before}
    assert list(opened.values()) == ["127.0.0.1"], opened


def udp_sockets() -> dict[str, str]:
    """This process's bound IPv4 UDP sockets, inode → local address, from /proc."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = {}
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        address, port = fields[1].split(":")
        if fields[9] in inodes and int(port, 16):
            found[fields[9]] = socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1])
    return found


def test_garbage_and_other_protocols_are_ignored(port: int, noise: None) -> None:
    assert discover(timeout=1.0, port=port) == []


def test_a_beacon_is_heard_through_garbage(port: int, noise: None) -> None:
    with Beacon("127.0.0.1:41002", "demo", port=port, period=0.2):
        heard = discover(timeout=10, port=port, settle=0.5)
    assert [a.tango_host for a in heard] == ["127.0.0.1:41002"]


@pytest.mark.parametrize(
    "datagram",
    [
        b"",
        b"\xc3\x28",
        b"null",
        announcement(magic=None),
        announcement(version="1"),
        announcement(tango_host="no-port"),
        announcement(tango_host="host:99999"),
        announcement(tango_host="$(reboot):10000"),
        announcement(tango_host=["127.0.0.1:10000"]),
        announcement(lab="\x1b[2Jcleared"),
        announcement(lab=""),
        announcement(host=None),
        announcement(lab="x" * 2000),
        announcement(lab="demo\n"),
        announcement(tango_host="127.0.0.1:10000\n"),
    ],
)
def test_a_datagram_that_is_not_a_valid_announcement_is_dropped(datagram: bytes) -> None:
    assert parse(datagram, "127.0.0.1") is None


def test_a_loopback_tango_host_heard_from_another_machine_is_dropped() -> None:
    assert parse(announcement(tango_host="localhost:10000"), "192.0.2.9") is None
    assert parse(announcement(tango_host="labpc:10000"), "192.0.2.9").tango_host == "labpc:10000"


def test_two_labs_are_both_listed(port: int) -> None:
    with (
        Beacon("127.0.0.1:41002", "first", port=port, period=0.2),
        Beacon("localhost:41003", "second", port=port, period=0.2),
    ):
        heard = discover(timeout=2.0, port=port)
    labs = sorted((a.lab, a.tango_host) for a in heard)
    assert labs == [("first", "127.0.0.1:41002"), ("second", "localhost:41003")]


def test_two_listeners_at_once_both_hear_the_lab(port: int) -> None:
    results: list[list] = []
    with Beacon("127.0.0.1:41002", "demo", port=port, period=0.2):
        listeners = [
            threading.Thread(target=lambda: results.append(discover(timeout=10, port=port, settle=0.5)))
            for _ in range(2)
        ]
        for listener in listeners:
            listener.start()
        for listener in listeners:
            listener.join(15)
    assert [[a.lab for a in heard] for heard in results] == [["demo"], ["demo"]]


def test_discover_prints_the_tango_host_alone(port: int, capsys: pytest.CaptureFixture[str]) -> None:
    with Beacon("127.0.0.1:41002", "demo", port=port, period=0.2):
        assert run_discover(command("--port", str(port), "--timeout", "10")) == 0
    assert capsys.readouterr().out == "127.0.0.1:41002\n"


def test_discover_with_nothing_heard_exits_1_with_one_line(
    port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_discover(command("--port", str(port), "--timeout", "0.5")) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and f"no lab heard on UDP port {port} within 0.5 s" in err


def test_discover_all_lists_every_lab_and_several_labs_need_a_name(
    port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        Beacon("127.0.0.1:41002", "first", port=port, period=0.2),
        Beacon("localhost:41003", "second", port=port, period=0.2),
    ):
        assert run_discover(command("--port", str(port), "--timeout", "2", "--all")) == 0
        listed = capsys.readouterr().out.splitlines()
        labs = sorted(line.split("\t")[:2] for line in listed)
        assert labs == [["127.0.0.1:41002", "first"], ["localhost:41003", "second"]]

        assert run_discover(command("--port", str(port), "--timeout", "10")) == 1
        assert "several labs heard" in capsys.readouterr().err

        assert run_discover(command("--port", str(port), "--timeout", "10", "--lab", "second")) == 0
        assert capsys.readouterr().out == "localhost:41003\n"

        assert run_discover(command("--port", str(port), "--timeout", "1", "--lab", "third")) == 1
        assert "no lab named 'third' heard" in capsys.readouterr().err
