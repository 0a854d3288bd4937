"""USB instruments found by serial number (`usb://<serial>`): the by-id lookup, and a device whose
cable is pulled for 5 s and put back under another node name, FAULT with the reason meanwhile and
ON again by itself.

A test folder stands in for /dev/serial/by-id (TANGOLAB_SERIAL_BY_ID); the "adapter" is a
pseudo-terminal whose other end relays bytes to the Cornerstone simulator's TCP port: its node
(/dev/pts/N) is a real serial port to pyserial, gone when the cable is pulled, and another one
(/dev/pts/M) when it comes back."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.core.errors import LinkError
from device_servers.core.usb_link import BY_ID_ENV, find_by_serial
from device_servers.monochromator.device import Monochromator
from simulators import run_in_thread
from simulators.monochromator import CornerstoneSimulator
from tangolab.scripting import wait_until

SERIAL = "FT6Z4R1Q"
LINK_NAME = f"usb-FTDI_USB-RS232_Cable_{SERIAL}-if00-port0"


class Cable:
    """A USB-serial adapter on a pseudo-terminal, relayed to a TCP port, that can be pulled out and
    plugged in again (its by-id link made and removed in `folder`)."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.node: str | None = None
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def plug(self, elsewhere_than: str | None = None) -> str:
        """Plug in; the node is another than `elsewhere_than` (as the kernel may number it again)."""
        held = []
        master, slave = os.openpty()
        while os.ttyname(slave) == elsewhere_than:
            held.append((master, slave))
            master, slave = os.openpty()
        for fd in (fd for pair in held for fd in pair):
            os.close(fd)
        tty.setraw(slave)
        self.node = os.ttyname(slave)
        upstream = socket.create_connection(("127.0.0.1", self.port))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._relay, args=(master, slave, upstream, self._stop), daemon=True)
        self._thread.start()
        (self.folder / LINK_NAME).symlink_to(self.node)
        return self.node

    def pull(self) -> None:
        (self.folder / LINK_NAME).unlink()
        self._stop.set()
        self._thread.join(10)

    @staticmethod
    def _relay(master: int, slave: int, upstream: socket.socket, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                ready, _, _ = select.select([master, upstream], [], [], 0.05)
                if master in ready:
                    upstream.sendall(os.read(master, 4096))
                if upstream in ready:
                    os.write(master, upstream.recv(4096))
        except OSError:
            pass
        finally:
            for fd in (master, slave):
                os.close(fd)
            upstream.close()


def test_an_adapter_is_found_by_its_serial_number_and_its_interface(tmp_path):
    for name in ("usb-FTDI_FT232R_USB_UART_A6008isP-if00-port0", "usb-FTDI_Quad_RS232-HS_FT4ABCDE-if00-port0",
                 "usb-FTDI_Quad_RS232-HS_FT4ABCDE-if01-port0"):
        (tmp_path / name).symlink_to("/dev/null")
    assert find_by_serial("A6008isP", folder=tmp_path) == Path("/dev/null")
    assert find_by_serial("FT4ABCDE", "if01", folder=tmp_path) == Path("/dev/null")
    with pytest.raises(LinkError, match="2 interfaces with serial number FT4ABCDE .* name one: usb://FT4ABCDE/if00"):
        find_by_serial("FT4ABCDE", folder=tmp_path)
    with pytest.raises(LinkError, match="no USB serial adapter with serial number 6008isP .*unplugged"):
        find_by_serial("6008isP", folder=tmp_path)


@pytest.fixture(scope="module")
def cable(tmp_path_factory) -> Iterator[Cable]:
    folder = tmp_path_factory.mktemp("by-id")
    with run_in_thread(CornerstoneSimulator(seed=5)) as simulator:
        cable = Cable(folder, simulator.port)
        cable.plug()
        yield cable
        if (folder / LINK_NAME).is_symlink():
            cable.pull()


@pytest.fixture(scope="module")
def device(cable) -> Iterator[tango.DeviceProxy]:
    os.environ[BY_ID_ENV] = str(cable.folder)  # the device's process inherits it
    try:
        properties = {"Url": f"usb://{SERIAL}", "PollPeriod": 0.2, "Timeout": 0.5}
        with DeviceTestContext(Monochromator, properties=properties, process=True, timeout=30) as proxy:
            wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="the monochromator ON over the adapter")
            yield proxy
    finally:
        del os.environ[BY_ID_ENV]


def test_a_cable_pulled_for_5_s_and_put_back_under_another_name_reconnects_by_itself(cable, device):
    first_node = cable.node
    assert device.identity == "CS260B,SN 00471,VER 1.08"
    cable.pull()
    pulled = time.monotonic()
    wait_until(lambda: device.state() == tango.DevState.FAULT, 20, what="FAULT once the cable is out")
    wait_until(lambda: f"no USB serial adapter with serial number {SERIAL}" in device.status(), 20,
               what="the reason in the status")
    time.sleep(max(0.0, 5.0 - (time.monotonic() - pulled)))  # the scenario: out for 5 s
    assert device.state() == tango.DevState.FAULT
    second_node = cable.plug(elsewhere_than=first_node)
    returned = time.monotonic()
    wait_until(lambda: device.state() == tango.DevState.ON, 30, what="ON again after the cable is back")
    print(f"\nback ON {time.monotonic() - returned:.1f} s after the cable returned as {second_node} "
          f"(was {first_node})")
    assert second_node != first_node
    device.wavelength = 510.0  # and it works
    wait_until(lambda: device.state() == tango.DevState.ON and device.wavelength == 510.0, 30, what="moved")
