"""Prologix GPIB-ETHERNET controller, simulated: its `++` command language in front of GPIB instruments.

The protocol follows the Prologix GPIB-ETHERNET Controller User Manual (v1.6.6.0, 2013), with
the details the manual leaves open taken from public drivers (pyvisa-py's Prologix sessions) and
the lab software this project replaces (ccdlab's GPIB multiplexer):

- TCP port 1234. Bytes from the host end a message at an unescaped CR or LF; a line starting
  with `++` is a command for the controller, anything else is data for the instrument at the
  current address (`++addr`). ESC (0x1B) makes the next byte data, so CR, LF, ESC and `+` can
  reach an instrument (`ESC LF` is a line feed sent to it, not the end of the message).
- Data goes out on GPIB followed by the `++eos` terminator (0 CR LF, 1 CR, 2 LF, 3 none) with
  EOI on the last byte when `++eoi 1`. With `++auto 1` the instrument is addressed to talk after
  every message (read-after-write); with `++auto 0` the host asks with `++read`.
- `++read eoi` reads until the instrument asserts EOI, `++read <char>` until that character,
  `++read` until a time-out; `++read_tmo_ms` (1 to 3000 ms) is how long the controller waits
  for a byte. When nothing comes within it the read ends and the host receives nothing at all:
  the controller has no error reply, the host sees silence. What the instrument sends reaches
  the host as is (with `++eot_enable 1`, `++eot_char` is added where EOI was seen).
- Replies of the controller's own queries (`++addr`, `++ver`, `++spoll`...) end in CR LF; setting
  commands answer nothing; a `++` command the controller does not know answers
  `Unrecognized command`. A setting out of range is ignored.
- One TCP client at a time: the controller has a single socket on port 1234. The manual states
  one connection; whether a real box refuses a second at connect or accepts and resets it was
  not established from public sources. Here a second client is accepted and closed at once
  (reset) while the first keeps working: either way the second client gets no service.

Instruments are `GpibInstrument`s at their addresses. A message to the current address goes to
that instrument's `handle`; the reply is ready `reply_time(message)` later, and reading it costs
bus time (`BUS_OVERHEAD_S` plus `BUS_BYTE_S` per byte). All waits are asyncio sleeps: the
controller serves its one client in order, as the real one does, and never blocks the loop.

Control port: the simulator core's faults (`drop`, `offline`, `delay`, `garbage`, `truncate`...)
act on the controller's TCP link; `mute ADDRESS on|off` makes one instrument stop answering (no
listener, no talker at that address: its reads time out) while the others keep working.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from device_servers.core.framing import BlockLines, Framing
from device_servers.gpib.prologix_protocol import EOS_TERMINATORS, HOST_MESSAGES, READ_TIMEOUT_MS, TCP_PORT

from .core import Simulator
from .gpib import GpibInstrument

VERSION = "Prologix GPIB-ETHERNET Controller version 01.06.06.00"
#: Addressing the instrument to talk and ending the read, per GPIB transfer.
BUS_OVERHEAD_S = 0.002
#: Byte transfer time on the bus (the Prologix moves roughly 100 kB/s to the host).
BUS_BYTE_S = 1e-5
#: `++rst` reboots the controller; input during this time is ignored.
RESET_S = 5.0
#: The demo lab's bus: a Keithley 6485 at 14, a Keithley 487 at 15, an HP 33120A generator at 10.
DEMO_ADDRESSES = {"Keithley6485": 14, "Keithley487": 15}
GENERATOR_ADDRESS = 10
#: What an instrument receives: a message up to its LF, binary blocks in it kept whole.
INSTRUMENT_MESSAGE = BlockLines(b"\n")


@dataclass
class Settings:
    """The controller's configuration, as `++savecfg` keeps it; power-on values from the manual."""

    address: int = 0
    auto: int = 0
    eoi: int = 1
    eos: int = 0
    eot_enable: int = 0
    eot_char: int = 0
    mode: int = 1
    read_tmo_ms: int = 500
    lon: int = 0
    savecfg: int = 1


@dataclass
class Pending:
    """An instrument's reply, ready on the bus from `ready_at` (wall-clock monotonic)."""

    text: bytes
    ready_at: float


