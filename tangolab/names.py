"""Device and attribute names as people type them, resolved against a Tango database.

A full name (`lab/cryocon/1/temperatureA`, or with a `tango://host:port/` prefix) is taken as
it is. A short one names the device by any run of its name's parts (`cryocon/temperatureA`,
`tec/1/objectTemperature`, `picoammeter/2/current`): it resolves when exactly one device of
the database matches, else the error lists the candidates. Case does not matter. The same rule
resolves names among other lists of devices, such as those an archive holds (`tangolab history`).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable

import tango

HIDDEN_DOMAINS = ("dserver", "sys")  # Tango's own devices: named in full, never matched by a short name


class BadName(LookupError):
    """Base of the errors below; the message says what to do."""


class NotFound(BadName):
    """No device or attribute of that name in the database."""


class Ambiguous(BadName):
    """A short name that matches more than one device."""


def tango_host() -> str:
    """The TANGO_HOST in use; never the default of /etc/tangorc, which would silently be another lab."""
    host = os.environ.get("TANGO_HOST", "")
    if not host:
        raise NotFound("TANGO_HOST is not set: export TANGO_HOST=HOST:PORT (the lab's, e.g. localhost:10000)")
    return host


def trl(device: str) -> str:
    """A device's full name on the lab of $TANGO_HOST. A short name would go to the first
    database this process ever used, whatever TANGO_HOST says now (cppTango keeps it)."""
    host = os.environ.get("TANGO_HOST", "")
    return device if device.startswith("tango://") or not host else f"tango://{host}/{device}"


class Names:
    """The device names of one database, read once, and the lookups on them.

    Given `devices` (and `where`, the place they come from and how to list them, for errors),
    the lookups work on those instead, with no database.
    """

    def __init__(
        self, database: tango.Database | None = None, devices: Iterable[str] | None = None, where: str | None = None
    ):
        self._database = database
        self._devices: list[str] | None = None if devices is None else sorted(devices)
        self._where = where

    @property
    def database(self) -> tango.Database:
        """The database of $TANGO_HOST, connected on first use (a full tango:// name needs none)."""
        if self._database is None:
            host, _, port = tango_host().rpartition(":")
            self._database = tango.Database(host, int(port))
        return self._database

    @property
    def devices(self) -> list[str]:
        """Every device the database defines (exported or not), sorted."""
        if self._devices is None:
            self._devices = sorted(self.database.command_inout("DbGetDeviceWideList", "*"))
        return self._devices

    def lab_devices(self) -> list[str]:
        """The devices of the lab: all but Tango's own admin and database devices."""
        return [d for d in self.devices if d.split("/")[0].lower() not in HIDDEN_DOMAINS]

    def matching(self, pattern: str = "*") -> list[str]:
        """Devices whose name matches a glob (`lab/tec/*`), or a short name (`tec`), case-insensitive."""
        pattern = pattern.lower()
        if any(c in pattern for c in "*?["):
            pool = self.devices if pattern.split("/")[0] in HIDDEN_DOMAINS else self.lab_devices()
            return [d for d in pool if fnmatch.fnmatchcase(d.lower(), pattern)]
        return self._by_parts(pattern)

    def devices_and_attribute_glob(self, pattern: str) -> tuple[list[str], str]:
        """The devices and the attribute glob of `lab/tec/*` (all), `tec/object*`, `lab/*/1/state`."""
        pattern = pattern.strip("/") or "*"
        parts = pattern.split("/")
        if len(parts) >= 4:
            return self.matching("/".join(parts[:3])), "/".join(parts[3:])
        devices = self.matching(pattern)
        if not devices and len(parts) > 1:
            return self.matching("/".join(parts[:-1])), parts[-1]
        return devices, "*"

    def device(self, name: str) -> str:
        """The one device a full or short device name means."""
        if name.startswith("tango://"):
            return name
        full = [d for d in self.devices if d.lower() == name.lower()]
        if full:
            return full[0]
        found = self._by_parts(name.lower())
        if len(found) == 1:
            return found[0]
        if not found:
            raise NotFound(f"no device {name!r} in {self._where or self._database_and_how_to_list()}")
        raise Ambiguous(f"{name!r} could be {', '.join(found)}: give one of them")

    def attribute(self, name: str) -> tuple[str, str]:
        """(device, attribute) of a full or short attribute name; the attribute part is kept as typed."""
        if name.startswith("tango://"):
            name, hash_sign, options = name.partition("#")  # "#dbase=no" of a device without database
            prefix, _, rest = name[len("tango://"):].partition("/")
            device, _, attribute = rest.rpartition("/")
            if device.count("/") != 2 or not attribute:
                raise NotFound(f"{name!r} is not tango://HOST:PORT/domain/family/member/attribute")
            return f"tango://{prefix}/{device}{hash_sign}{options}", attribute
        device, _, attribute = name.rpartition("/")
        if not device or not attribute:
            raise NotFound(
                f"{name!r} names no attribute: give DEVICE/ATTRIBUTE, e.g. lab/cryocon/1/temperatureA "
                "or cryocon/temperatureA"
            )
        return self.device(device), attribute

    def _by_parts(self, short: str) -> list[str]:
        """Devices having `short` as a run of whole parts of their name (`tec` or `tec/1` of `lab/tec/1`)."""
        wanted = short.strip("/").split("/")
        found = []
        for device in self.lab_devices():
            parts = device.lower().split("/")
            if any(parts[i:i + len(wanted)] == wanted for i in range(len(parts) - len(wanted) + 1)):
                found.append(device)
        return found

    def _database_and_how_to_list(self) -> str:
        try:
            host = f"{self.database.get_db_host()}:{self.database.get_db_port()}"
        except tango.DevFailed:
            host = os.environ.get("TANGO_HOST", "?")
        return f"the database of {host}: `tangolab devices` lists them"
