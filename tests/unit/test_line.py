"""Lines (device_servers/core/line.py) over real sockets to the Zaber simulator: one line per URL
and process, attached and released by devices, unasked frames heard by every listener, a failure
told to every device once, conflicting settings refused, transports found by their scheme."""

from __future__ import annotations

import subprocess
import sys

import pytest

from device_servers.core.errors import LinkError
from device_servers.core.line import LineConflict, attach_line, line_for_url
from device_servers.core.link import SerialLink
from device_servers.zaber.protocol import FRAMING
from simulators import run_in_thread
from simulators.zaber import ZaberSimulator
from tangolab.scripting import wait_until

SETTINGS = {"framing": FRAMING, "write_terminator": b"", "timeout": 0.5, "serial_options": {"baudrate": 9600}}


@pytest.fixture
def chain():
    with run_in_thread(ZaberSimulator(devices=2, seed=1)) as running:
        yield running


def test_devices_naming_one_url_share_one_line_closed_when_the_last_leaves(chain):
    first = attach_line(chain.url, "lab/zaber/1", **SETTINGS)
    second = attach_line(chain.url, "lab/zaber/2", **SETTINGS)
    assert second is first and first.users == ["lab/zaber/1", "lab/zaber/2"]
    assert first.connect() == second.connect() == 1  # opened once
    first.release("lab/zaber/1")  # an Init or a deletion of one device
    assert second.is_open
    second.release("lab/zaber/2")
    assert not second.is_open
    again = attach_line(chain.url, "lab/zaber/1", **SETTINGS)
    assert again is not first
    again.release("lab/zaber/1")


def test_other_settings_for_a_line_are_refused_naming_both_devices(chain):
    line = attach_line(chain.url, "lab/zaber/1", **SETTINGS)
    try:
        with pytest.raises(LineConflict, match=r"lab/zaber/2 and lab/zaber/1 .* baudrate 9600 for lab/zaber/1, 115200"):
            attach_line(chain.url, "lab/zaber/2", **{**SETTINGS, "serial_options": {"baudrate": 115200}})
        assert line.users == ["lab/zaber/1"]
    finally:
        line.release("lab/zaber/1")


def test_every_listener_hears_every_unasked_frame(chain):
    line = SerialLink(chain.url, **SETTINGS)
    heard: dict[str, list[bytes]] = {"one": [], "two": []}
    line.listen("one", heard["one"].append)
    line.listen("two", heard["two"].append)
    line.listen("two", heard["two"].append)  # again under its key: replaced, not doubled
    with line:
        line.transaction(bytes.fromhex("01 01 00 00 00 00"), reply=False)  # home device 1: it answers when home
        wait_until(lambda: line.route_waiting() or heard["one"], 10, what="the unasked end of the homing")
    assert heard["one"] == heard["two"] == [bytes.fromhex("01 01 00 00 00 00")]


def test_a_failure_is_told_to_every_device_once_and_an_old_one_does_not_close_a_new_connection(chain):
    told: list[tuple[str, str]] = []
    line = attach_line(chain.url, "lab/zaber/1", lambda error: told.append(("1", str(error))), **SETTINGS)
    attach_line(chain.url, "lab/zaber/2", lambda error: told.append(("2", str(error))), **SETTINGS)
    try:
        generation = line.connect()
        line.transaction(bytes.fromhex("01 3c 00 00 00 00"))  # the simulator serves this connection
        chain.simulator.drop()
        with pytest.raises(LinkError):
            line.transaction(bytes.fromhex("01 3c 00 00 00 00"))
            line.transaction(bytes.fromhex("01 3c 00 00 00 00"))
        assert sorted(name for name, _ in told) == ["1", "2"]
        line.lost(LinkError("seen late"), generation)  # already closed: nobody is told again
        assert len(told) == 2
        wait_until(lambda: _connects(line), 10, what="the line reopened")
        assert line.generation == generation + 1
        line.lost(LinkError("a failure of the old connection"), generation)
        assert line.is_open and len(told) == 2
    finally:
        line.release("lab/zaber/1")
        line.release("lab/zaber/2")


def _connects(line) -> bool:
    try:
        line.connect()
        return True
    except LinkError:
        return False


def test_transports_are_found_by_their_scheme_and_an_unknown_one_is_named():
    with pytest.raises(ValueError, match=r"no transport for 'nope://x': no module device_servers.core.nope_link"):
        line_for_url("nope://x")
    assert type(line_for_url("modbus://127.0.0.1:1/1")).__name__ == "ModbusLink"


def test_the_byte_stream_base_does_not_import_its_transports():
    """link.py knows no GPIB nor Modbus: those register their schemes when first named."""
    code = (
        "import sys; import device_servers.core.link, device_servers.core.hardware; "
        "print(sorted(m for m in sys.modules if m.endswith(('gpib_link', 'modbus_link'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
