"""Device servers for the AlarmHandler tests, in a process of their own (started with `subprocess`,
not forked: a server forked from a process that talked to Tango may not answer).

    python -m tests.unit.alarm_servers PORT DEVICES   # DEVICES: JSON {"module:Class": {"a/b/c": {properties}}}

It serves until its stdin closes.
"""

from __future__ import annotations

import importlib
import json
import sys

from tango.test_context import MultiDeviceTestContext

HOST = "127.0.0.1"


def main() -> None:
    port, classes = int(sys.argv[1]), json.loads(sys.argv[2])
    devices = []
    for where, named in classes.items():
        module, _, name = where.partition(":")
        devices.append({"class": getattr(importlib.import_module(module), name),
                        "devices": [{"name": device, "properties": properties} for device, properties in named.items()]})
    with MultiDeviceTestContext(devices, host=HOST, port=port, timeout=30):
        sys.stdin.read()


if __name__ == "__main__":
    main()
