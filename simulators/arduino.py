"""The lab's Arduino environment box, simulated: its MIN frames (device_servers/arduino/protocol.py),
MIN's transport (sequence numbers, ACKs, RESET), the original sketch's ten-letter commands, two
temperature and humidity sensors drifting slowly around 21 °C and 45 %, and four switches.

Opening the port resets an Arduino (DTR): for `boot` seconds after a client connects the board
is starting and hears nothing (as under its bootloader); then the sketch runs with its transport
at sequence 0. Bytes that are no frame are passed over, as MIN's receiver searches for the next header; a
frame whose CRC disagrees is dropped unanswered; a
transport frame with a sequence number the box has already taken is acknowledged again but not
carried out twice. A command it does not know gets the ACK and nothing else.
"""

from __future__ import annotations

import argparse
import re
import time

from device_servers.arduino.protocol import (
    ACK,
    APPLICATION_ID,
    HEADER,
    RESET,
    SEARCHING,
    SENSORS,
    SWITCHES,
    Frame,
    ack,
    decode,
    encode,
)
from device_servers.core.errors import GarbledReply

from .core import Simulator

BOOT_S = 1.6
SENSOR_COMMAND = re.compile(r"get_(temp|humd)(\d\d)")
SWITCH_COMMAND = re.compile(r"(set|get)_sw(\d\d)(on|of|st)")


class ArduinoSimulator(Simulator):
    """The Arduino environment box (MIN protocol with its transport)."""

    kind = "arduino"
    default_port = 15060
    framing = SEARCHING

    def __init__(self, *, boot: float = BOOT_S, seed: int | None = None, speed: float = 1.0) -> None:
        super().__init__(seed=seed, speed=speed)
        self.boot = boot
        self.temperatures = [21.5, 21.25]
        self.humidities = [45.2, 44.8]
        self.switches = [False] * len(SWITCHES)
        self.resets = 0  # board resets so far (one per opened connection)
        self._booting_until = 0.0
        self._seen_connections = 0
        self._expected = 0  # next transport sequence number from the host
        self._next_seq = 0  # of the box's next frame

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--boot", type=float, default=BOOT_S, help=f"seconds the board takes to start ({BOOT_S})")

    # -- the board ------------------------------------------------------------------------------

    @property
    def booting(self) -> bool:
        self._notice_connection()
        return time.monotonic() < self._booting_until

    def _notice_connection(self) -> None:
        """A new connection opened the port: the board resets."""
        if self.connections != self._seen_connections:
            self._seen_connections = self.connections
            self._booting_until = time.monotonic() + self.boot / self.speed
            self._expected = self._next_seq = 0
            self.resets += 1

    def step(self, dt: float) -> None:
        self._notice_connection()
        for n in range(len(SENSORS)):
            self.temperatures[n] += self.random.gauss(0.0, 0.002) * dt ** 0.5 - 0.01 * (self.temperatures[n] - 21.4) * dt
            self.humidities[n] += self.random.gauss(0.0, 0.01) * dt ** 0.5 - 0.01 * (self.humidities[n] - 45.0) * dt

    def readings(self) -> dict[str, object]:
        return {**{f"temperature{n}": t for n, t in zip(SENSORS, self.temperatures)},
                **{f"humidity{n}": h for n, h in zip(SENSORS, self.humidities)}}

    # -- the protocol ---------------------------------------------------------------------------

    def handle(self, message: bytes) -> bytes | None:
        if not message.startswith(HEADER):
            return None  # no frame: the receiver searches on for a header
        self.received.append(message)
        if self.booting:
            return None
        try:
            frame = decode(message)
        except GarbledReply:
            return None
        if frame.id_control == RESET:
            self._expected = self._next_seq = 0
            return None
        if frame.id_control == ACK or not frame.is_transport:
            return None
        if frame.seq != self._expected:  # taken already: acknowledge again, do not repeat
            return encode(ack(self._expected))
        self._expected = (self._expected + 1) & 0xFF
        answer = self._command(frame.seq, frame.payload.decode("ascii", errors="replace"))
        if answer is None:
            return encode(ack(self._expected))
        reply = Frame(0x80 | APPLICATION_ID, answer.encode("ascii"), self._next_seq)
        self._next_seq = (self._next_seq + 1) & 0xFF
        return encode(ack(self._expected)) + encode(reply)

    def _command(self, seq: int, text: str) -> str | None:
        """The sketch's commands: ten letters, then the reply text after `<seq>:`."""
        if text == "get_ardsta":
            fields = [f"{t:.2f}" for t in self.reading_values("temperature")]
            fields += [f"{h:.2f}" for h in self.reading_values("humidity")]
            fields += [str(int(on)) for on in self.switches]
            return f"{seq}:status={';'.join(fields)}"
        if (found := SENSOR_COMMAND.fullmatch(text)) and int(found[2]) in SENSORS:
            kind = "temperature" if found[1] == "temp" else "humidity"
            return f"{seq}:{found[1]}{found[2]}={self.reading_values(kind)[int(found[2]) - 1]:.2f}"
        if (found := SWITCH_COMMAND.fullmatch(text)) and int(found[2]) in SWITCHES:
            index = int(found[2]) - 1
            if found[1] == "set" and found[3] in ("on", "of"):
                self.switches[index] = found[3] == "on"
            elif found[1] == "get" and found[3] == "st":
                return f"{seq}:sw{found[2]}={int(self.switches[index])}"
        return None

    def reading_values(self, kind: str) -> list[float]:
        values = self.readings()
        return [float(self.reading(f"{kind}{n}", values[f"{kind}{n}"])) for n in SENSORS]

    def spoil(self, fault: str, reply: bytes) -> bytes:
        if fault == "checksum":  # the last frame's CRC, its last byte before the end byte
            return reply[:-2] + bytes([reply[-2] ^ 0x01]) + reply[-1:]
        return super().spoil(fault, reply)  # truncate; MIN has no address to answer from

