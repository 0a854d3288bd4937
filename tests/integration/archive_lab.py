"""The part of the demo lab the archive tests need: the archiver and lab/cryocon/1 with its simulator.

Taken from the lab file, so that it follows the file, yet stays the same whatever other
instruments the file gains.
"""

from __future__ import annotations

import copy

from tangolab.lab_config import LabConfig

ARCHIVER = "lab/archiver/1"
CRYOCON = "lab/cryocon/1"


def cryocon_lab(config: LabConfig | None = None, extra_servers: dict | None = None) -> LabConfig:
    """The lab file's archiver and lab/cryocon/1 (their servers, the cryocon simulator), plus extra_servers."""
    config = config or LabConfig.load()
    data = copy.deepcopy(config.data)
    servers = {}
    for executable, instances in data["servers"].items():
        for instance, classes in instances.items():
            for tango_class, devices in classes.items():
                for device, spec in devices.items():
                    if device == ARCHIVER:  # archiving only what this part of the lab has
                        archived = spec.get("properties", {}).get("ArchivedAttributes", [])
                        spec["properties"]["ArchivedAttributes"] = [
                            name for name in archived if name.lower().startswith(f"{CRYOCON}/")
                        ]
                    if device in (ARCHIVER, CRYOCON):
                        servers.setdefault(executable, {}).setdefault(instance, {}).setdefault(tango_class, {})[
                            device
                        ] = spec
    servers.update(extra_servers or {})
    data["servers"] = servers
    simulators = data.get("tangolab", {}).get("simulators", {})
    data.setdefault("tangolab", {})["simulators"] = {name: spec for name, spec in simulators.items() if name == "cryocon"}
    return LabConfig(data, config.path)
