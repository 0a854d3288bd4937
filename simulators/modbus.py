"""A Modbus TCP instrument served by pymodbus's own asyncio server, with the simulator core's
simulated clock, control port and faults.

A subclass declares its register map (`register_map`, pymodbus `SimData` blocks: what is not in
it is answered ILLEGAL DATA ADDRESS, as pymodbus answers it) and fills the registers a request
reads from its physics (`read_registers`); writes reach `write_registers`. pymodbus frames,
checks and answers every request; this class only supplies values and faults:

    drop, offline        the core's: connections closed, new ones refused
    delay SECONDS        the reply waits this long
    exception on|off|N   every request answered with Modbus exception N (on: 4, SERVER DEVICE FAILURE)
    garbage, truncate    the reply's bytes replaced by random ones, or cut in half
    freeze NAME          the core's: a reading held at its present value

Modbus TCP has no checksum, and pymodbus answers as the unit it was asked, so the core's
`checksum` and `address` faults are refused here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import SimData, SimDevice

from .core import Simulator, _on_off

#: Function codes that read registers (holding, input) and write them (single, multiple).
READS = (3, 4)
WRITES = (6, 16)


class ModbusSimulator(Simulator):
    """An instrument that speaks Modbus TCP; subclasses give the register map and its values."""

    default_port: ClassVar[int] = 502

    def __init__(self, *, seed: int | None = None, speed: float = 1.0) -> None:
        super().__init__(seed=seed, speed=speed)
        #: Every request that reached the instrument, as pymodbus decoded it (function_code,
        #: address, count, registers...).
        self.received: list[ModbusPDU] = []
        #: The exception code every request is answered with, or None.
        self.exception: int | None = None

    # -- what an instrument provides ------------------------------------------------------------

    def register_map(self) -> list[SimData]:
        """The instrument's registers, as pymodbus blocks (read-only ones marked `readonly`)."""
        raise NotImplementedError

    def read_registers(self, function_code: int, address: int, count: int) -> list[int]:
        """The present values of `count` registers from `address` (called under the lock)."""
        raise NotImplementedError

    def write_registers(self, function_code: int, address: int, values: list[int]) -> None:
        """A client wrote `values` from `address` (called under the lock, before they are stored)."""

    def handle(self, frame: bytes) -> bytes | None:
        raise NotImplementedError("a Modbus simulator's requests are served by pymodbus's server")

    def send_unasked(self, data: bytes) -> None:
        raise NotImplementedError("a Modbus server speaks only when asked")

    def link_url(self, host: str, port: int) -> str:
        return f"modbus://{host}:{port}/1"

    # -- serving ----------------------------------------------------------------------------

    async def start_instrument_server(self, host: str, port: int) -> tuple[int, Callable[[], None]]:
        # id 0: the instrument answers whatever unit it is asked as, as Modbus TCP devices do
        device = SimDevice(0, simdata=self.register_map(), action=self._access)
        server = _Server(self, device, address=(host, port))
        if not await server.listen():
            raise OSError(f"the {self.kind} simulator cannot listen on {host}:{port} (see pymodbus's log)")
        return server.transport.sockets[0].getsockname()[1], server.close

    async def _access(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        written: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus's hook on every register access: faults first, then the present values."""
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.exception is not None:
            return ExcCodes(self.exception)
        with self.lock:
            self.advance()
            offset = address - start_address
            if written is not None and function_code in WRITES:
                self.write_registers(function_code, address, [int(value) for value in written])
            elif function_code in READS:
                registers[offset : offset + count] = self.read_registers(function_code, address, count)
        return None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        """The bytes of each reply, spoilt by the garbage and reply faults in force."""
        if not sending:
            return data
        for fault in sorted(self.faults):
            data = self.spoil(fault, data)
        return self._garbage(len(data)) if self.garbage else data

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self.received.append(pdu)
        return pdu

    # -- faults -----------------------------------------------------------------------------

    def clear(self) -> None:
        with self.lock:
            super().clear()
            self.exception = None

    def _control_exception(self, state: str) -> None:
        if state.isdigit():
            code = int(state)
            if code not in set(ExcCodes):
                raise ValueError(f"Modbus exception codes are {', '.join(str(int(c)) for c in ExcCodes)}")
            self.exception = code
        else:
            self.exception = ExcCodes.DEVICE_FAILURE if _on_off(state) else None

    def _control_status(self) -> str:
        exception = "off" if self.exception is None else str(self.exception)
        return f"{Simulator._control_status(self)} exception={exception}"

    def _control_help(self) -> str:
        return f"{Simulator._control_help(self)} | exception on|off|CODE"

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **Simulator._CONTROL,
        "exception": _control_exception,
        "clear": clear,
        "status": _control_status,
        "help": _control_help,
    }


class _Server(ModbusTcpServer):
    """pymodbus's TCP server whose connections the simulator can drop and refuse."""

    def __init__(self, simulator: ModbusSimulator, device: SimDevice, **options: Any) -> None:
        self.simulator = simulator
        super().__init__(
            device, trace_packet=simulator._trace_packet, trace_pdu=simulator._trace_pdu, **options
        )

    def callback_new_connection(self) -> ServerRequestHandler:
        return _Connection(self)


class _Connection(ServerRequestHandler):
    """One client's connection, filed with the simulator's instrument connections."""

    def __init__(self, server: _Server) -> None:
        super().__init__(server, server.trace_packet, server.trace_pdu, server.trace_connect)
        self.simulator = server.simulator

    def callback_connected(self) -> None:
        super().callback_connected()
        if self.simulator.offline:
            self.transport.abort()
            return
        self.simulator._clients.add(self)
        self.simulator.connections += 1

    def callback_disconnected(self, exc: Exception | None) -> None:
        self.simulator._clients.discard(self)
        super().callback_disconnected(exc)


__all__ = ["ModbusSimulator", "SimData"]
