"""The lab the web tests run: the lab file's archiver, relay, alarm handler, lab/cryocon/1, the
camera lab/camera/1 and the force spectrometer lab/afm/1 (with their simulators) and its web
monitor, on free ports; one user who may change things."""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request
from pathlib import Path

from tangolab.lab_config import LabConfig
from tangolab.web.auth import Users
from tangolab.web.settings import WebSettings
from tests.integration.archive_lab import cryocon_lab

USER, PASSWORD = "ada", "correct-horse"  # as the README's API examples log in
FAST = 4  # bcrypt rounds of test users: each login checks the hash, at 12 rounds ~0.3 s


#: The web lab's alarm: one a test raises at will by writing loop 1's set-point (latched: it waits for
#: an acknowledgement after the set-point comes back)
SETPOINT_ALARM = "setpoint1_high"
ALARM_RULES = [(f"{SETPOINT_ALARM}: lab/cryocon/1/setpoint1 > 320; deadband=1; latch; severity=critical; "
                "message=loop 1 set-point above 320 K")]


def web_lab() -> LabConfig:
    config = LabConfig.load()
    extra = {name: copy.deepcopy(config.data["servers"][name])
             for name in ("Relay", "AlarmHandler", "CcdController", "ForceSpectrometer")}
    data = copy.deepcopy(cryocon_lab(config, extra).data)
    simulators = config.data["tangolab"]["simulators"]
    data["tangolab"]["simulators"].update({name: copy.deepcopy(simulators[name]) for name in ("archon", "epz")})
    data["tangolab"]["simulators"]["archon"].pop("temperature_attribute", None)  # no TEC in this lab
    data["tangolab"]["web"]["plots"] = {"Temperatures": {
        "attributes": ["lab/cryocon/1/temperatureA", "lab/cryocon/1/setpoint1"], "window": "5m"}}
    cryocon_rules = [rule for rule in data["tangolab"]["alarms"]["rules"] if "lab/cryocon/1/" in rule]  # the README's
    data["tangolab"]["alarms"] = {"rules": cryocon_rules + ALARM_RULES}
    return LabConfig(data, config.path).with_free_ports()


def add_user(run_dir: Path) -> None:
    """The user, in the htpasswd file the service reads on each login (before or after it started)."""
    Users(Path(run_dir) / "web.htpasswd", rounds=FAST).set(USER, PASSWORD)


def address(lab) -> str:
    return WebSettings.of(lab.config, lab.run_dir, lab.tango_host).address.rstrip("/")


def call(method: str, url: str, body: object = None, headers: dict | None = None) -> tuple[int, object]:
    """An HTTP request; the status and the JSON answer (errors too)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
