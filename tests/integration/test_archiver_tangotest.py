"""The archiver against a device no one here wrote: Tango's own C++ TangoTest, which pushes no events.

Its attributes are polled; what is stored is what archive events would have carried (changes,
periods), each value in its own Tango type. Needs Debian's `tango-test` package.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tango

from tangolab import history
from tangolab.lab_config import LabConfig
from tangolab.launcher import Lab
from tangolab.scripting import wait_until
from tests.conftest import run_lab
from tests.integration.archive_lab import ARCHIVER, cryocon_lab

TANGOTEST = shutil.which("TangoTest") or "/usr/lib/tango/TangoTest"
DEVICE = "lab/tangotest/1"
POLL = 0.2  # the archiver's PollPeriod here, seconds

pytestmark = pytest.mark.skipif(
    not Path(TANGOTEST).exists(), reason="Tango's C++ TangoTest is not installed: apt-get install tango-test"
)

# TangoTest attribute: the dtype its values come back in
TYPES = {
    "boolean_scalar": np.bool_,
    "short_scalar": np.int16,
    "long_scalar": np.int32,
    "long64_scalar": np.int64,
    "uchar_scalar": np.uint8,
    "ushort_scalar": np.uint16,
    "ulong_scalar": np.uint32,
    "ulong64_scalar": np.uint64,
    "float_scalar": np.float32,
    "double_scalar": np.float64,
    "string_scalar": object,
    "State": object,
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = cryocon_lab(extra_servers={"TangoTest": {"test": {"TangoTest": {DEVICE: {}}}}})
    data = dict(base.data, tangolab=dict(base.data.get("tangolab", {}), commands={"TangoTest": [TANGOTEST]}))
    config = LabConfig(data).with_properties(ARCHIVER, PollPeriod=[str(POLL)], RetryPeriod=["1.0"])
    with run_lab(config.with_free_ports(), tmp_path_factory.mktemp("tangotest")) as lab:
        wait_until(lambda: lab.proxy(ARCHIVER).state() == tango.DevState.ON, 60, what="archiver ON")
        yield lab


def _values(lab: Lab, attribute: str) -> np.ma.MaskedArray:
    return history.values(f"{DEVICE}/{attribute}", 0, store=str(lab.run_dir / "archive.db"))


def test_every_scalar_type_comes_back_in_its_own_type(lab: Lab) -> None:
    archiver = lab.proxy(ARCHIVER)
    offered = {name.lower() for name in lab.proxy(DEVICE).get_attribute_list()}
    for attribute in TYPES:
        assert attribute.lower() in offered, attribute
        archiver.AttributeAdd(f"{DEVICE}/{attribute}")
    for attribute, dtype in TYPES.items():
        wait_until(lambda a=attribute: len(_values(lab, a)) >= 1, 30, what=f"{attribute} archived")
        values = _values(lab, attribute)["value"]
        assert values.dtype == dtype, attribute
        assert not values.mask.any(), attribute
    assert isinstance(_values(lab, "State")["value"][0], tango.DevState)
    assert isinstance(_values(lab, "string_scalar")["value"][0], str)


def test_a_value_is_stored_when_it_changes_and_only_then(lab: Lab) -> None:
    device, archiver = lab.proxy(DEVICE), lab.proxy(ARCHIVER)
    device.short_scalar_w = 5
    archiver.AttributeAdd(f"{DEVICE}/short_scalar_w")
    for value in (5, 7, 7, 9):
        device.short_scalar_w = value
        wait_until(lambda v=value: _values(lab, "short_scalar_w")["value"][-1] == v, 30, what=f"{value} archived")
    polls = time.monotonic()
    wait_until(lambda: time.monotonic() - polls > 10 * POLL, 30, what="ten polls of an unchanged value")
    rows = _values(lab, "short_scalar_w")
    assert rows["value"].tolist() == [5, 7, 9]  # not one row per poll, none twice
    assert np.all(np.diff(rows["time"]) > 0)


def test_archive_period_stores_an_unchanged_value_at_that_period(lab: Lab) -> None:
    device, archiver = lab.proxy(DEVICE), lab.proxy(ARCHIVER)
    device.long_scalar_w = 42
    config = device.get_attribute_config("long_scalar_w")
    config.events.arch_event.archive_period = "1000"  # ms
    device.set_attribute_config(config)
    archiver.AttributeAdd(f"{DEVICE}/long_scalar_w")
    wait_until(lambda: len(_values(lab, "long_scalar_w")) >= 3, 30, what="three periodic rows")
    rows = _values(lab, "long_scalar_w")
    assert set(rows["value"].tolist()) == {42}
    gaps = np.diff(rows["time"])
    assert np.all(gaps >= 0.9), gaps  # one a period, not one a poll
