"""USB serial instruments found by their serial number: `usb://<serial number>`.

A USB-serial adapter's node (/dev/ttyUSB0, /dev/ttyACM0) is numbered in the order the cables were
plugged in, and a cable pulled and put back may return under another number. udev also keeps a
link named after the adapter's serial number, /dev/serial/by-id/usb-<vendor>_<model>_<serial>-if<nn>
(`usb-Thorlabs_Brushed_Motor_Controller_27500001-if00-port0` for an APT cube, whose serial is its
FTDI serial). `usb://27500001` opens whatever node that link names, looked up afresh at every
(re)connection: after the cable is pulled (the line fails, the device is FAULT saying no adapter
with that serial is plugged in) and put back, the device reconnects by itself. An adapter with
several interfaces (FT4232: if00 … if03) names one: `usb://FT4ABCDE/if01`.

The folder is /dev/serial/by-id unless the environment's `TANGOLAB_SERIAL_BY_ID` names another
(a test stands in its own). Serial settings are the device's, as for /dev/ttyUSB0.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import LinkError
from .line import register_transport
from .link import SerialLink

BY_ID = "/dev/serial/by-id"
BY_ID_ENV = "TANGOLAB_SERIAL_BY_ID"


def by_id_folder() -> Path:
    return Path(os.environ.get(BY_ID_ENV) or BY_ID)


def find_by_serial(serial_number: str, interface: str = "", folder: Path | None = None) -> Path:
    """The node of the USB serial adapter with `serial_number` (and `interface`, e.g. "if01"),
    through its by-id link; LinkError saying what is there when it is absent or ambiguous."""
    folder = folder or by_id_folder()
    try:
        names = sorted(entry.name for entry in folder.iterdir())
    except OSError:
        names = []
    found = [name for name in names if _serial_of(name) == serial_number
             and (not interface or f"-{interface}" in name)]
    wanted = f"serial number {serial_number}" + (f", interface {interface}" if interface else "")
    if not found:
        present = ", ".join(name for name in names) or "none"
        raise LinkError(f"no USB serial adapter with {wanted} in {folder} (unplugged?); there: {present}")
    if len(found) > 1:
        raise LinkError(f"{len(found)} interfaces with {wanted} in {folder}: {', '.join(found)}; "
                        f"name one: usb://{serial_number}/if00")
    node = (folder / found[0]).resolve()
    if not node.exists():
        raise LinkError(f"{folder / found[0]} names {node}, which is gone (unplugged?)")
    return node


def _serial_of(name: str) -> str:
    """`usb-FTDI_FT232R_USB_UART_A6008isP-if00-port0` -> `A6008isP`."""
    return name.rsplit("-if", 1)[0].rsplit("_", 1)[-1]


class UsbSerialLink(SerialLink):
    """A serial port found by its adapter's USB serial number at each opening."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.serial_number, _, self.interface = url.split("://", 1)[1].strip("/").partition("/")

    def port_url(self) -> str:
        return str(find_by_serial(self.serial_number, self.interface))


register_transport("usb", UsbSerialLink)
