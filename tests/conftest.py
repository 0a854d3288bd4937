"""Fixtures shared by the test suites: a whole lab, started by the same launcher as `tangolab up`."""

from __future__ import annotations

import os

import pytest

from tangolab.lab_config import LabConfig, free_port
from tangolab.launcher import Lab

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    """The demo lab on free ports in a folder of its own; every process stopped by PID afterwards."""
    lab = Lab(LabConfig.load().with_free_ports(), tmp_path_factory.mktemp("lab"), f"127.0.0.1:{free_port()}")
    lab.start(timeout=120)
    yield lab
    lab.stop()
    assert not [p.name for p in lab.processes.values() if p.is_alive()], "the lab left processes behind"
