"""pytango's OpenTelemetry patching, off unless asked for.

pytango 10.3 wraps every client call (a read, a command, `get_events`) to re-read eleven Tango
environment variables — each through cppTango, which also looks in the tangorc files — in case
tracing was switched on meanwhile: about 0.4 ms of CPU per call, five times the call itself. A lab
makes thousands of calls a second (the archiver drains its event queues 50 times a second), so
every tangolab program turns the patching off before `tango` is imported, unless the user asked for
telemetry with TANGO_TELEMETRY_ENABLE.
"""

from __future__ import annotations

import os

TELEMETRY_WANTED = {"on", "1", "true", "yes", "y"}  # what pytango takes for "enabled"


def skip_telemetry_patching() -> None:
    """Set PYTANGO_DISABLE_TELEMETRY_PATCHING for this process and its children, unless the user
    enabled Tango telemetry or decided about the patching themselves."""
    if os.environ.get("TANGO_TELEMETRY_ENABLE", "").lower() not in TELEMETRY_WANTED:
        os.environ.setdefault("PYTANGO_DISABLE_TELEMETRY_PATCHING", "1")
