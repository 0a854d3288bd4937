"""A lab announces its TANGO_HOST on the local network, so a machine that joins needs no setup.

A running lab sends a small UDP datagram every second (a `Beacon`): JSON with a magic word and
version, the lab's TANGO_HOST, its name and its host. `tangolab discover` listens and prints the
TANGO_HOST it hears, so that `export TANGO_HOST=$(tangolab discover)` configures a shell.

The beacon only announces: a listener parses the fields of what it receives, checks them, and
does nothing else with them. A lab whose TANGO_HOST is on the loopback (localhost, 127.x)
announces only on the loopback, to 127.255.255.255, which every listener on the machine hears (a
datagram to 127.0.0.1 reaches only one of several listeners sharing the port).
"""

from __future__ import annotations

import argparse
import fcntl
import ipaddress
import json
import re
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from typing import Self

from .processes import is_loopback as host_is_loopback

MAGIC = "tangolab-beacon"
VERSION = 1
DEFAULT_PORT = 10099  # UDP, beside Tango's 10000; unassigned, below Linux's ephemeral range
LOOPBACK_BROADCAST = "127.255.255.255"
MAX_DATAGRAM = 1024
_HOST_PORT = r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}:\d{1,5}"
TANGO_HOST = re.compile(rf"{_HOST_PORT}(,{_HOST_PORT})*")  # whole string (fullmatch): one or more HOST:PORT
NAME = re.compile(r"[\w .@+-]{1,64}")  # printable, no control characters for a terminal
_SIOCGIFFLAGS, _SIOCGIFBRDADDR, _IFF_UP, _IFF_BROADCAST = 0x8913, 0x8919, 0x1, 0x2


@dataclass(frozen=True)
class Announcement:
    """One lab heard on the network."""

    tango_host: str
    lab: str
    host: str
    sender: str  # the IP address the datagram came from

    def __str__(self) -> str:
        return f"{self.tango_host}\t{self.lab}\t{self.host} ({self.sender})"


class Beacon:
    """Announces one lab every `period` seconds from a thread of its own, until `stop()`."""

    def __init__(self, tango_host: str, lab: str, port: int = DEFAULT_PORT, period: float = 1.0) -> None:
        if not TANGO_HOST.fullmatch(tango_host):
            raise ValueError(f"TANGO_HOST must be HOST:PORT, got {tango_host!r}")
        if not NAME.fullmatch(lab):
            raise ValueError(f"a lab's name is 1 to 64 letters, digits, spaces or . @ + -, got {lab!r}")
        self.tango_host, self.lab, self.port, self.period = tango_host, lab, port, period
        self.message = json.dumps(
            {
                "magic": MAGIC,
                "version": VERSION,
                "tango_host": tango_host,
                "lab": lab,
                "host": socket.gethostname(),
            }
        ).encode()
        self.loopback_only = is_loopback(tango_host)  # as the launcher decides where the lab listens
        self.last_error: OSError | None = None  # the last send that failed (no network, say)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def destinations(self) -> list[str]:
        """Where the datagram goes: the loopback broadcast, and the networks' unless the lab is local."""
        if self.loopback_only:
            return [LOOPBACK_BROADCAST]
        return [LOOPBACK_BROADCAST, "255.255.255.255", *_interface_broadcasts()]

    def start(self) -> Self:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"beacon-{self.lab}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            if self.loopback_only:  # else the first send binds it to every interface, as a lab on the network is
                sender.bind(("127.0.0.1", 0))
            while not self._stop.is_set():
                for address in self.destinations():  # again each time: interfaces come and go
                    try:
                        sender.sendto(self.message, (address, self.port))
                    except OSError as exc:  # an interface without a route; the others still go
                        self.last_error = exc
                self._stop.wait(self.period)


def is_loopback(tango_host: str, resolve: bool = False) -> bool:
    """True when every database host of `tango_host` is the loopback: localhost, 127.x, ::1, or
    (with `resolve`) a name that resolves there, as Debian's own host name often does (127.0.1.1).
    A lab named by its host name is meant for the network (the launcher does not resolve either)."""
    hosts = [part.rpartition(":")[0] for part in tango_host.split(",")]
    return all(host_is_loopback(host, resolve) for host in hosts)