def _setting(name: str, low: int, high: int) -> Callable:
    """A `++` command that sets `name` (ignored when out of range) or, without argument, answers it."""

    async def command(simulator: PrologixSimulator, value: str | None = None) -> bytes | None:
        if value is None:
            return f"{getattr(simulator.settings, name)}\r\n".encode()
        number = _integer(value)
        if number is not None and low <= number <= high:
            setattr(simulator.settings, name, number)
            if name == "savecfg" or simulator.settings.savecfg:
                simulator.saved = Settings(**vars(simulator.settings))
        return None

    return command


class PrologixSimulator(Simulator):
    """Prologix GPIB-ETHERNET controller with GPIB instruments behind it."""

    kind: ClassVar[str] = "prologix"
    default_port: ClassVar[int] = TCP_PORT
    framing: ClassVar[Framing] = HOST_MESSAGES
    garbage_end: ClassVar[bytes] = b"\n"

    def __init__(
        self,
        instruments: dict[int, GpibInstrument] | None = None,
        *,
        seed: int | None = None,
        speed: float = 1.0,
    ) -> None:
        super().__init__(seed=seed, speed=speed)
        if instruments is None:
            instruments = demo_instruments(seed)
        for address, instrument in instruments.items():
            if address != instrument.address:
                raise ValueError(f"instrument {instrument.model} has address {instrument.address}, not {address}")
        self.instruments = dict(instruments)
        self.settings = Settings()
        self.saved = Settings()
        #: Addresses whose instrument does not answer (a `mute` fault).
        self.muted: set[int] = set()
        self._pending: dict[int, Pending] = {}
        self._owner: asyncio.StreamWriter | None = None
        self._deaf_until = 0.0

    # -- physics and readings -----------------------------------------------------------------

    def step(self, dt: float) -> None:
        for instrument in self.instruments.values():
            instrument.step(dt)

    def readings(self) -> dict[str, object]:
        return {
            f"{address}.{name}": value
            for address, instrument in self.instruments.items()
            for name, value in instrument.readings().items()
        }

    # -- faults -------------------------------------------------------------------------------

    def freeze(self, name: str) -> None:
        """Hold `ADDRESS.reading` (e.g. `14.current`) in the instrument that reads it, when the
        instrument keeps a `frozen` dict of its own readings (the Keithley simulators do)."""
        with self.lock:
            name = self._reading_name(name)
            instrument, reading = self._frozen_in(name)
            instrument.frozen[reading] = instrument.readings()[reading]
            self.frozen[name] = instrument.frozen[reading]

    def unfreeze(self, name: str) -> None:
        with self.lock:
            name = self._reading_name(name)
            instrument, reading = self._frozen_in(name)
            instrument.frozen.pop(reading, None)
            self.frozen.pop(name, None)

    def _frozen_in(self, name: str) -> tuple[GpibInstrument, str]:
        address, _, reading = name.partition(".")
        instrument = self.instruments[int(address)]
        if not isinstance(getattr(instrument, "frozen", None), dict):
            raise ValueError(f"the {instrument.model} at {address} cannot hold a reading")  # noqa: TRY004
        return instrument, reading

    def mute(self, address: int, muted: bool = True) -> None:
        """Make the instrument at `address` stop answering (or answer again)."""
        if address not in self.instruments:
            raise ValueError(f"no instrument at address {address}; addresses: {sorted(self.instruments)}")
        (self.muted.add if muted else self.muted.discard)(address)

    def clear(self) -> None:
        with self.lock:
            super().clear()
            self.muted.clear()
            for instrument in self.instruments.values():
                if isinstance(getattr(instrument, "frozen", None), dict):
                    instrument.frozen.clear()

    def _control_mute(self, address: str, state: str = "on") -> None:
        self.mute(int(address), _on_off(state))

    def _control_status(self) -> str:
        muted = ",".join(str(address) for address in sorted(self.muted)) or "none"
        return f"{Simulator._control_status(self)} muted={muted}"

    def _control_help(self) -> str:
        return f"{Simulator._control_help(self)} | mute ADDRESS on|off (addresses: {sorted(self.instruments)})"

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **Simulator._CONTROL,
        "mute": _control_mute,
        "clear": clear,
        "status": _control_status,
        "help": _control_help,
    }

    # -- serving ------------------------------------------------------------------------------

    def handle(self, frame: bytes) -> bytes | None:
        """Not used: a read waits for the instrument, so messages are served in `_serve_client`."""
        raise NotImplementedError("PrologixSimulator serves each message with `execute`")

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._owner is not None:  # the controller's one socket is taken
            return
        self._owner = writer
        try:
            buffer = b""
            while True:
                while (parts := self.framing.split(buffer)) is not None:
                    frame, buffer = parts
                    await self._answer(writer, self.framing.payload(frame))
                data = await reader.read(4096)
                if not data:
                    return
                buffer += data
        finally:
            self._owner = None

    async def _answer(self, writer: asyncio.StreamWriter, message: bytes) -> None:
        if time.monotonic() < self._deaf_until or not message:
            return  # an empty message: the LF of a CR LF pair
        with self.lock:
            self.advance()
            self.received.append(message)
        reply = await self.execute(message)
        if reply is None:
            return
        for fault in sorted(self.faults):
            reply = self.spoil(fault, reply)
        if self.delay:
            await asyncio.sleep(self.delay)
        writer.write(self._garbage(len(reply)) if self.garbage else reply)
        await writer.drain()

    async def execute(self, message: bytes) -> bytes | None:
        """Carry out one host message; return what the controller sends back, if anything."""
        if not message.startswith(b"++"):
            await self._send_to_instrument(message)
            if self.settings.auto and self.settings.mode == 1:
                return await self._read(eoi=True)
            return None
        verb, *args = message[2:].decode("ascii", errors="replace").split()
        command = self._COMMANDS.get(verb.lower())
        if command is None:
            return b"Unrecognized command\r\n"
        return await command(self, *args)

    # -- the bus ------------------------------------------------------------------------------

    def _instrument(self) -> GpibInstrument | None:
        """The instrument that answers at the current address, if any."""
        address = self.settings.address
        return None if address in self.muted else self.instruments.get(address)

    async def _send_to_instrument(self, data: bytes) -> None:
        if self.settings.mode != 1:
            return
        message = data + EOS_TERMINATORS[self.settings.eos]
        instrument = self._instrument()
        await asyncio.sleep((BUS_OVERHEAD_S + BUS_BYTE_S * len(message)) / self.speed)
        if instrument is None:
            return  # no listener: the bytes go nowhere
        text = INSTRUMENT_MESSAGE.payload(message).decode("latin-1")
        with self.lock:
            self.advance()
            instrument.received.append(text)
            reply = instrument.handle(text)
            if reply is None:
                return
            terminator = getattr(instrument, "terminator", "\n")
            ready_at = time.monotonic() + instrument.reply_time(text) / self.speed
            self._pending[instrument.address] = Pending((reply + terminator).encode("latin-1"), ready_at)

    async def _read(self, *, eoi: bool = False, until: int | None = None) -> bytes | None:
        """Address the instrument to talk and pass on what it says, within `read_tmo_ms`."""
        if self.settings.mode != 1:
            return None
        timeout = self.settings.read_tmo_ms / 1000 / self.speed
        instrument = self._instrument()
        pending = None if instrument is None else self._pending.get(instrument.address)
        wait = timeout if pending is None else pending.ready_at - time.monotonic()
        if pending is None or wait > timeout:
            await asyncio.sleep(timeout)
            return None  # nothing came: the read ends without a byte to the host
        del self._pending[instrument.address]
        text = pending.text
        if until is not None and until in text:
            text = text[: text.index(until) + 1]
        await asyncio.sleep(max(wait, 0.0) + (BUS_OVERHEAD_S + BUS_BYTE_S * len(text)) / self.speed)
        if eoi and self.settings.eot_enable:
            text += bytes([self.settings.eot_char])
        if not eoi and until is None:
            await asyncio.sleep(timeout)  # a plain ++read goes on until the bus is silent
        return text

    # -- the ++ commands ----------------------------------------------------------------------

    def _changed(self) -> None:
        """With `++savecfg 1` (the default) the manual has every setting saved as it changes."""
        if self.settings.savecfg:
            self.saved = Settings(**vars(self.settings))

    async def _command_addr(self, primary: str | None = None, secondary: str | None = None) -> bytes | None:
        if primary is None:
            return f"{self.settings.address}\r\n".encode()
        number = _integer(primary)
        if number is not None and 0 <= number <= 30:
            self.settings.address = number
            self._changed()
        return None

    async def _command_read(self, until: str | None = None) -> bytes | None:
        if until is None:
            return await self._read()
        if until.lower() == "eoi":
            return await self._read(eoi=True)
        character = _integer(until)
        return await self._read(until=character) if character is not None and 0 <= character <= 255 else None

    async def _command_clr(self) -> None:
        """Selected Device Clear: the instrument drops its output queue."""
        instrument = self._instrument()
        if instrument is not None:
            self._pending.pop(instrument.address, None)
            device_clear = getattr(instrument, "device_clear", None)
            if device_clear is not None:
                with self.lock:
                    device_clear()
        await asyncio.sleep(BUS_OVERHEAD_S / self.speed)

    async def _command_bus(self, *_: str) -> None:
        """A bus line or addressed command with nothing the host can see (IFC, GTL, LLO, GET)."""
        await asyncio.sleep(BUS_OVERHEAD_S / self.speed)

    async def _command_spoll(self, primary: str | None = None, secondary: str | None = None) -> bytes | None:
        """Serial poll: the status byte, 16 (MAV) when a reply waits; silence when no one answers."""
        address = self.settings.address if primary is None else _integer(primary)
        instrument = None if address in self.muted else self.instruments.get(address)
        if instrument is None:
            await asyncio.sleep(self.settings.read_tmo_ms / 1000 / self.speed)
            return None
        await asyncio.sleep(BUS_OVERHEAD_S / self.speed)
        status = getattr(instrument, "status_byte", 0)
        if address in self._pending:
            status |= 0x10
        return f"{status}\r\n".encode()

    async def _command_srq(self) -> bytes:
        return b"0\r\n"

    async def _command_status(self, value: str | None = None) -> bytes | None:
        return b"0\r\n" if value is None else None

    async def _command_ver(self) -> bytes:
        return f"{VERSION}\r\n".encode()

    async def _command_rst(self) -> None:
        """Power-on reset: the saved configuration returns; the controller ignores input meanwhile."""
        self.settings = Settings(**vars(self.saved))
        self._pending.clear()
        self._deaf_until = time.monotonic() + RESET_S / self.speed

    async def _command_help(self) -> bytes:
        return ("".join(f"++{name}\r\n" for name in self._COMMANDS)).encode()

    _COMMANDS: ClassVar[dict[str, Callable]] = {
        "addr": _command_addr,
        "auto": _setting("auto", 0, 1),
        "clr": _command_clr,
        "eoi": _setting("eoi", 0, 1),
        "eos": _setting("eos", 0, 3),
        "eot_enable": _setting("eot_enable", 0, 1),
        "eot_char": _setting("eot_char", 0, 255),
        "ifc": _command_bus,
        "llo": _command_bus,
        "loc": _command_bus,
        "lon": _setting("lon", 0, 1),
        "mode": _setting("mode", 0, 1),
        "read": _command_read,
        "read_tmo_ms": _setting("read_tmo_ms", *READ_TIMEOUT_MS),
        "rst": _command_rst,
        "savecfg": _setting("savecfg", 0, 1),
        "spoll": _command_spoll,
        "srq": _command_srq,
        "status": _command_status,
        "trg": _command_bus,
        "ver": _command_ver,
        "help": _command_help,
    }

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The demo lab's instruments only: a bus is configured in code (`instruments=`)."""


def demo_instruments(seed: int | None = None) -> dict[int, GpibInstrument]:
    """The demo lab's bus: a Keithley 6485 at 14, a Keithley 487 at 15 and an HP 33120A at 10
    (imported here, so this module works on its own with instruments given explicitly)."""
    from . import keithley
    from .hp33120a import Hp33120a

    instruments = [
        getattr(keithley, name)(address, seed=seed) for name, address in DEMO_ADDRESSES.items()
    ] + [Hp33120a(GENERATOR_ADDRESS, seed=seed)]
    return {instrument.address: instrument for instrument in instruments}


def _integer(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _on_off(state: str) -> bool:
    if state.lower() not in ("on", "off"):
        raise ValueError(f"expected on or off, not {state!r}")
    return state.lower() == "on"
