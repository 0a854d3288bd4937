"""pytango's per-call telemetry patching is off in tangolab's programs unless the user asks for it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "import device_servers, tango; from tango._internal import telemetry; "
    "print(telemetry._telemetry_runtime.runtime_available())"
)


@pytest.mark.parametrize(("enable", "patched"), [(None, "False"), ("on", "True")])
def test_a_server_imports_tango_without_telemetry_patching_unless_telemetry_is_enabled(enable, patched):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTANGO_DISABLE_TELEMETRY_PATCHING", "TANGO_TELEMETRY_ENABLE")}
    if enable:
        env["TANGO_TELEMETRY_ENABLE"] = enable
    probe = subprocess.run([sys.executable, "-c", PROBE], check=False, env=env, capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == patched, probe.stderr


def test_the_test_session_itself_runs_without_it():
    from tango._internal import telemetry

    assert not telemetry._telemetry_runtime.runtime_available()
