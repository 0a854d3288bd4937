"""The lab, described once: a dsconfig JSON file plus a `tangolab` section dsconfig ignores.

    {
      "servers": {"TemperatureController": {"lab": {"TemperatureController": {
          "lab/cryocon/1": {"properties": {"Url": ["socket://localhost:15024"]}}}}}},
      "tangolab": {"simulators": {"cryocon": {"kind": "cryocon", "port": 15024, "seed": 1}}}
    }

`servers` goes to the Tango database through dsconfig; the launcher and the supervisor read the
same file to know which servers to run and which simulators to start. A server that is not one
of tangolab's console scripts (TangoTest, a lab's own script) gets its command line in
`tangolab.commands`: `{"TangoTest": ["/usr/lib/tango/TangoTest"]}`; the instance is appended. A device talks to a
simulator only because its `Url` points at the simulator's port: pointing it at the real
instrument is a change of `Url` and nothing else.

`tangolab.levels` gives a program's start-up level (`{"CcdHead/lab": 3}`): services and
simulators first (1), device servers (2, the default), servers built on other devices (3),
clients (4). `tangolab.hosts` names the host a server runs on when the lab spans several
machines (default: the host that starts the lab). `tangolab.supervisor` holds the supervisor's
properties (`{"HangTimeout": 30}`). `tangolab.web` makes the web monitor a service of the lab
(`tangolab.web.settings` says what it holds).
"""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import os
import random
import re
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "db_config" / "lab.json"
SERVICES, SIMULATORS, DEVICE_SERVERS, COMPOSITE_SERVERS, CLIENTS = 1, 1, 2, 3, 4  # default start-up levels


