"""What every instrument simulator shares: TCP serving, simulated time, a control port, faults.

How bytes become messages is the instrument's: a `Simulator` cuts what it receives with its
`framing` (the same framings the drivers use) and answers each frame in `handle`;
`LineProtocolSimulator` does that for text instruments, one line at a time in `handle_line`.
Physics moves in `step`, advanced with the wall clock (times `speed`); `send_unasked` sends a
frame no one asked for (a stage reporting that it stopped). A second, plain-text control port
lets a person or a test inject what the instrument's own protocol cannot express: a dropped
connection, slow replies, garbage, a frozen reading, a spoilt checksum, a frame cut short, a
reply from the wrong address. A protocol that a library serves whole (Modbus TCP, through
pymodbus's server: `simulators.modbus.ModbusSimulator`) replaces the byte-stream server in
`start_instrument_server` and keeps the clock, the control port and the faults.

Control port, one command a line, each answered by one line (`OK`, a value, or `ERROR ...`)::

    drop                 close every open instrument connection now
    offline on|off       close new instrument connections at once (and drop current ones)
    delay SECONDS        wait this long before every reply (0 ends it)
    garbage on|off       reply random bytes instead of each answer
    checksum on|off      spoil the checksum of every reply
    truncate on|off      send only the first half of every reply
    address on|off       answer as an instrument at another address
    freeze NAME on|off   hold a named reading at its present value
    clear                end every fault
    status               the faults in force
    help                 the list of commands

Tests use the same faults in-process: `sim.drop()`, `sim.delay = 2.5`, `sim.garbage = True`,
`sim.freeze("A")`, `sim.faults.add("checksum")`, `sim.clear()`, with the simulator served by
`run_in_thread`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import ClassVar

from device_servers.core.framing import Framing, Lines

#: Bytes a garbage reply is drawn from: anything but line ends, so the client still reads a line.
GARBAGE = bytes(b for b in range(0x21, 0x100) if b != 0x7F)
#: Faults that spoil every reply in a way of the protocol's own (see `Simulator.spoil`).
REPLY_FAULTS = ("checksum", "truncate", "address")


@dataclass(frozen=True)
class Running:
    """Where a served simulator listens."""

    simulator: Simulator
    host: str
    port: int
    control_port: int

    @property
    def url(self) -> str:
        """The URL a driver's `Link` opens (`link_for_url`)."""
        return self.simulator.link_url(self.host, self.port)


def _reply_fault(fault: str) -> Callable[[Simulator, str], None]:
    """The control-port handler that switches the reply fault `fault` on or off."""

    def control(simulator: Simulator, state: str) -> None:
        if not _on_off(state):
            simulator.faults.discard(fault)
            return
        simulator.spoil(fault, b"\x00" * 8)  # refuses a fault the protocol has no place for
        simulator.faults.add(fault)

    return control


