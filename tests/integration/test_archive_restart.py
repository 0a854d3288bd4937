"""A lab brought down and up again on the same run folder: on another port, by another host alias.

The history of an attribute continues under one name, found by any alias; what the user changed
while the lab ran (an archived attribute added, an attribute's configuration, a property) is
still there; `reset` gives the lab file back.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import tango

from tangolab import history
from tangolab.archive import open_store
from tangolab.lab_config import LabConfig, free_port
from tangolab.launcher import Lab
from tangolab.scripting import wait_until
from tests.integration.archive_lab import ARCHIVER, CRYOCON, cryocon_lab

TEMPERATURE = "lab/cryocon/1/temperatureA"


def _started(config: LabConfig, folder: Path, tango_host: str, reset: bool = False) -> Lab:
    lab = Lab(config.with_free_ports(), folder, tango_host, reset=reset)
    lab.start(timeout=120)
    wait_until(lambda: lab.proxy(ARCHIVER).state() == tango.DevState.ON, 60, what="archiver ON")
    return lab


def _values(store: str, name: str = TEMPERATURE, since: float = 0.0):
    return history.values(name, since, store=store)


def test_history_and_run_time_changes_survive_a_restart_on_another_port_and_host_alias(tmp_path) -> None:
    config = cryocon_lab().with_properties(ARCHIVER, RetryPeriod=["1.0"])
    store = str(tmp_path / "archive.db")  # the archiver's default Store, in the run folder
    first_port, second_port = free_port(), free_port()

    lab = _started(config, tmp_path, f"127.0.0.1:{first_port}")
    try:
        archiver, cryocon = lab.proxy(ARCHIVER), lab.proxy(CRYOCON)
        archiver.AttributeAdd("lab/cryocon/1/rampRate1")
        edited = cryocon.get_attribute_config("temperatureA")
        edited.label, edited.unit = "Sample stage", "kelvin"
        cryocon.set_attribute_config(edited)  # as Jive or Taurus would
        lab.database.put_device_property(ARCHIVER, {"PollPeriod": ["0.5"]})
        wait_until(lambda: len(_values(store)) >= 2 and len(_values(store, "lab/cryocon/1/rampRate1")) >= 1, 60,
                   what="values archived in the first run")
        names = sorted(archiver.AttributeList)
    finally:
        lab.stop()
    stopped = time.time()

    lab = _started(config, tmp_path, f"localhost:{second_port}")  # another port, another alias
    try:
        archiver, cryocon = lab.proxy(ARCHIVER), lab.proxy(CRYOCON)
        assert sorted(archiver.AttributeList) == names  # rampRate1 still archived, under the same names
        assert any(name.endswith("/lab/cryocon/1/ramprate1") for name in names)
        kept = cryocon.get_attribute_config("temperatureA")
        assert (kept.label, kept.unit) == ("Sample stage", "kelvin")
        assert lab.database.get_device_property(ARCHIVER, "PollPeriod")["PollPeriod"] == ["0.5"]
        wait_until(lambda: len(_values(store, since=stopped)) >= 2, 60, what="values archived after the restart")
    finally:
        lab.stop()

    whole = _values(store)
    assert whole["time"][0] < stopped < whole["time"][-1]  # one history across both runs
    for alias in (TEMPERATURE, f"tango://localhost:{second_port}/{TEMPERATURE}",
                  f"tango://{socket.gethostname()}:{second_port}/{TEMPERATURE}",
                  f"tango://127.0.0.1:{first_port}/{TEMPERATURE}", f"tango://localhost:{first_port}/{TEMPERATURE}"):
        assert len(_values(store, alias)) == len(whole), alias
    with open_store(store, read_only=True) as archive:
        assert [att.name for att in archive.attributes() if att.name.endswith("/temperaturea")] == [
            name for name in names if name.endswith("/temperaturea")
        ]

    lab = _started(config, tmp_path, f"127.0.0.1:{free_port()}", reset=True)  # the lab file back
    try:
        assert not any(name.endswith("/ramprate1") for name in lab.proxy(ARCHIVER).AttributeList)
        in_file = next(device for device in config.devices if device.name == ARCHIVER).properties.get("PollPeriod", [])
        assert list(lab.database.get_device_property(ARCHIVER, "PollPeriod")["PollPeriod"]) == in_file
    finally:
        lab.stop()
