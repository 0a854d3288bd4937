"""A line to one Modbus TCP instrument (unit), through pymodbus's synchronous client.

    modbus://192.168.1.20:502/1        unit 1 at 192.168.1.20, port 502
    modbus://192.168.1.20              the same: port 502 and unit 1 are the defaults

Modbus is not a byte stream the driver frames itself: pymodbus builds every request and checks
every reply (transaction id, unit, function), so a `ModbusLink` is a `Line` (shared, reconnected
once for all its devices, see line.py) that offers register operations, not a byte `Link`:

    link.read_input_registers(0x18C0, 4)      -> [0x3FC0, 0x0000, 0x4000, 0x0000]
    float32_values([0x3FC0, 0x0000, 0x4000, 0x0000])  -> [1.5, 2.0]   (core/registers.py)
    link.write_registers(0x0100, [1, 2])

As on the byte links: the line's lock is held around each request, every request has a
deadline (the line's `timeout`, or the one given), a silent or dropped instrument is a
`LinkError` and a reply pymodbus cannot make sense of a `GarbledReply` (the line is closed; its
devices go FAULT and reconnect), and a Modbus exception reply is an `InstrumentError` naming
the exception ("ILLEGAL DATA ADDRESS"): that request fails, the line stays up. The scheme
registers itself: `line_for_url("modbus://...")` loads this module.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from .errors import GarbledReply, InstrumentError, LinkError, RejectedValue
from .line import Line, register_transport

SCHEME = "modbus://"
DEFAULT_PORT = 502
DEFAULT_UNIT = 1
#: Most registers one read (function 3 or 4) and one write (function 16) may carry.
MAX_READ = 125
MAX_WRITE = 123

#: Exception codes of the Modbus application protocol (V1.1b3, section 7), by their names there.
EXCEPTION_NAMES = {
    0x01: "ILLEGAL FUNCTION",
    0x02: "ILLEGAL DATA ADDRESS",
    0x03: "ILLEGAL DATA VALUE",
    0x04: "SERVER DEVICE FAILURE",
    0x05: "ACKNOWLEDGE",
    0x06: "SERVER DEVICE BUSY",
    0x08: "MEMORY PARITY ERROR",
    0x0A: "GATEWAY PATH UNAVAILABLE",
    0x0B: "GATEWAY TARGET DEVICE FAILED TO RESPOND",
}

def parse_modbus_url(url: str) -> tuple[str, int, int]:
    """(host, port, unit) of `modbus://host[:port][/unit]`."""
    example = "e.g. modbus://192.168.1.20:502/1"
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        port = -1
    unit = parts.path.strip("/") or str(DEFAULT_UNIT)
    if parts.scheme != "modbus" or not parts.hostname or port < 0 or not unit.isdigit() or int(unit) > 255:
        raise ValueError(f"{url!r} is not modbus://<host>[:<port>][/<unit 0 to 255>], {example}")
    return parts.hostname, port, int(unit)


class ModbusLink(Line):
    """One unit on a Modbus TCP server: register reads and writes, one at a time under the lock."""

    def __init__(self, url: str, *, timeout: float = 1.0, **_byte_stream_settings: Any) -> None:
        """The settings of byte streams (framing, serial options) have no meaning here."""
        super().__init__(url, timeout=timeout)
        self.host, self.port, self.unit = parse_modbus_url(url)
        self._client: ModbusTcpClient | None = None

    @property
    def is_open(self) -> bool:
        return self._client is not None

    def open(self) -> None:
        """Connect to the server; raises `LinkError` saying why it could not."""
        with self.lock:
            self.close()
            # the socket is made here, not by pymodbus, so that the reason of a failure is kept
            try:
                connection = socket.create_connection((self.host, self.port), timeout=self.timeout)
            except OSError as exc:
                raise LinkError(f"cannot connect to {self.url}: {exc.strerror or exc}") from exc
            client = ModbusTcpClient(self.host, port=self.port, timeout=self.timeout, retries=0)
            client.socket = connection
            self._client = client

    def close(self) -> None:
        with self.lock:
            client, self._client = self._client, None
            if client is not None:
                client.close()

    # -- register operations ---------------------------------------------------------------------

    def read_input_registers(self, address: int, count: int, *, timeout: float | None = None) -> list[int]:
        """`count` input registers from `address` (function 4)."""
        _check_range(address, count, MAX_READ)
        return self._registers(
            f"read of {count} input register(s) at {address:#06x}", count, timeout,
            lambda client: client.read_input_registers(address, count=count, device_id=self.unit),
        )

    def read_holding_registers(self, address: int, count: int, *, timeout: float | None = None) -> list[int]:
        """`count` holding registers from `address` (function 3)."""
        _check_range(address, count, MAX_READ)
        return self._registers(
            f"read of {count} holding register(s) at {address:#06x}", count, timeout,
            lambda client: client.read_holding_registers(address, count=count, device_id=self.unit),
        )

    def write_registers(self, address: int, values: Sequence[int], *, timeout: float | None = None) -> None:
        """Write `values` to the holding registers from `address` (function 16)."""
        _check_range(address, len(values), MAX_WRITE)
        if bad := [value for value in values if not 0 <= value <= 0xFFFF]:
            raise RejectedValue(f"register values must be 0 to 65535, not {bad[0]}")
        self._request(
            f"write of {len(values)} register(s) at {address:#06x}", timeout,
            lambda client: client.write_registers(address, list(values), device_id=self.unit),
        )

    # -- internals --------------------------------------------------------------------------------

    def _registers(
        self, what: str, count: int, timeout: float | None, call: Callable[[ModbusTcpClient], ModbusPDU]
    ) -> list[int]:
        registers = list(self._request(what, timeout, call).registers)
        if len(registers) != count:
            raise self.lost(GarbledReply(f"{self.url}: {what} answered with {len(registers)} register(s)"))
        return registers

    def _request(
        self, what: str, timeout: float | None, call: Callable[[ModbusTcpClient], ModbusPDU]
    ) -> ModbusPDU:
        seconds = self.timeout if timeout is None else timeout
        with self.lock:
            client = self._client
            if client is None:
                raise LinkError(f"{self.url} is not connected")
            client.comm_params.timeout_connect = seconds  # pymodbus's deadline for the reply
            try:
                response = call(client)
            except ModbusIOException as exc:  # nothing (or nothing that fits) within the deadline
                raise self.lost(LinkError(f"{self.url}: no valid reply to the {what} within {seconds:g} s")) from exc
            except (ConnectionException, OSError) as exc:
                raise self.lost(LinkError(f"{self.url}: connection lost during the {what}")) from exc
            except ModbusException as exc:
                raise self.lost(GarbledReply(f"{self.url}: {what}: {exc}")) from exc
        if response.isError():
            code = getattr(response, "exception_code", 0)
            name = EXCEPTION_NAMES.get(code, "an exception unknown to the Modbus specification")
            raise InstrumentError(
                f"{self.url}: unit {self.unit} refused the {what}: Modbus exception {code} {name}"
            )
        return response


register_transport("modbus", ModbusLink)


def _check_range(address: int, count: int, most: int) -> None:
    if not 1 <= count <= most:
        raise RejectedValue(f"a Modbus request carries 1 to {most} registers, not {count}")
    if not 0 <= address <= 0xFFFF - count + 1:
        raise RejectedValue(f"register addresses are 0 to 0xFFFF; {count} from {address:#x} do not fit")
