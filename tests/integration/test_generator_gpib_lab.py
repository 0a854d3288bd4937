"""A script uploads 1,000-point arbitrary waveforms to the HP 33120A (`lab/generator/1`) through
the GPIB bus (`lab/gpib/1`) while both picoammeters keep polling on the same bus, and reads each
back: the generator's own figures of what it holds (points, mean, peak-to-peak) match what was
sent, the read-back is the waveform sent, and the picoammeters never see a reply not theirs."""

from __future__ import annotations

import copy

import numpy as np
import tango

from tangolab.lab_config import LabConfig
from tangolab.scripting import wait_until
from tests.conftest import run_lab

METERS = ("lab/picoammeter/1", "lab/picoammeter/2")
UPLOADS = 2


def bus_lab() -> LabConfig:
    """The lab file's GPIB bus with its picoammeters and the generator."""
    config = LabConfig.load()
    data = copy.deepcopy(config.data)
    servers = data["servers"]
    data["servers"] = {name: servers[name] for name in ("GpibBus", "Picoammeter")}
    data["servers"]["FunctionGenerator"] = {"lab": servers["FunctionGenerator"]["lab"]}  # the GPIB one
    for server in data["servers"].values():
        for classes in server.values():
            for devices in classes.values():
                for spec in devices.values():
                    spec["properties"].pop("logging_target", None)
    data["tangolab"] = {
        "simulators": {"prologix": data["tangolab"]["simulators"]["prologix"]},
        "levels": {name: data["tangolab"]["levels"][name] for name in ("Picoammeter/lab", "FunctionGenerator/lab")},
    }
    return LabConfig(data, config.path).with_free_ports()


def test_uploads_through_the_bus_while_the_picoammeters_poll_never_cross(tmp_path):
    with run_lab(bus_lab(), tmp_path) as lab:
        meters = [lab.proxy(name) for name in METERS]
        generator = lab.proxy("lab/generator/1")
        for device in (*meters, generator):
            wait_until(lambda d=device: d.state() in (tango.DevState.ON, tango.DevState.ALARM), 60, what="up")
        stamps = {name: meter.read_attribute("current").time.totime() for name, meter in zip(METERS, meters)}
        phases = np.linspace(0, 2 * np.pi, 1000, endpoint=False)
        for n in range(UPLOADS):
            points = np.sin((n + 1) * phases) * (1 - 0.1 * n)
            generator.write_attribute("arbitraryWaveform1", points)
            held = generator.read_attribute("arbitraryWaveform1").value
            assert len(held) == 1000 and np.max(np.abs(held - points)) <= 0.5 / 2047 + 1e-12
            for name, meter in zip(METERS, meters):
                assert meter.state() != tango.DevState.FAULT, f"{name}: {meter.status()}"
        wait_until(lambda: generator.read_attribute("waveform1").value == 6, 10, what="ARBITRARY")
        for name, meter in zip(METERS, meters):
            wait_until(lambda m=meter, n=name: m.read_attribute("current").time.totime() > stamps[n], 10,
                       what=f"{name} polled on")
        timeouts = lab.proxy("lab/gpib/1").read_attribute("timeouts").value
        assert not any(timeouts), f"timeouts per address: {list(timeouts)}"