class Simulator:
    """An instrument on TCP, with simulated physics and injectable faults."""

    kind: ClassVar[str] = "simulator"
    #: The real instrument's TCP port: what `python -m simulators KIND` listens on by default.
    default_port: ClassVar[int] = 0
    #: How the requests the instrument receives are cut into frames.
    framing: ClassVar[Framing] = Lines(b"\n")
    #: What the instrument sends each new client before anything is asked (an adapter's welcome).
    greeting: bytes = b""
    #: Longest physics step in simulated seconds, so a long idle time integrates stably.
    max_step: ClassVar[float] = 0.1
    #: How often, in wall-clock seconds, the physics advances while no one is asking.
    tick: ClassVar[float] = 0.1

    def __init__(self, *, seed: int | None = None, speed: float = 1.0) -> None:
        self.random = random.Random(seed)
        self.speed = speed
        #: Held while a line is handled or the physics moves: faults set from a test thread are safe.
        self.lock = threading.RLock()
        #: Every request received on the instrument port, in order: tests check what reached the wire.
        self.received: list = []
        #: Instrument connections accepted so far: tests see how often a client (re)connected.
        self.connections = 0
        self.delay = 0.0
        self.garbage = False
        self.offline = False
        #: Reply faults in force, of REPLY_FAULTS.
        self.faults: set[str] = set()
        self.frozen: dict[str, object] = {}
        self._clock: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._controls: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what an instrument provides ------------------------------------------------------------

    def handle(self, frame: bytes) -> bytes | None:
        """The instrument's reply to one received frame, as sent on the wire; None: it stays silent."""
        raise NotImplementedError

    def spoil(self, fault: str, reply: bytes) -> bytes:
        """`reply` with a reply fault: a wrong checksum, cut short, or from another address.
        Cutting short works for every protocol; the other two are the instrument's to define."""
        if fault == "truncate":
            return reply[: max(1, len(reply) // 2)]
        raise ValueError(f"the {self.kind} simulator has no {fault} fault")

    def step(self, dt: float) -> None:
        """Move the physics on by `dt` simulated seconds."""

    def readings(self) -> dict[str, object]:
        """The readings that `freeze` can hold, by name, with their present values."""
        return {}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Declare the instrument's own command-line options (keyword arguments of `__init__`)."""

    def link_url(self, host: str, port: int) -> str:
        """The URL a driver's link opens to reach the instrument port at host:port."""
        return f"socket://{host}:{port}"

    async def start_instrument_server(self, host: str, port: int) -> tuple[int, Callable[[], None]]:
        """Listen for the instrument's clients on host:port (0: a free port); return the port and
        how to stop listening. By default a connection is a byte stream cut by `framing` and
        answered by `handle`. A simulator whose protocol a library serves (Modbus, through
        pymodbus) starts that library's server here instead; it files each open connection in
        `self._clients` (anything with a `transport`), so that `drop`, `offline` and the
        shutdown reach it."""
        server = await asyncio.start_server(self._connection_acceptor(self._serve_client, self._clients), host, port)
        return _port_of(server), server.close

    # -- time --------------------------------------------------------------------------------

    def advance(self) -> None:
        """Bring the physics up to the wall clock, times `speed`, in steps of at most `max_step`."""
        with self.lock:
            now = time.monotonic()
            elapsed = 0.0 if self._clock is None else (now - self._clock) * self.speed
            self._clock = now
            while elapsed > 1e-12:
                dt = min(elapsed, self.max_step)
                self.step(dt)
                elapsed -= dt

    # -- faults ------------------------------------------------------------------------------

    def reading(self, name: str, value: object) -> object:
        """`value`, unless the reading `name` is frozen: then the value it was frozen at."""
        return self.frozen.get(name, value)

    def freeze(self, name: str) -> None:
        """Hold the reading `name` at its present value until `unfreeze` or `clear`."""
        with self.lock:
            name = self._reading_name(name)
            self.frozen[name] = self.readings()[name]

    def unfreeze(self, name: str) -> None:
        with self.lock:
            self.frozen.pop(self._reading_name(name), None)

    def drop(self) -> None:
        """Close every open instrument connection, as a cable pulled out would."""
        self._in_loop(self._abort_clients)

    def set_offline(self, offline: bool) -> None:
        """Drop the connections and close every new one at once, until set back."""
        self.offline = offline
        if offline:
            self.drop()

    def clear(self) -> None:
        """End every fault."""
        with self.lock:
            self.delay = 0.0
            self.garbage = False
            self.offline = False
            self.frozen.clear()
            self.faults.clear()

    def send_unasked(self, data: bytes) -> None:
        """Send `data` to every connected client now, as the instrument does when it reports an
        event (safe from `step`, a handler or another thread)."""

        def write() -> None:
            for writer in list(self._clients):
                writer.write(data)

        loop = self._loop
        if loop is None:
            return
        if _running_loop() is loop:
            write()
        else:
            loop.call_soon_threadsafe(write)

    def _reading_name(self, name: str) -> str:
        names = {key.upper(): key for key in self.readings()}
        if name.upper() not in names:
            raise ValueError(f"no reading {name!r}; readings are {', '.join(names.values()) or 'none'}")
        return names[name.upper()]

    # -- control port ------------------------------------------------------------------------

    def control(self, line: str) -> str:
        """Carry out one control-port command; the answer is `OK`, a value or `ERROR ...`."""
        verb, *args = line.split() or [""]
        handler = self._CONTROL.get(verb.lower())
        if handler is None:
            return f"ERROR unknown command {verb!r}; commands: {', '.join(self._CONTROL)}"
        try:
            return handler(self, *args) or "OK"
        except TypeError:
            return f"ERROR wrong arguments for {verb}; {self._control_help()}"
        except ValueError as exc:
            return f"ERROR {exc}"

    def _control_delay(self, seconds: str) -> None:
        delay = float(seconds)
        if not 0.0 <= delay < float("inf"):
            raise ValueError(f"delay must be 0 or more seconds, not {seconds}")
        self.delay = delay

    def _control_garbage(self, state: str) -> None:
        self.garbage = _on_off(state)

    def _control_offline(self, state: str) -> None:
        self.set_offline(_on_off(state))

    def _control_freeze(self, name: str, state: str = "on") -> None:
        (self.freeze if _on_off(state) else self.unfreeze)(name)

    def _control_status(self) -> str:
        frozen = ",".join(self.frozen) or "none"
        return (
            f"delay={self.delay:g} garbage={_state(self.garbage)} offline={_state(self.offline)} "
            f"frozen={frozen} faults={','.join(sorted(self.faults)) or 'none'}"
        )

    def _control_help(self) -> str:
        return (
            "commands: drop | offline on|off | delay SECONDS | garbage on|off | checksum on|off | "
            "truncate on|off | address on|off | "
            f"freeze NAME on|off (names: {', '.join(self.readings()) or 'none'}) | clear | status | help"
        )

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        "drop": drop,
        "offline": _control_offline,
        "delay": _control_delay,
        "garbage": _control_garbage,
        **{fault: _reply_fault(fault) for fault in REPLY_FAULTS},
        "freeze": _control_freeze,
        "clear": clear,
        "status": _control_status,
        "help": _control_help,
    }

    # -- serving -----------------------------------------------------------------------------

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        control_port: int = 0,
        ready: Callable[[Running], object] | None = None,
    ) -> None:
        """Serve the instrument and control ports until cancelled; port 0 picks a free one."""
        self._loop = asyncio.get_running_loop()
        instrument_port, stop_instrument = await self.start_instrument_server(host, port)
        try:
            control = await asyncio.start_server(
                self._connection_acceptor(self._serve_control, self._controls), host, control_port
            )
        except BaseException:
            stop_instrument()
            raise
        ticker = asyncio.create_task(self._tick())
        try:
            if ready is not None:
                ready(Running(self, host, instrument_port, _port_of(control)))
            await asyncio.Future()
        finally:
            ticker.cancel()
            stop_instrument()
            control.close()
            self._abort_clients()
            for writer in list(self._controls):
                writer.transport.abort()
            self._loop = None

    async def _tick(self) -> None:
        while True:
            self.advance()
            await asyncio.sleep(self.tick)

    def _connection_acceptor(
        self, serve: Callable[..., Awaitable[None]], connections: set[asyncio.StreamWriter]
    ) -> Callable:
        """An accept callback that files the connection at once (so a shutdown finds it even
        before its task first runs), serves it in a task of its own, and closes and unfiles it
        when the peer leaves."""

        async def serve_until_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await serve(reader, writer)
            except ConnectionError:
                pass
            finally:
                connections.discard(writer)
                writer.transport.abort()

        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self.offline and connections is self._clients:
                writer.transport.abort()
                return
            connections.add(writer)
            if connections is self._clients:
                self.connections += 1
            task = asyncio.get_running_loop().create_task(serve_until_closed(reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return accept

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.greeting:
            writer.write(self.greeting)
            await writer.drain()
        async for frame in _frames(reader, self.framing):
            with self.lock:
                self.advance()
                reply = self.handle(frame)
                for fault in sorted(self.faults):
                    if reply is not None:
                        reply = self.spoil(fault, reply)
            if reply is None:
                continue
            if self.delay:
                await asyncio.sleep(self.delay)
            writer.write(self._garbage(len(reply)) if self.garbage else reply)
            await writer.drain()

    async def _serve_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for line in _lines(reader):
            if line.strip():
                writer.write(self.control(line).encode("ascii", errors="replace") + b"\n")
                await writer.drain()

    def _garbage(self, length: int) -> bytes:
        """Random bytes, ending as the reply did (a line end stays), so the client reads them."""
        return bytes(self.random.choices(GARBAGE, k=self.random.randint(8, 32))) + self.garbage_end

    #: What a garbage reply ends with: the reply terminator of a text instrument.
    garbage_end: ClassVar[bytes] = b""

    def _abort_clients(self) -> None:
        for writer in list(self._clients):
            writer.transport.abort()

    def _in_loop(self, action: Callable[[], None]) -> None:
        """Run `action` in the serving loop (transports are not thread-safe) and wait for it."""
        loop = self._loop
        if loop is None or _running_loop() is loop:
            action()
            return

        async def run() -> None:
            action()

        asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=10)


class LineProtocolSimulator(Simulator):
    """A text instrument: one line in, at most one line out."""

    #: Ends every line the instrument receives; a carriage return before it is ignored.
    terminator: ClassVar[bytes] = b"\n"
    #: Ends every line the instrument sends.
    reply_terminator: ClassVar[bytes] = b"\n"
    encoding: ClassVar[str] = "ascii"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.framing = Lines(cls.terminator)
        cls.garbage_end = cls.reply_terminator

    def handle_line(self, line: str) -> str | None:
        """The instrument's answer to one line (without terminator), or None when it stays silent."""
        raise NotImplementedError

    def handle(self, frame: bytes) -> bytes | None:
        line = self.framing.payload(frame).decode(self.encoding, errors="replace")
        self.received.append(line)
        reply = self.handle_line(line)
        if reply is None:
            return None
        return reply.encode(self.encoding, errors="replace") + self.reply_terminator


async def _frames(reader: asyncio.StreamReader, framing: Framing) -> AsyncIterator[bytes]:
    """The received frames, whole; ends when the peer leaves or sends what is no frame at all."""
    buffer = b""
    while True:
        try:
            while (parts := framing.split(buffer)) is not None:
                frame, buffer = parts
                yield frame
        except ValueError:  # a FramingError: the instrument would hang up or stay deaf
            return
        data = await reader.read(4096)
        if not data:
            return
        buffer += data


async def _lines(reader: asyncio.StreamReader) -> AsyncIterator[str]:
    """Control-port lines, decoded, without line end."""
    async for frame in _frames(reader, Lines(b"\n")):
        yield frame.decode("ascii", errors="replace").rstrip("\r\n")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _port_of(server: asyncio.Server) -> int:
    return server.sockets[0].getsockname()[1]


def _on_off(state: str) -> bool:
    if state.lower() not in ("on", "off"):
        raise ValueError(f"expected on or off, not {state!r}")
    return state.lower() == "on"


def _state(flag: bool) -> str:
    return "on" if flag else "off"


@contextmanager
def run_in_thread(
    simulator: Simulator,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    control_port: int = 0,
    timeout: float = 10.0,
) -> Iterator[Running]:
    """Serve `simulator` from a thread of its own (tests); stop it and join the thread on exit."""
    loop = asyncio.new_event_loop()
    ready: Future[Running] = Future()
    task = loop.create_task(simulator.serve(host, port, control_port, ready=ready.set_result))

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            if not ready.done():
                ready.set_exception(exc)
        finally:
            pending = asyncio.all_tasks(loop)
            for other in pending:
                other.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    thread = threading.Thread(target=run, name=f"{simulator.kind}-simulator", daemon=True)
    thread.start()
    try:
        yield ready.result(timeout)
    finally:
        with suppress(RuntimeError):
            loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"{simulator.kind} simulator thread did not stop within {timeout:g} s")
