"""A lab brought down and up again on the same run folder: on another port, by another host alias.

The history of an attribute continues under one name, found by any alias; what the user changed
while the lab ran (an archived attribute added, an attribute's configuration, a property) is
still there; `reset` gives the lab file back. A server killed and restarted by the supervisor
is an outage in the archive from the moment it died.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import tango

from tangolab import history
from tangolab.archive import open_store
from tangolab.lab_config import LabConfig, free_port
from tangolab.launcher import Lab
from tangolab.scripting import wait_until
from tests.conftest import run_lab
from tests.integration.archive_lab import ARCHIVER, CRYOCON, cryocon_lab

TEMPERATURE = "lab/cryocon/1/temperatureA"
CRYOCON_SERVER = "TemperatureController/lab"


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


def test_a_server_killed_hard_is_an_outage_from_its_death_as_its_supervisor_saw_it(tmp_path) -> None:
    """kill -9 of the cryocon's server, which the supervisor restarts: the archive holds the last
    value before the death, then one error row at the moment the supervisor saw the death, then
    the restarted server's values; no value claims the gap."""
    store = str(tmp_path / "archive.db")
    with run_lab(cryocon_lab().with_free_ports(), tmp_path) as lab:
        wait_until(lambda: lab.proxy(ARCHIVER).state() == tango.DevState.ON, 60, what="archiver ON")
        wait_until(lambda: len(_values(store)) >= 2, 60, what="values archived")
        pid = lab.pid(CRYOCON_SERVER)
        killed = time.time()
        os.kill(pid, signal.SIGKILL)  # a crash: unasked
        wait_until(lambda: lab.pid(CRYOCON_SERVER) not in (0, pid), 60, what="the supervisor's restart")
        lab.wait_device(CRYOCON)
        wait_until(lambda: np.count_nonzero(~np.ma.getmaskarray(_values(store, since=killed)["value"])) >= 2, 60,
                   what="values of the restarted server archived")
        ended = lab.supervisor.read_attribute("endedDevices")
    assert CRYOCON in [name.lower() for name in ended.value]
    death = ended.time.totime()  # when the supervisor saw it
    assert killed <= death

    with open_store(store, read_only=True) as archive:
        errors = archive.errors(TEMPERATURE, killed - 60)
    assert [when for when, _ in errors] == [pytest.approx(death, abs=1e-3)], errors  # one outage, from the death
    assert "ended" in errors[0][1]
    rows = _values(store, since=killed - 60)
    valid = ~np.ma.getmaskarray(rows["value"])
    before, later = rows["time"][valid & (rows["time"] < death)], rows["time"][valid & (rows["time"] > death)]
    assert before.size and before[-1] < killed  # the last value before the death
    assert later.size and not np.any((rows["time"][valid] >= killed) & (rows["time"][valid] <= death))