def _interface_broadcasts() -> list[str]:
    """The broadcast address of each interface that is up and has one (Linux)."""
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                flags = struct.unpack("H", fcntl.ioctl(probe.fileno(), _SIOCGIFFLAGS, request)[16:18])[0]
                if flags & _IFF_UP and flags & _IFF_BROADCAST:
                    found.append(
                        socket.inet_ntoa(fcntl.ioctl(probe.fileno(), _SIOCGIFBRDADDR, request)[20:24])
                    )
            except OSError:
                continue  # no IPv4 address on it
    return found


def parse(datagram: bytes, sender: str) -> Announcement | None:
    """The announcement in `datagram`, or None for anything else (checked, never executed)."""
    if len(datagram) > MAX_DATAGRAM:
        return None
    try:
        fields = json.loads(datagram.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(fields, dict) or fields.get("magic") != MAGIC or fields.get("version") != VERSION:
        return None
    tango_host, lab, host = fields.get("tango_host"), fields.get("lab"), fields.get("host")
    if not all(isinstance(value, str) for value in (tango_host, lab, host)):
        return None
    if not TANGO_HOST.fullmatch(tango_host) or not NAME.fullmatch(lab) or not NAME.fullmatch(host):
        return None
    if not all(0 < int(part.rpartition(":")[2]) < 65536 for part in tango_host.split(",")):
        return None
    if is_loopback(tango_host) and not ipaddress.ip_address(sender).is_loopback:
        return None  # another machine's loopback lab would point here, at the wrong database
    return Announcement(tango_host, lab, host, sender)


def discover(
    timeout: float = 3.0, port: int = DEFAULT_PORT, settle: float | None = None
) -> list[Announcement]:
    """The labs heard within `timeout` seconds, in the order first heard.

    With `settle`, return that many seconds after the first lab is heard (enough to hear the
    others, whose beacons come every second) rather than at `timeout`.
    """
    heard: dict[tuple[str, str], Announcement] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # several listeners at once
        listener.bind(("", port))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            listener.settimeout(left)
            try:
                datagram, (sender, _) = listener.recvfrom(MAX_DATAGRAM + 1)
            except TimeoutError:
                break
            announcement = parse(datagram, sender)
            if announcement is None:
                continue
            if not heard and settle is not None:
                deadline = min(deadline, time.monotonic() + settle)
            heard.setdefault((announcement.tango_host, announcement.lab), announcement)
    return list(heard.values())


def add_discover_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `discover [--all] [--lab NAME] [--timeout S] [--port P]` to a CLI's subcommands."""
    parser = subparsers.add_parser(
        "discover",
        help="print the TANGO_HOST of the lab announced on the local network "
        "(export TANGO_HOST=$(tangolab discover))",
        description="Listen for labs announcing themselves on the local network; print the TANGO_HOST heard.",
    )
    parser.add_argument("--all", action="store_true", help="list every lab heard: TANGO_HOST, name, host")
    parser.add_argument("--lab", help="the lab to pick by name when several are heard")
    parser.add_argument(
        "--timeout", type=float, default=3.0, help="seconds to listen at most (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="UDP port of the beacons (default: %(default)s)"
    )
    parser.set_defaults(run=run_discover)
    return parser


def run_discover(args: argparse.Namespace) -> int:
    """Print what `discover` asks for; 0 when a lab was found, 1 with a one-line reason otherwise."""
    try:
        heard = discover(args.timeout, args.port, settle=None if args.all else 1.5)
    except OSError as exc:
        print(f"tangolab discover: cannot listen on UDP port {args.port}: {exc}", file=sys.stderr)
        return 1
    if args.lab:
        heard = [announcement for announcement in heard if announcement.lab == args.lab]
    if not heard:
        which = f"no lab named {args.lab!r}" if args.lab else "no lab"
        print(
            f"tangolab discover: {which} heard on UDP port {args.port} within {args.timeout:g} s "
            "(is the lab up, on this network, and is the port let through?)",
            file=sys.stderr,
        )
        return 1
    if args.all:
        for announcement in heard:
            print(announcement)
        return 0
    if len({announcement.tango_host for announcement in heard}) > 1:
        names = ", ".join(f"{a.lab} ({a.tango_host})" for a in heard)
        print(f"tangolab discover: several labs heard: {names}; pick one with --lab NAME", file=sys.stderr)
        return 1
    print(heard[0].tango_host)
    return 0
