"""What every ASCII instrument simulator shares: a TCP line server, simulated time, faults.

An instrument subclasses `LineProtocolSimulator`: it answers one received line at a time in
`handle_line` and moves its physics in `step`. This module serves it on the instrument's TCP
port, advances `step` with the wall clock (times `speed`), and opens a second, plain-text
control port through which a person or a test injects what the instrument's own protocol
cannot express: a dropped connection, slow replies, garbage on the wire, a frozen reading.

Control port, one command a line, each answered by one line (`OK`, a value, or `ERROR ...`)::

    drop                 close every open instrument connection now
    offline on|off       close new instrument connections at once (and drop current ones)
    delay SECONDS        wait this long before every reply (0 ends it)
    garbage on|off       reply random bytes instead of each answer
    freeze NAME on|off   hold a named reading at its present value
    clear                end every fault
    status               the faults in force
    help                 the list of commands

Tests use the same faults in-process: `sim.drop()`, `sim.delay = 2.5`, `sim.garbage = True`,
`sim.freeze("A")`, `sim.clear()`, with the simulator served by `run_in_thread`.
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

#: Bytes a garbage reply is drawn from: anything but line ends, so the client still reads a line.
GARBAGE = bytes(b for b in range(0x21, 0x100) if b != 0x7F)


@dataclass(frozen=True)
class Running:
    """Where a served simulator listens."""

    simulator: LineProtocolSimulator
    host: str
    port: int
    control_port: int

    @property
    def url(self) -> str:
        """The pyserial URL a driver's `Link` opens."""
        return f"socket://{self.host}:{self.port}"


class LineProtocolSimulator:
    """A line-oriented instrument on TCP, with simulated physics and injectable faults."""

    kind: ClassVar[str] = "simulator"
    #: The real instrument's TCP port: what `python -m simulators KIND` listens on by default.
    default_port: ClassVar[int] = 0
    #: Ends every line the instrument receives; a carriage return before it is ignored.
    terminator: ClassVar[bytes] = b"\n"
    #: Ends every line the instrument sends.
    reply_terminator: ClassVar[bytes] = b"\n"
    encoding: ClassVar[str] = "ascii"
    #: Longest physics step in simulated seconds, so a long idle time integrates stably.
    max_step: ClassVar[float] = 0.1
    #: How often, in wall-clock seconds, the physics advances while no one is asking.
    tick: ClassVar[float] = 0.1

    def __init__(self, *, seed: int | None = None, speed: float = 1.0) -> None:
        self.random = random.Random(seed)
        self.speed = speed
        #: Held while a line is handled or the physics moves: faults set from a test thread are safe.
        self.lock = threading.RLock()
        #: Every line received on the instrument port, in order: tests check what reached the wire.
        self.received: list[str] = []
        self.delay = 0.0
        self.garbage = False
        self.offline = False
        self.frozen: dict[str, object] = {}
        self._clock: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._controls: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what an instrument provides ------------------------------------------------------------

    def handle_line(self, line: str) -> str | None:
        """The instrument's answer to one line (without terminator), or None when it stays silent."""
        raise NotImplementedError

    def step(self, dt: float) -> None:
        """Move the physics on by `dt` simulated seconds."""

    def readings(self) -> dict[str, object]:
        """The readings that `freeze` can hold, by name, with their present values."""
        return {}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Declare the instrument's own command-line options (keyword arguments of `__init__`)."""

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
            f"frozen={frozen}"
        )

    def _control_help(self) -> str:
        return (
            "commands: drop | offline on|off | delay SECONDS | garbage on|off | "
            f"freeze NAME on|off (names: {', '.join(self.readings()) or 'none'}) | clear | status | help"
        )

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        "drop": drop,
        "offline": _control_offline,
        "delay": _control_delay,
        "garbage": _control_garbage,
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
        instrument = await asyncio.start_server(self._accept(self._serve_client, self._clients), host, port)
        control = await asyncio.start_server(
            self._accept(self._serve_control, self._controls), host, control_port
        )
        ticker = asyncio.create_task(self._tick())
        try:
            if ready is not None:
                ready(Running(self, host, _port_of(instrument), _port_of(control)))
            await asyncio.Future()
        finally:
            ticker.cancel()
            for server in (instrument, control):
                server.close()
            self._abort_clients()
            for writer in list(self._controls):
                writer.transport.abort()
            self._loop = None

    async def _tick(self) -> None:
        while True:
            self.advance()
            await asyncio.sleep(self.tick)

    def _accept(
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
            task = asyncio.get_running_loop().create_task(serve_until_closed(reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return accept

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for line in _lines(reader, self.terminator, self.encoding):
            with self.lock:
                self.advance()
                self.received.append(line)
                reply = self.handle_line(line)
            if reply is None:
                continue
            if self.delay:
                await asyncio.sleep(self.delay)
            data = self._garbage() if self.garbage else reply.encode(self.encoding, errors="replace")
            writer.write(data + self.reply_terminator)
            await writer.drain()

    async def _serve_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for line in _lines(reader, b"\n", "ascii"):
            if line.strip():
                writer.write(self.control(line).encode("ascii", errors="replace") + b"\n")
                await writer.drain()

    def _garbage(self) -> bytes:
        return bytes(self.random.choices(GARBAGE, k=self.random.randint(8, 32)))

    def _abort_clients(self) -> None:
        for writer in list(self._clients):
            writer.transport.abort()

    def _in_loop(self, action: Callable[[], None]) -> None:
        """Run `action` in the serving loop (transports are not thread-safe) and wait for it."""
        loop = self._loop
        try:
            in_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            in_loop = False
        if loop is None or in_loop:
            action()
            return

        async def run() -> None:
            action()

        asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=10)


async def _lines(reader: asyncio.StreamReader, terminator: bytes, encoding: str) -> AsyncIterator[str]:
    """The received lines, decoded, without terminator or a carriage return before it."""
    while True:
        try:
            data = await reader.readuntil(terminator)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        yield data[: -len(terminator)].decode(encoding, errors="replace").rstrip("\r")


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
    simulator: LineProtocolSimulator,
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
