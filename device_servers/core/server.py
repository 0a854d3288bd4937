"""Running a device server as a console script named after its class (`TemperatureController lab`)."""

from __future__ import annotations

import sys

from tango.server import Device, run


def serve(*classes: type[Device]) -> None:
    """Run the server; a refused start-up exits non-zero (plain `run()` would exit 0)."""
    try:
        run(classes, raises=True)
    except Exception as exc:  # noqa: BLE001 - the launcher reads the exit status and the log
        print(f"{classes[0].__name__} could not start: {exc}", file=sys.stderr)
        sys.exit(1)
