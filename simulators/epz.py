"""The epz AD/DA board (NanoUP / Rasp-dsPIC) of a single-molecule force spectrometer, over ZeroMQ.

It is its own broker, as the original's Raspberry Pi is: producers publish to the producer port
(XSUB, 6661 by default), subscribers listen on the consumer port (XPUB, 6669), and the board
hears CMD and REQPAR there and publishes SNDPAR replies, the text DATA stream (one frame per
sample, up to the original's 10 kS/s) and the binary BLOCK stream (every rate up to 1 MS/s on 4
channels: deflection, DAC, piezo height, photodiode sum). A stream is made only while someone
subscribes to it. Files are fetched from a ROUTER socket (6000): `fetch`, 250 kB chunks, then
an empty one.

Physics, vectorised over each block of samples: a piezo driven by the DAC (200 nm/V) that moves
at most `PIEZO_SPEED`; a hard surface; a cantilever of stiffness k in liquid whose thermal noise
has the rms sqrt(kT/k); and a protein that, once the tip has touched the surface, may hold on and
stretch as a worm-like chain (Marko-Siggia) between the surface and the tip; its domains unfold
one by one (Bell's rate: each adds `increment` nm of contour length), then it lets go: the saw-tooth.
The extension is taken as the piezo's distance from the surface (the cantilever's bending is
left out of it). Ramps stop at their target or at a trigger (deflection, piezo, time); the
feedback (START_MODSAFE 2,0) drives the DAC to hold the deflection at the set-point.

Faults, besides the core's (`drop` and `offline` close and refuse the ports, `delay` holds every
reply, `garbage` and `truncate` spoil them, `address` answers as another device)::

    stream on|off        stop sending the streams (the board goes on, and answers)
    stall on|off         the board stops: no replies, no streams
    overload on|off      the deflection input saturates (overload flag up)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import math
import time
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import zmq
import zmq.asyncio

from device_servers.afm import protocol
from device_servers.afm.protocol import SETTINGS, Block

from .core import Simulator, _on_off

KT = 4.11  # pN nm at room temperature
PIEZO_NM_PER_V = 200.0
PIEZO_SPEED = 100.0  # V/s the piezo follows the DAC at most (20 um/s)
SENSITIVITY = 50.0  # nm of deflection per V of the photodiode
SURFACE = 1.5  # DAC V at which the tip touches the surface
ADC_LIMIT = 10.0
PERSISTENCE = 0.4  # nm, of an unfolded polypeptide
LINKER = 15.0  # nm of contour length before the first domain unfolds
UNFOLD_RATE = 5e-4  # 1/s at zero force (I27-like)
UNFOLD_DISTANCE = 0.25  # nm to the transition state
DETACH_RATE = 1e-2
DETACH_DISTANCE = 0.2
#: Seconds of samples in a binary block: ten messages a second at any rate.
BLOCK_S = 0.1
#: The facts the board tells (REQPAR), by request.
BOARD_FACTS = {
    "GET_EXT_ADC_RANGE": 20.0, "GET_EXT_ADC_VINMIN": -ADC_LIMIT, "GET_EXT_ADC_VINMAX": ADC_LIMIT,
    "GET_INT_ADC_RESOLUTION": 16, "IS_ADCBUF_PRESENT": 1, "GET_ADCBUF_VINMIN": -10.0,
    "GET_ADCBUF_VINMAX": 10.0, "GET_ADCBUF_VOUTMIN": -1.0, "GET_ADCBUF_VOUTMAX": 1.0,
    "GET_DAC_VREF": 5.0, "GET_DAC_POLARITY": 1,
}


def wlc_force(extension: np.ndarray, contour: float) -> np.ndarray:
    """Marko-Siggia worm-like chain: pN at `extension` nm of a chain `contour` nm long."""
    x = np.clip(extension / contour, 0.0, 0.999)
    return (KT / PERSISTENCE) * (0.25 / (1.0 - x) ** 2 - 0.25 + x)


class Board:
    """The board's settings and the physics behind them, with no I/O: `run(n)` samples n periods."""

    def __init__(self, rng: np.random.Generator, *, stiffness: float, domains: int, increment: float,
                 attach_probability: float) -> None:
        self.rng = rng
        self.stiffness = stiffness  # pN/nm
        self.domains = domains
        self.increment = increment
        self.attach_probability = attach_probability
        self.values: dict[str, list[float]] = {
            "DACSTEP": [0.001], "NUMT6TRIG": [50], "TIMETRIG": [0, 0], "DAC_SOFT": [0.0], "DAC_HARD": [0.0],
            "TRIGGERS": [0, 0, 0], "ZTRIG": [0.0, 0], "FTRIG": [0.0, 0], "TIM8PER": [100], "SETPOINT": [0.0],
            "PGAIN": [0.0], "IGAIN": [0.0], "DGAIN": [0.0], "MODSAFE": [0, 1], "DACMODE": [1],
            "RAMPSIGN": [0], "SAVE": [0],
        }
        self.time = 0.0  # s of board time at the next sample
        self.ticks = 0
        self.dac = 0.0
        self.height = 0.0  # V: where the piezo is
        self.ramping = False
        self.ramp_started = 0.0
        self.overload = False
        self.forced_overload = False
        self.attached = False
        self.contour = 0.0
        self.folded = 0
        self.touching = False
        self._hazard = 0.0
        self._threshold = rng.exponential()
        self._error = 0.0
        self._integral = 0.0

    @property
    def period(self) -> float:
        return self.values["TIM8PER"][0] * 1e-6

    @property
    def feedback(self) -> bool:
        return self.values["MODSAFE"][0] == 2

    def set(self, name: str, values: list[float]) -> None:
        """Apply a setting; `ProtocolError` (nothing changes) when out of range."""
        protocol.check(SETTINGS[name], values)
        self.values[name] = values
        if name == "DAC_HARD":
            self.dac, self.ramping = values[0], False
        elif name == "DAC_SOFT":
            self.ramping, self.ramp_started = values[0] != self.dac, self.time
        elif name == "MODSAFE":
            self._error = self._integral = 0.0
            if values[0] == 0 and values[1] == 1:  # rest: feedback off, back to 0 V
                self.values["DAC_SOFT"] = [0.0]
                self.ramping, self.ramp_started = self.dac != 0.0, self.time

    def get(self, name: str) -> list[float]:
        if name == "DAC_HARD":
            return [round(self.dac, 6)]
        return self.values[name]

    # -- physics ---------------------------------------------------------------------------------

    def run(self, count: int) -> tuple[np.ndarray, bool, bool]:
        """The next `count` samples (channels x count, volts), with the save and overload flags."""
        samples = np.empty((len(protocol.CHANNELS), count), dtype=np.float32)
        noise = self._thermal_noise(count)
        done = 0
        while done < count:
            length = self._segment(samples[:, done:], noise[done:])
            done += length
        samples[3] = 5.0 + 0.002 * self.rng.standard_normal(count, dtype=np.float32)
        if self.forced_overload:
            samples[0] = ADC_LIMIT
        self.overload = self.forced_overload or bool(np.any(np.abs(samples[0]) >= ADC_LIMIT))
        return samples, bool(self.values["SAVE"][0]), self.overload

    def _thermal_noise(self, count: int) -> np.ndarray:
        """Deflection noise (nm), rms sqrt(kT/k), band-limited at the cantilever's ~20 us relaxation."""
        sigma = math.sqrt(KT / self.stiffness)
        stride = max(1, round(20e-6 / self.period))
        if stride == 1:
            return sigma * self.rng.standard_normal(count)
        knots = self.rng.standard_normal(count // stride + 2) * sigma * math.sqrt(1.5)
        return np.interp(np.arange(count) / stride, np.arange(knots.size), knots)

    def _segment(self, out: np.ndarray, noise: np.ndarray) -> int:
        """Fill `out` up to and including the first event (trigger, ramp end, unfolding, contact,
        a feedback step) and apply it; return how many samples were made."""
        count = out.shape[1]
        if self.feedback:
            count = min(count, max(1, round(1e-3 / self.period)))
        t = np.arange(1, count + 1) * self.period
        dac = np.full(count, self.dac)
        if self.ramping:
            step, ticks = self.values["DACSTEP"][0], self.values["NUMT6TRIG"][0]
            speed = step / (ticks * protocol.TICK_S)
            target = self.values["DAC_SOFT"][0]
            dac = self.dac + np.sign(target - self.dac) * np.minimum(speed * t, abs(target - self.dac))
        height = self.height + np.clip(dac - self.height, -PIEZO_SPEED * t, PIEZO_SPEED * t)
        piezo_nm = (height - SURFACE) * PIEZO_NM_PER_V  # > 0: pressing into the surface
        deflection_nm = np.maximum(piezo_nm, 0.0)
        end = count
        if not self.touching and piezo_nm[-1] > 0 or self.touching and piezo_nm[-1] <= 0:
            end = int(np.argmax((piezo_nm > 0) != self.touching)) + 1
        force = np.zeros(count)
        if self.attached:
            force = wlc_force(-piezo_nm, self.contour)
            distance, rate = (UNFOLD_DISTANCE, UNFOLD_RATE) if self.folded else (DETACH_DISTANCE, DETACH_RATE)
            hazard = self._hazard + np.cumsum(rate * np.exp(np.minimum(force * distance / KT, 600)) * self.period)
            if hazard[end - 1] >= self._threshold:
                end = int(np.argmax(hazard >= self._threshold)) + 1
            self._hazard = hazard[end - 1]
            deflection_nm = deflection_nm - force / self.stiffness
        volts = (deflection_nm + noise[:count]) / SENSITIVITY
        trigger = self._triggers(volts[:end], dac[:end], t[:end])
        if trigger is not None:
            end = trigger + 1
        out[0, :end] = np.clip(volts[:end], -ADC_LIMIT, ADC_LIMIT)
        out[1, :end] = dac[:end]
        out[2, :end] = height[:end]
        self._advance(end, dac[end - 1], height[end - 1], piezo_nm[end - 1], float(np.mean(volts[:end])))
        if trigger is not None or (self.ramping and dac[end - 1] == self.values["DAC_SOFT"][0]):
            self.ramping = False
        return end

    def _triggers(self, volts: np.ndarray, dac: np.ndarray, t: np.ndarray) -> int | None:
        """The index of the first sample at which an enabled trigger fires during a ramp."""
        if not self.ramping:
            return None
        use_adc, use_dac, use_time = self.values["TRIGGERS"]
        fired = np.zeros(volts.size, dtype=bool)
        for used, signal, (level, sign) in (
            (use_adc, volts, self.values["FTRIG"]), (use_dac, dac, self.values["ZTRIG"]),
            (use_time, (self.time - self.ramp_started + t) * 1e6, self.values["TIMETRIG"]),
        ):
            if used:
                fired |= signal < level if sign else signal > level
        return int(np.argmax(fired)) if fired.any() else None

    def _advance(self, count: int, dac: float, height: float, piezo_nm: float, mean_volts: float) -> None:
        self.time += count * self.period
        self.ticks = round(self.time / protocol.TICK_S)
        self.dac, self.height = float(dac), float(height)
        touching = piezo_nm > 0
        if touching and not self.touching and not self.attached and self.rng.random() < self.attach_probability:
            self.attached, self.contour, self.folded = True, LINKER, self.domains
            self._new_event()
        self.touching = touching
        if self.attached and self._hazard >= self._threshold:
            if self.folded:
                self.folded -= 1
                self.contour += self.increment
            else:
                self.attached = False
            self._new_event()
        if self.feedback:
            error = self.values["SETPOINT"][0] - mean_volts
            self._integral += error
            p, i, d = self.values["PGAIN"][0], self.values["IGAIN"][0], self.values["DGAIN"][0]
            change = p * (error - self._error) + i * error + d * (error - self._error)
            self._error = error
            self.dac = float(np.clip(self.dac + 0.05 * change, -5.0, 5.0))

    def _new_event(self) -> None:
        self._hazard, self._threshold = 0.0, self.rng.exponential()


class EpzSimulator(Simulator):
    """The epz AD/DA board of a force spectrometer: broker, parameters, streams, file fetch."""

    kind: ClassVar[str] = "epz"
    default_port: ClassVar[int] = protocol.PUBPORT
    max_step: ClassVar[float] = 0.05
    tick: ClassVar[float] = 0.02

    def __init__(self, *, seed: int | None = None, speed: float = 1.0, subscribe_port: int = 0,
                 file_port: int = 0, stiffness: float = 50.0, domains: int = 8, increment: float = 28.5,
                 attach_probability: float = 1.0, device: str = protocol.DEVICE) -> None:
        super().__init__(seed=seed, speed=speed)
        #: The last requests heard (a device polls several a second for days: not all of them).
        self.received = collections.deque(maxlen=10_000)
        self.device = device
        self.board = Board(np.random.default_rng(seed), stiffness=stiffness, domains=domains,
                           increment=increment, attach_probability=attach_probability)
        self.subscribe_port = subscribe_port
        self.file_port = file_port
        #: What `fetch` sends: the last file the board saved (here: a text of the settings).
        self.file = b""
        self.streaming = True
        self.stalled = False
        self.counter = 0
        self._wanted: set[bytes] = set()
        self._outbox: list[list[bytes]] = []
        self._pending: list[tuple[float, np.ndarray, float, bool, bool]] = []
        self._due = 0.0
        self._sockets: dict[str, zmq.asyncio.Socket] = {}
        self._context: zmq.asyncio.Context | None = None
        self._host = "127.0.0.1"
        self._ports = (0, 0, 0)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--subscribe-port", type=int, default=protocol.SUBPORT,
                            help=f"the broker's consumer port; 0 picks a free one ({protocol.SUBPORT})")
        parser.add_argument("--file-port", type=int, default=protocol.FILEPORT,
                            help=f"the file fetch (ROUTER) port ({protocol.FILEPORT})")
        parser.add_argument("--stiffness", type=float, default=50.0, help="cantilever stiffness, pN/nm (50)")
        parser.add_argument("--domains", type=int, default=8, help="domains of the protein (8)")
        parser.add_argument("--increment", type=float, default=28.5,
                            help="contour length each unfolded domain adds, nm (28.5, titin I27)")
        parser.add_argument("--attach-probability", type=float, default=1.0,
                            help="chance that a touch of the surface picks up a protein (1)")

    def link_url(self, host: str, port: int) -> str:
        return f"zmq://{host}:{port}/{self.subscribe_port}/{self.file_port}"

    # -- the board ---------------------------------------------------------------------------

    def answer(self, message: bytes) -> list[bytes]:
        """What the board publishes on hearing one message from the broker (SNDPAR replies)."""
        try:
            text = message.decode("ascii")
        except UnicodeDecodeError:
            return []
        head, _, rest = text.partition(":")
        tag, _, rest = rest.partition(":")
        if head != self.device or tag not in (protocol.CMD, protocol.REQPAR) or self.stalled:
            return []
        self.received.append(text)
        name, *fields = rest.split(":")
        if tag == protocol.CMD:
            setting = protocol.BY_COMMAND.get(name)
            with contextlib.suppress(ValueError):
                if setting is not None:
                    self.board.set(setting.name, [float(field) for field in fields])
            return []
        if name in protocol.FACTS:
            letter = protocol.FACTS[name]
            value: list[object] = [self._fact(name)]
        elif name in protocol.BY_REQUEST:
            setting = protocol.BY_REQUEST[name]
            letter = setting.letter
            value = [protocol.number(v, setting.whole(i)) for i, v in enumerate(self.board.get(setting.name))]
        else:
            return []
        device = "OTHER" if "address" in self.faults else self.device
        reply = protocol.reply(letter, value, device).encode("ascii")
        for fault in sorted(self.faults - {"address"}):
            reply = self.spoil(fault, reply)
        return [self._garbage(len(reply)) if self.garbage else reply]

    def _fact(self, name: str) -> object:
        if name == "GET_DEVICE_TYPE":
            return self.device
        if name == "IS_RAMPING":
            return int(self.board.ramping)
        return BOARD_FACTS[name]

    def step(self, dt: float) -> None:
        """Sample the board for `dt` s and queue what its subscribers asked for."""
        if self.stalled:
            return
        self._due += dt / self.board.period
        count = int(self._due)
        if count < 1:
            return
        self._due -= count
        first, ticks = self.board.time, self.board.ticks
        samples, save, overload = self.board.run(count)
        self._block_up(first, samples, save, overload)
        if self.streaming and self._wants(protocol.DATA) and self.board.values["TIM8PER"][0] >= protocol.TEXT_PERIOD_US:
            step = round(self.board.period / protocol.TICK_S)
            self._outbox.extend(
                [protocol.data_frame(ticks + i * step, adc, dac, save, overload, self.device).encode()]
                for i, (adc, dac) in enumerate(zip(samples[0].tolist(), samples[1].tolist(), strict=True))
            )

    def _block_up(self, first: float, samples: np.ndarray, save: bool, overload: bool) -> None:
        """Gather samples into blocks of BLOCK_S (fewer, larger messages at high rates); a block
        ends early where the period or a flag changes. Blocks are counted whether or not they
        are sent: a subscriber sees the ones a dropped stream never sent as a jump."""
        period = self.board.period
        if self._pending and (self._pending[0][2:] != (period, save, overload)):
            self._flush_block()
        self._pending.append((first, samples, period, save, overload))
        if sum(piece[1].shape[1] for piece in self._pending) * period >= BLOCK_S:
            self._flush_block()

    def _flush_block(self) -> None:
        pieces, self._pending = self._pending, []
        self.counter += 1
        if not (pieces and self.streaming and self._wants(protocol.BLOCK)):
            return
        first, _, period, save, overload = pieces[0]
        samples = np.concatenate([piece[1] for piece in pieces], axis=1) if len(pieces) > 1 else pieces[0][1]
        block = Block(self.counter, first, period, samples, save, overload)
        self._outbox.append(protocol.block_message(block, self.device))

    def _wants(self, tag: str) -> bool:
        topic = protocol.topic(tag, self.device).encode()
        return any(topic.startswith(prefix) for prefix in self._wanted)

    def spoil(self, fault: str, reply: bytes) -> bytes:
        if fault == "checksum":
            raise ValueError("the epz protocol has no checksum")
        if fault == "address":
            return reply
        return super().spoil(fault, reply)

    # -- serving -------------------------------------------------------------------------------

    async def start_instrument_server(self, host: str, port: int) -> tuple[int, Callable[[], None]]:
        self._context = zmq.asyncio.Context()
        self._host = host
        self._ports = (port, self.subscribe_port, self.file_port)
        self._bind()
        tasks = [asyncio.create_task(work()) for work in (self._relay, self._subscriptions, self._publish, self._files)]

        def stop() -> None:
            for task in tasks:
                task.cancel()
            self._unbind()
            self._context.destroy(linger=0)

        return self._ports[0], stop

    def _bind(self) -> None:
        """Open the broker's and the file server's sockets (on the ports of the first opening)."""
        assert self._context is not None
        kinds = {"producers": zmq.XSUB, "consumers": zmq.XPUB, "files": zmq.ROUTER}
        ports = []
        for (name, kind), port in zip(kinds.items(), self._ports, strict=True):
            socket = self._context.socket(kind)
            socket.setsockopt(zmq.LINGER, 0)
            if kind == zmq.XPUB:
                socket.setsockopt(zmq.SNDHWM, 5000)  # 0.5 s of text frames, 100 s of blocks
            if kind == zmq.ROUTER:
                socket.setsockopt(zmq.SNDHWM, 0)  # a file's chunks are never dropped (as the original)
            if port:
                _bind_again(socket, f"tcp://{self._host}:{port}")
            else:
                port = socket.bind_to_random_port(f"tcp://{self._host}")
            ports.append(port)
            self._sockets[name] = socket
        self._ports = tuple(ports)
        self.subscribe_port, self.file_port = ports[1], ports[2]
        self._sockets["producers"].send(b"\x01")  # the broker hears everything its producers publish
        self._wanted.clear()
        self.connections += 1

    def _unbind(self) -> None:
        for socket in self._sockets.values():
            socket.close(linger=0)
        self._sockets.clear()

    def drop(self) -> None:
        """The broker's sockets are closed, cutting every connection (ZeroMQ clients reconnect by
        themselves), and opened again unless the board is offline."""

        def rebind() -> None:
            if self._context is None:
                return
            self._unbind()
            if not self.offline:
                self._bind()

        self._in_loop(rebind)

    def set_offline(self, offline: bool) -> None:
        self.offline = offline
        self.drop()

    async def _receive(self, name: str) -> list[bytes] | None:
        """The next message on socket `name`, None when none came or a drop closed the socket."""
        socket = self._sockets.get(name)
        if socket is None:
            await asyncio.sleep(0.05)
            return None
        try:
            return await socket.recv_multipart() if await socket.poll(100) else None
        except (zmq.ZMQError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and self._sockets.get(name) is socket:
                raise  # the server stops, not a drop
            return None

    async def _relay(self) -> None:
        """The broker: what producers publish goes to the subscribers, and the board hears it."""
        while True:
            if (parts := await self._receive("producers")) is None:
                continue
            if (consumers := self._sockets.get("consumers")) is not None:
                consumers.send_multipart(parts)
            with self.lock:
                self.advance()
                replies = self.answer(parts[0])
            if replies and self.delay:
                await asyncio.sleep(self.delay)
            for message in replies:
                if "consumers" in self._sockets:
                    self._sockets["consumers"].send(message)

    async def _subscriptions(self) -> None:
        """Which streams someone listens to (XPUB passes each topic's first subscription and last
        unsubscription), so that a stream nobody wants costs nothing."""
        while True:
            if (parts := await self._receive("consumers")) is None:
                continue
            message = parts[0]
            if message[:1] == b"\x01":
                self._wanted.add(message[1:])
            elif message[:1] == b"\x00":
                self._wanted.discard(message[1:])

    async def _publish(self) -> None:
        while True:
            with self.lock:
                self.advance()
                outbox, self._outbox = self._outbox, []
            socket = self._sockets.get("consumers")
            if socket is not None:
                for message in outbox:
                    socket.send_multipart(message, copy=len(message[-1]) < 65536)
            await asyncio.sleep(self.tick)

    async def _files(self) -> None:
        while True:
            if (parts := await self._receive("files")) is None:
                continue
            identity, *request = parts
            socket = self._sockets.get("files")
            if request != [protocol.FETCH] or self.stalled or socket is None:
                continue
            data = self.file or self._settings_file()
            for start in range(0, len(data), protocol.CHUNK_BYTES):
                socket.send_multipart([identity, data[start:start + protocol.CHUNK_BYTES]])
            socket.send_multipart([identity, b""])

    def _settings_file(self) -> bytes:
        return "".join(f"{name}:{':'.join(map(str, values))}\n" for name, values in self.board.values.items()).encode()

    # -- faults --------------------------------------------------------------------------------

    def clear(self) -> None:
        with self.lock:
            super().clear()
            self.streaming, self.stalled = True, False
            self.board.forced_overload = False

    def _control_stream(self, state: str) -> None:
        self.streaming = _on_off(state)

    def _control_stall(self, state: str) -> None:
        self.stalled = _on_off(state)

    def _control_overload(self, state: str) -> None:
        self.board.forced_overload = _on_off(state)

    def _control_status(self) -> str:
        return (f"{Simulator._control_status(self)} stream={'on' if self.streaming else 'off'} "
                f"stall={'on' if self.stalled else 'off'} overload={'on' if self.board.forced_overload else 'off'}")

    def _control_help(self) -> str:
        return f"{Simulator._control_help(self)} | stream on|off | stall on|off | overload on|off"

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **Simulator._CONTROL,
        "stream": _control_stream,
        "stall": _control_stall,
        "overload": _control_overload,
        "clear": clear,
        "status": _control_status,
        "help": _control_help,
    }


def _bind_again(socket: zmq.Socket, address: str) -> None:
    """Bind, waiting a little for a port just closed (ZeroMQ releases it on its own thread)."""
    for _ in range(100):
        try:
            socket.bind(address)
            return
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE:
                raise
            time.sleep(0.01)
    socket.bind(address)
