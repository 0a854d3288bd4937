"""The web monitor's settings: the lab file's `tangolab.web` section, read once.

    "web": {"port": 10080, "open_reading": true,
            "plots": {"Temperatures": {"attributes": ["lab/cryocon/1/temperatureA"], "log_y": false,
                                       "window": "10m"}}}

`host` is where it listens: by default the loopback for a loopback lab (TANGO_HOST localhost or
127.x), every interface otherwise. `open_reading` lets anyone on the lab network read without a
login; every change needs one whatever it says. `users` is the htpasswd file (bcrypt), relative to
the run folder (`tangolab web adduser NAME` writes it).
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..lab_config import LabConfig
from ..processes import is_loopback

DEFAULT_PORT = 10080
USERS_FILE = "web.htpasswd"
TOKENS_FILE = "web.tokens"


@dataclass(frozen=True)
class Plot:
    name: str
    attributes: tuple[str, ...]
    log_y: bool = False
    window: str = "10m"  # how much history a plot opens with


@dataclass(frozen=True)
class WebSettings:
    run_dir: Path
    tango_host: str
    port: int = DEFAULT_PORT
    host: str = ""  # where it listens; "" → by the lab's TANGO_HOST
    open_reading: bool = True
    users: str = USERS_FILE
    plots: tuple[Plot, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, config: LabConfig, run_dir: Path, tango_host: str) -> WebSettings | None:
        section: dict[str, Any] | None = config.web
        if section is None:
            return None
        plots = tuple(Plot(name, tuple(spec["attributes"]), bool(spec.get("log_y", False)), str(spec.get("window", "10m")))
                      for name, spec in section.get("plots", {}).items())
        return cls(Path(run_dir), tango_host, int(section.get("port", DEFAULT_PORT)), section.get("host", ""),
                   bool(section.get("open_reading", True)), section.get("users", USERS_FILE), plots)

    @property
    def loopback_lab(self) -> bool:
        return is_loopback(self.tango_host.rpartition(":")[0])

    @property
    def bind_host(self) -> str:
        return self.host or ("127.0.0.1" if self.loopback_lab else "0.0.0.0")

    @property
    def probe_host(self) -> str:
        """Where this host reaches it."""
        return "127.0.0.1" if self.bind_host in ("0.0.0.0", "::") else self.bind_host

    @property
    def address(self) -> str:
        """Its address as people type it."""
        host = "localhost" if self.loopback_lab and not self.host else (
            socket.gethostname() if self.bind_host in ("0.0.0.0", "::") else self.bind_host)
        return f"http://{host}:{self.port}/"

    @property
    def users_file(self) -> Path:
        return self.run_dir / self.users

    @property
    def tokens_file(self) -> Path:
        return self.run_dir / TOKENS_FILE

    def argv(self, config_file: str, python: str = sys.executable) -> list[str]:
        """The service's command line, as the supervisor starts it."""
        return [python, "-m", "tangolab.web", "serve", "--run-dir", str(self.run_dir), "--config", config_file]
