"""One GPIB bus shared at full speed by two device servers and a script, each reaching its
instruments through `lab/gpib/1`: nobody ever gets another's reply. The suite shares it for 20 s;
`TANGOLAB_GPIB_LAB_S=600` makes it a soak.

A reply that went to the wrong client would not parse as the reading its driver asked for (a
6485's `*IDN?` line is no 487 status word, and neither is a current), so a crossed reply shows as
a FAULT of a picoammeter, an INVALID reading, or a wrong answer in the script.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time

import tango

from tangolab.lab_config import LabConfig
from tangolab.scripting import wait_until
from tests.conftest import run_lab

SECONDS = float(os.environ.get("TANGOLAB_GPIB_LAB_S", "20"))
METERS = ("lab/picoammeter/1", "lab/picoammeter/2")

SCRIPT = r"""
import sys, time
from device_servers.core.link import link_for_url
bus, seconds = sys.argv[1], float(sys.argv[2])
idn, status = link_for_url(f"gpib://{bus}/14", timeout=3.0), link_for_url(f"gpib://{bus}/15", timeout=3.0)
idn.open(); status.open()
asked = wrong = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    wrong += not idn.query("*IDN?").startswith("KEITHLEY INSTRUMENTS INC.,MODEL 6485")
    wrong += not status.query("U0X").startswith("487")
    asked += 2
print(asked, wrong)
"""


def bus_lab() -> LabConfig:
    """The lab file's GPIB bus and its two picoammeters, each picoammeter in a server of its own."""
    config = LabConfig.load()
    data = copy.deepcopy(config.data)
    servers = data["servers"]
    meters = servers["Picoammeter"]["lab"]["Picoammeter"]
    data["servers"] = {
        "GpibBus": servers["GpibBus"],
        "Picoammeter": {
            f"meter{n}": {"Picoammeter": {name: meters[name]}} for n, name in enumerate(METERS, start=1)
        },
    }
    for spec in data["servers"]["GpibBus"]["lab"]["GpibBus"].values():
        spec["properties"].pop("logging_target", None)
    for name in METERS:
        meters[name]["properties"].pop("logging_target", None)
    data["tangolab"] = {"simulators": {"prologix": data["tangolab"]["simulators"]["prologix"]}}
    return LabConfig(data, config.path).with_free_ports()


def test_two_servers_and_a_script_on_one_bus_never_get_each_others_replies(tmp_path):
    with run_lab(bus_lab(), tmp_path) as lab:
        meters = [lab.proxy(name) for name in METERS]
        for meter in meters:
            wait_until(lambda m=meter: m.state() in (tango.DevState.ON, tango.DevState.ALARM), 60, what="meter up")
        bus = f"tango://{lab.tango_host}/lab/gpib/1"
        script = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, bus, str(SECONDS)], stdout=subprocess.PIPE, text=True,
            env={**os.environ, "TANGO_HOST": lab.tango_host},
        )
        try:
            bad: list[str] = []
            readings = {name: 0 for name in METERS}
            last = {name: None for name in METERS}
            while script.poll() is None:
                for name, meter in zip(METERS, meters):
                    state = meter.state()
                    if state == tango.DevState.FAULT:
                        bad.append(f"{name} FAULT: {meter.status()}")
                    reading = meter.read_attribute("current")
                    if reading.time.totime() != last[name]:
                        last[name] = reading.time.totime()
                        readings[name] += 1
                time.sleep(0.2)  # sampling the meters' state; the load is the servers' and the script's
            asked, wrong = map(int, script.stdout.read().split())
        finally:
            if script.poll() is None:
                script.kill()
            script.wait(30)
        assert script.returncode == 0
        assert wrong == 0, f"{wrong} of {asked} replies to the script were not its own"
        assert not bad, bad[:5]
        assert asked > 10 * SECONDS  # the script kept the bus busy all along
        assert all(count > SECONDS for count in readings.values()), readings  # and so did both servers
        timeouts = lab.proxy("lab/gpib/1").read_attribute("timeouts").value
        assert not any(timeouts), f"timeouts per address: {list(timeouts)}"
