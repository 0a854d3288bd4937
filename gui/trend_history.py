"""Where a lab's archive is, and what it holds for the curves of a trend.

The GUI needs no setting of its own for history: the archiver device's `Store` property in the
Tango database names the archive, a relative path meaning the archiver's working folder (the
lab's run folder), as the archiver opens it. Reading happens off the GUI thread (see
gui/trend.py); nothing here touches Qt.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tangolab.archive import ArchiveError, Store, canonical_host, open_store

ARCHIVER_CLASS = "Archiver"
DEFAULT_STORE = "archive.db"  # the Archiver's Store default, relative to its working folder
RUN_FOLDER = "var"  # the launcher's default run folder, where history.py looks too
STATE_FILE = "lab.state.json"  # what the launcher leaves in a run folder: the lab's TANGO_HOST among others


@dataclass
class Series:
    """One attribute's archived points, ready to plot: times (epoch s) and values as float, NaN
    where the archive has no value (a failed read), which breaks the line there."""

    times: np.ndarray
    values: np.ndarray


def _is_url_or_absolute(store: str) -> bool:
    return "://" in store or Path(store).is_absolute()


def _local(host: str) -> bool:
    return canonical_host(host) == canonical_host("localhost")


def archive_of_lab(tango_host: str) -> str | None:
    """The archive of the lab on `tango_host` (path or URL), None when it has none this machine can read.

    The first Archiver device in the database gives its Store. A relative Store is looked up
    where the archiver runs: its process's working folder when it runs on this machine, else the
    run folder (var/) of a lab started here on that TANGO_HOST.
    """
    import tango

    host, _, port = tango_host.rpartition(":")
    try:
        database = tango.Database(host, int(port))
        devices = sorted(database.get_device_name("*", ARCHIVER_CLASS).value_string)
    except (tango.DevFailed, ValueError):
        return None
    for device in devices:
        found = database.get_device_property(device, "Store")["Store"]
        store = found[0] if len(found) else DEFAULT_STORE
        if _is_url_or_absolute(store):
            return store
        for folder in _run_folders(database, device, tango_host):
            if (folder / store).is_file():
                return str(folder / store)
    return None


def _run_folders(database, device: str, tango_host: str) -> list[Path]:
    """Where a relative Store may be: the archiver process's working folder, then ./var of a lab here."""
    import tango

    folders = []
    try:
        info = database.get_device_info(device)
        if info.exported and info.pid > 0 and _local(info.host or "localhost"):
            folders.append(Path(os.readlink(f"/proc/{info.pid}/cwd")))
    except (tango.DevFailed, OSError):
        pass  # not running, not ours to look into, or another machine's
    state = Path(RUN_FOLDER) / STATE_FILE
    try:
        if json.loads(state.read_text()).get("tango_host") == tango_host:
            folders.append(state.parent.resolve())
    except (OSError, ValueError, AttributeError):
        pass
    return folders


def archived_name(model: str) -> str:
    """The name an archive knows a Taurus attribute model by: without Taurus's `#dbase=no`-style fragment."""
    return model.split("#", 1)[0]


def read_history(archive: str | Store, models: list[str], since: float, until: float) -> dict[str, Series]:
    """The archived points of each model between since and until, with the value held at `since`
    first (the last one archived before it), so that a curve starts at the left edge.

    Models not archived are left out; numbers only (a state or text has no curve).
    """
    found: dict[str, Series] = {}
    opened = archive if isinstance(archive, Store) else open_store(archive, create=False, read_only=True)
    try:
        names = {att.conf_id: att.name for att in opened.attributes()}
        held = None
        for model in models:
            name = archived_name(model)
            conf_id = opened.conf_id(name)
            if conf_id is None:
                continue
            times, values, _ = opened.values(name, since, until)
            if values.dtype.kind not in "biuf":
                continue
            if held is None and (not len(times) or times[0] > since):
                held = opened.state_at(since)  # once per reading: a query per archived attribute
            data = np.ma.filled(values.astype(np.float64), math.nan)
            before = (held or {}).get(names[conf_id])
            if before is not None and before[1] is not None and (not len(times) or times[0] > since):
                try:
                    first = float(before[1])
                except (TypeError, ValueError):
                    first = math.nan
                times, data = np.concatenate(([since], times)), np.concatenate(([first], data))
            found[model] = Series(np.asarray(times, np.float64), data)
    finally:
        if opened is not archive:
            opened.close()
    return found


__all__ = ["ArchiveError", "Series", "archive_of_lab", "archived_name", "read_history"]