class ConfigError(ValueError):
    """The lab file names something that cannot be run; the message says what and what exists."""


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    tango_class: str
    server: str
    properties: dict[str, list[str]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return ",".join(self.properties.get("Url", []))


@dataclass(frozen=True)
class ServerSpec:
    executable: str
    instance: str
    devices: tuple[DeviceSpec, ...]

    @property
    def name(self) -> str:
        return f"{self.executable}/{self.instance}"


@dataclass(frozen=True)
class SimulatorSpec:
    name: str
    kind: str
    port: int
    seed: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


WEB = "web"  # the web monitor's program name


class LabConfig:
    """One lab file, read: its servers, devices and simulators."""

    def __init__(self, data: dict[str, Any], path: Path | None = None) -> None:
        self.data = data
        self.path = path
        self.servers = tuple(_servers(data.get("servers", {})))
        #: How to run servers that are not tangolab console scripts: executable → argv before the instance
        self.commands: dict[str, list[str]] = data.get("tangolab", {}).get("commands", {})
        self.simulators = tuple(
            SimulatorSpec(
                name=name,
                kind=spec.get("kind", name),
                port=int(spec.get("port", 0)),
                seed=spec.get("seed"),
                options={k: v for k, v in spec.items() if k not in ("kind", "port", "seed")},
            )
            for name, spec in data.get("tangolab", {}).get("simulators", {}).items()
        )

    @classmethod
    def load(cls, path: str | Path = DEFAULT_CONFIG) -> LabConfig:
        path = Path(path)
        try:
            return cls(json.loads(path.read_text()), path)
        except (OSError, json.JSONDecodeError) as exc:
            raise SystemExit(f"cannot read the lab configuration {path}: {exc}") from exc

    @property
    def _tangolab(self) -> dict[str, Any]:
        return self.data.get("tangolab", {})

    def level(self, program: str) -> int:
        """Start-up level of a program (`Class/instance` or `simulator/<name>`)."""
        default = SIMULATORS if program.startswith("simulator/") else SERVICES if program == WEB else DEVICE_SERVERS
        return int(self._tangolab.get("levels", {}).get(program, default))

    def host_of(self, program: str) -> str | None:
        """The host a program runs on, when the lab file says (short host name)."""
        host = self._tangolab.get("hosts", {}).get(program)
        return host.split(".")[0] if host else None

    @property
    def web(self) -> dict[str, Any] | None:
        """The lab file's `tangolab.web` section, None when the lab has no web monitor."""
        return self._tangolab.get(WEB)

    @property
    def supervisor_properties(self) -> dict[str, list[str]]:
        """The supervisor's properties: the lab's name (it announces the lab by it), and `tangolab.supervisor`."""
        named = {"LabName": [self._tangolab["name"]]} if "name" in self._tangolab else {}
        return named | {name: [str(value)] for name, value in self._tangolab.get("supervisor", {}).items()}

    def server_argv(self, server: ServerSpec) -> list[str]:
        """The command line of a server: its console script (beside the running Python), or the
        lab file's `tangolab.commands` entry; the instance appended."""
        if server.executable in self.commands:
            return [*self.commands[server.executable], server.instance]
        beside = Path(sys.executable).parent / server.executable
        if beside.exists():
            return [str(beside), server.instance]
        known = sorted(script.name for script in entry_points(group="console_scripts")
                       if script.value.startswith("device_servers."))
        if server.executable in known:  # installed, but the scripts are elsewhere
            raise ConfigError(f"the console script {server.executable} is not beside {sys.executable}: "
                              "reinstall tangolab in this environment (pip install -e .)")
        close = difflib.get_close_matches(server.executable, known, n=1)
        raise ConfigError(
            f"the lab file names server {server.name}, but tangolab has no device server {server.executable!r}"
            + (f" (did you mean {close[0]!r}?)" if close else "")
            + f"; tangolab's servers: {', '.join(known)}; other programs need a command in tangolab.commands"
        )

    @staticmethod
    def simulator_argv(spec: SimulatorSpec, python: str = sys.executable) -> list[str]:
        """`python -m simulators KIND --port P --control-port 0 [--seed S] [--option value ...]`."""
        argv = [python, "-m", "simulators", spec.kind, "--port", str(spec.port), "--control-port", "0"]
        if spec.seed is not None:
            argv += ["--seed", str(spec.seed)]
        for option, value in spec.options.items():
            argv += [f"--{option.replace('_', '-')}", str(value)]
        return argv

    @property
    def devices(self) -> tuple[DeviceSpec, ...]:
        return tuple(device for server in self.servers for device in server.devices)

    def dsconfig(self) -> dict[str, Any]:
        """The part of the file that dsconfig applies to the Tango database; the alarm rules
        (`tangolab.alarms.rules`) as the `Rules` property of the lab's AlarmHandler."""
        data = {key: value for key, value in self.data.items() if key in ("servers", "classes")}
        if (rules := self._tangolab.get("alarms", {}).get("rules")) is not None:
            data = copy.deepcopy(data)
            for device in self.devices:
                if device.tango_class == "AlarmHandler":
                    _properties_of(data, device)["Rules"] = list(rules)
        return data

    def with_properties(self, device: str, **properties: list[str]) -> LabConfig:
        """The same lab with some properties of one device replaced."""
        data = copy.deepcopy(self.data)
        spec = next(d for d in self.devices if d.name == device)
        _properties_of(data, spec).update(properties)
        return LabConfig(data, self.path)

    def with_free_ports(self) -> LabConfig:
        """The same lab with every simulator on a free port and the URLs that named it rewritten."""
        data = copy.deepcopy(self.data)
        moves = {sim.port: free_port() for sim in self.simulators}
        moves |= {int(port): free_port() for sim in self.simulators for port in _other_ports(sim.options).values()}
        for spec in data.get("tangolab", {}).get("simulators", {}).values():
            spec["port"] = moves[int(spec.get("port", 0))]
            spec.update({option: moves[int(port)] for option, port in _other_ports(spec).items()})
        if WEB in data.get("tangolab", {}):
            data["tangolab"][WEB]["port"] = free_port()
        for device in self.devices:
            properties = _properties_of(data, device)
            if "Url" in properties:
                properties["Url"] = [_move_port(url, moves) for url in properties["Url"]]
        return LabConfig(data, self.path)


def _properties_of(data: dict[str, Any], device: DeviceSpec) -> dict[str, list[str]]:
    """The properties of `device` inside the lab file's data, to edit in place."""
    executable, instance = device.server.split("/")
    return data["servers"][executable][instance][device.tango_class][device.name].setdefault("properties", {})


#: Where `free_port` looks: above Tango's 10000 and the demo lab's own ports, below Linux's ephemeral
#: range (32768-60999), from which every outgoing connection takes its local port: a port found free
#: there (as binding port 0 finds one) can be taken by some client before the lab binds it (seen with
#: test labs started in parallel).
FREE_PORTS = range(20000, 32768)
#: Each process (a forked one too) walks FREE_PORTS from a place of its own: processes looking at
#: once do not meet the same port.
_walks: dict[int, Iterator[int]] = {}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now, not handed out before by this process."""
    if (walk := _walks.get(os.getpid())) is None:
        start = random.Random(os.getpid() ^ time.time_ns()).randrange(len(FREE_PORTS))
        walk = _walks[os.getpid()] = itertools.islice(itertools.cycle(FREE_PORTS), start, None)
    for port in walk:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise AssertionError("unreachable: the candidates cycle")


def _other_ports(options: dict[str, Any]) -> dict[str, Any]:
    """A simulator's ports besides its instrument port (the epz board's `subscribe_port`...)."""
    return {option: value for option, value in options.items() if option.endswith("_port") and int(value)}


def _move_port(url: str, moves: dict[int, int]) -> str:
    """The URL with its port moved, and the further ports a zmq:// URL lists (`:6661/6669/6000`)."""

    def replace(match: re.Match[str]) -> str:
        ports = [int(port) for port in match.group(2).split("/")]
        moved = [str(moves.get(port, port) if i == 0 or port in moves else port) for i, port in enumerate(ports)]
        return f"{match.group(1)}:{'/'.join(moved)}"

    return re.sub(r"((?:localhost|127\.0\.0\.1)):(\d+(?:/\d+)*)", replace, url)


def _servers(servers: dict[str, Any]) -> list[ServerSpec]:
    specs = []
    for executable, instances in servers.items():
        for instance, classes in instances.items():
            devices = tuple(
                DeviceSpec(
                    name=device,
                    tango_class=tango_class,
                    server=f"{executable}/{instance}",
                    properties=spec.get("properties", {}),
                )
                for tango_class, devs in classes.items()
                for device, spec in devs.items()
            )
            specs.append(ServerSpec(executable, instance, devices))
    return specs
