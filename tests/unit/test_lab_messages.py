"""The commands tangolab's messages name are those the user can type where they stand."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tangolab.launcher import command_line


def test_a_lab_started_from_dev_sh_is_stopped_and_shown_with_dev_sh(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("TANGOLAB_DEV_SH", "../tangolab/dev.sh")  # as the user typed it, from their folder
    monkeypatch.chdir(tmp_path)
    assert command_line("down", run_dir=tmp_path / "var") == "../tangolab/dev.sh down"
    assert command_line("status", run_dir=Path("/srv/lab")) == "../tangolab/dev.sh status --run-dir /srv/lab"
    assert command_line("call", "lab/supervisor/vm", "Log", "Chiller/lab") == \
        "../tangolab/.venv/bin/tangolab call lab/supervisor/vm Log Chiller/lab"


def test_otherwise_the_tangolab_that_runs_is_named_as_it_was_called(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TANGOLAB_DEV_SH", raising=False)
    monkeypatch.setattr(sys, "argv", [".venv/bin/tangolab", "up"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # not on the PATH: its path
    assert command_line("down") == ".venv/bin/tangolab down"
    monkeypatch.setattr(sys, "argv", ["/x/tangolab/__main__.py", "up"])
    assert command_line("status") == f"{sys.executable} -m tangolab status"
