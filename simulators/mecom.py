"""A Meerstetter TEC-1090 (two channels) behind an LTR-1200, simulated in the MeCom protocol.

The wire, as the MeCom Protocol Specification (5117C) and the TEC-Family Communication Protocol
(5136) describe it:

- a request is `#`, the device address (2 hex), a sequence number (4 hex), the payload, the
  CRC-16/XMODEM of everything before it (4 hex) and a carriage return:
  `#0115A0?VR03E801B870\\r` reads parameter 1000 (0x03E8), instance 1;
- the reply is `!`, the address and the sequence number of the request, the payload and its
  own CRC: `!0015AB41CD2F28D5C2\\r` (25.648 °C as a big-endian IEEE 754 float);
- `VS<par><inst><8 hex>` writes a FLOAT32 or INT32; the acknowledge carries the CRC of the set
  command instead of a payload: `#0015B0VS0BB80141AE0000C482` → `!0015B0C482`;
- `RS` resets the device (acknowledged, then 200 ms in status 5, then INIT and READY);
- a refusal is `+` and a code: 01 command not available, 02 busy, 03 general communication
  error, 04 format error, 05 parameter not available, 06 parameter read only, 07 value out of
  range, 08 instance not available (`!0015AC+0532DA` for parameter 1234);
- address 00 reaches the device whatever its address; a frame for another address is not
  answered (on an RS-485 bus another device would answer it).

The specification does not say what a device does with a frame whose CRC is wrong. This one
answers `+03` (general communication error), echoing the address and sequence number as
received, so a client learns at once that its frame was corrupted and can send it again with
the same sequence number (the specification's advice for a lost frame).

The LTR-1200 (the rack with its Ethernet interface, TCP port 50000) greets every new client with
a line of text containing "Welcome" before any MeCom frame; the exact text is not in a public
document, so `GREETING` stands in for it.

Physics, per channel: a Peltier module (Seebeck coefficient S, resistance R, conductance K)
between the object (a CCD on its cold finger, heat leaking in from the room) and the sink (a
water-cooled plate). The current pumps S·I·T_object − ½·R·I² − K·ΔT out of the object and
puts that plus the electrical power R·I² + S·I·ΔT into the sink, which the coolant carries
away while it flows. A PI controller drives the current (within ±`CURRENT_LIMIT`) to bring the
object to the target. With the flow stopped (control port `flow off`) the sink only loses heat
to the room air and warms up; the LTR-1200's hardware-enable input is wired to the flow switch,
so in output stage mode 3 (HW enable) the output stops while the flow is off. A sink above
`SINK_LIMIT` is a device error (status 3, output off) until `RS`.

Control port, besides the common commands: `flow on|off` (the coolant), `sequence on|off`
(replies carry another sequence number than the request's), `refuse PARAMETER [CODE|off]`
(every request on that parameter id, e.g. 1001, answered with server error CODE, 05
"parameter not available" unless given: the controller's own refusal). The `checksum` fault
spoils the CRC of every reply; the `address` fault answers from another address.
"""

from __future__ import annotations

import argparse
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from device_servers.mecom.protocol import (
    CMD_NOT_AVAILABLE,
    FORMAT,
    FRAMING,
    GENERAL_COM,
    INSTANCE_NOT_AVAILABLE,
    PAR_NOT_AVAILABLE,
    PAR_OUT_OF_RANGE,
    PAR_READ_ONLY,
    TCP_PORT,
    acknowledge,
    crc,
    is_hex,
    refusal,
    reply,
)

from .core import Simulator, _on_off, _reply_fault

GREETING = b"Welcome to the Meerstetter LTR-1200 MeCom server\r\n"
IDENTIFICATION = "1090-TEC SW v5.10".ljust(20)

INIT, READY, RUN, ERROR, BOOTLOADER, RESETTING = range(6)
STAGE_OFF, STAGE_ON, STAGE_LIVE, STAGE_HW_ENABLE = range(4)

ROOM = 22.0  # °C
COOLANT = 18.0  # °C, the chiller's water
SEEBECK = 0.08  # V/K of the module
RESISTANCE = 1.0  # Ω
CONDUCTANCE = 0.08  # W/K through the module
OBJECT_CAPACITY = 30.0  # J/K
OBJECT_LEAK = 0.05  # W/K from the room into the object (through the vacuum and mounts)
SINK_CAPACITY = 200.0  # J/K
SINK_TO_WATER = 15.0  # W/K while the coolant flows
SINK_TO_AIR = 0.5  # W/K to the room, always
CURRENT_LIMIT = 8.0  # A (parameter 2030)
SINK_LIMIT = 60.0  # °C: above it the device stops with an error
KP = 2.0  # A/K
KI = 0.2  # A/(K·s)
#: The range of parameter 3000 (RNG_TEMP in the TEC-Family protocol).
TARGET_RANGE = (-273.0, 1000.0)
RESET_TIME = 0.2  # s in status 5 before the device restarts

FLOAT32, INT32 = "f", "i"


@dataclass
class Channel:
    """One output channel: its settings as the parameters show them, and its thermal state."""

    object: float = ROOM
    sink: float = ROOM
    target: float = 20.0
    stage: int = STAGE_OFF
    current: float = 0.0
    voltage: float = 0.0
    integral: float = 0.0

    def step(self, dt: float, enabled: bool, flowing: bool) -> None:
        if enabled:
            error = self.object - self.target  # positive: cool harder
            wanted = KP * error + self.integral
            self.current = max(-CURRENT_LIMIT, min(CURRENT_LIMIT, wanted))
            if self.current == wanted:  # no wind-up at the limit
                self.integral += KI * error * dt
        else:
            self.current, self.integral = 0.0, 0.0
        difference = self.sink - self.object
        pumped = SEEBECK * self.current * (self.object + 273.15) - 0.5 * RESISTANCE * self.current**2
        pumped -= CONDUCTANCE * difference
        electrical = RESISTANCE * self.current**2 + SEEBECK * self.current * difference
        self.voltage = RESISTANCE * self.current + SEEBECK * difference if enabled else 0.0
        leak = OBJECT_LEAK * (ROOM - self.object)
        cooling = SINK_TO_AIR * (self.sink - ROOM) + (SINK_TO_WATER * (self.sink - COOLANT) if flowing else 0.0)
        self.object += (leak - pumped) / OBJECT_CAPACITY * dt
        self.sink += (pumped + electrical - cooling) / SINK_CAPACITY * dt


@dataclass
class Device:
    """The controller as a whole: status, error and the channels."""

    channels: list[Channel]
    device_type: int = 1090
    serial_number: int = 4711
    status: int = READY
    error_number: int = 0
    resetting: float = 0.0
    flowing: bool = True
    log: list[str] = field(default_factory=list)


class MeComSimulator(Simulator):
    """Meerstetter TEC-1090 behind an LTR-1200 (MeCom over TCP)."""

    kind: ClassVar[str] = "mecom"
    default_port: ClassVar[int] = TCP_PORT
    framing = FRAMING
    garbage_end: ClassVar[bytes] = b"\r"

    def __init__(
        self, *, channels: int = 2, address: int = 1, output_stage: int = 0, target: float = 20.0,
        seed: int | None = None, speed: float = 1.0,
    ) -> None:
        super().__init__(seed=seed, speed=speed)
        if not 1 <= channels <= 4:
            raise ValueError(f"a TEC controller has 1 to 4 channels, not {channels}")
        if not 1 <= address <= 254:
            raise ValueError(f"a MeCom address is 1 to 254 (0 reaches any device), not {address}")
        self.address = address
        if not 0 <= output_stage <= 3:
            raise ValueError(f"output stage enable is 0 (off), 1 (on), 2 (live) or 3 (HW enable), not {output_stage}")
        self.device = Device([
            Channel(object=ROOM + 0.3 * n, sink=COOLANT + 0.1 * n, target=target, stage=output_stage)
            for n in range(channels)
        ])
        self.greeting = GREETING
        #: Server error codes the device answers instead, by parameter id (`refuse`).
        self.refused: dict[int, int] = {}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--channels", type=int, default=2, help="output channels of the controller (2)")
        parser.add_argument("--address", type=int, default=1, help="the device's MeCom address (1)")
        parser.add_argument(
            "--output-stage", type=int, default=0,
            help="output stage enable at power-up, as stored in the device: 0 off, 1 on, 2 live, 3 HW enable (0)",
        )
        parser.add_argument("--target", type=float, default=20.0, help="target object temperature at power-up, degC (20)")

    @property
    def channels(self) -> list[Channel]:
        return self.device.channels

    # -- the protocol ---------------------------------------------------------------------------

    def handle(self, frame: bytes) -> bytes | None:
        self.received.append(frame)
        text = self.framing.payload(frame).decode("ascii", errors="replace")
        if not text.startswith("#") or len(text) < 11 or not is_hex(text[1:7]):
            return None  # not a frame: the device waits for the next '#'
        address, sequence, payload, check = text[1:3], text[3:7], text[7:-4], text[-4:]
        if int(address, 16) not in (0, self.address):
            return None
        head = f"!{address}{sequence}"
        if check.upper() != crc(text[:-4]):
            return refusal(head, GENERAL_COM)
        if self.device.status == RESETTING:
            return None  # restarting: deaf
        answer = self._command(payload)
        if answer is None:
            return acknowledge(head, check)
        return reply(head, answer)

    def _command(self, payload: str) -> str | None:
        """The reply payload (None: acknowledge) of one request payload."""
        if payload == "RS":
            self.device.status, self.device.resetting = RESETTING, RESET_TIME
            return None
        if payload == "?IF":
            return IDENTIFICATION
        if payload[:3] == "?VR":
            fields = payload[3:]
            if len(fields) != 6 or not is_hex(fields):
                return f"+{FORMAT:02X}"
            return self._refusal(fields) or self._read(int(fields[:4], 16), int(fields[4:], 16))
        if payload[:2] == "VS":
            fields = payload[2:]
            if len(fields) != 14 or not is_hex(fields):
                return f"+{FORMAT:02X}"
            return self._refusal(fields) or self._write(
                int(fields[:4], 16), int(fields[4:6], 16), bytes.fromhex(fields[6:])
            )
        return f"+{CMD_NOT_AVAILABLE:02X}"

    def _refusal(self, fields: str) -> str | None:
        code = self.refused.get(int(fields[:4], 16))
        return None if code is None else f"+{code:02X}"

    def _read(self, parameter: int, instance: int) -> str:
        found = self._parameter(parameter, instance)
        if isinstance(found, str):
            return found
        kind, value, _ = found
        return struct.pack(f">{kind}", value).hex().upper()

    def _write(self, parameter: int, instance: int, data: bytes) -> str | None:
        found = self._parameter(parameter, instance)
        if isinstance(found, str):
            return found
        kind, _, setter = found
        if setter is None:
            return f"+{PAR_READ_ONLY:02X}"
        (value,) = struct.unpack(f">{kind}", data)
        if not setter(value):
            return f"+{PAR_OUT_OF_RANGE:02X}"
        return None

    def _parameter(self, parameter: int, instance: int) -> tuple | str:
        """(type, present value, setter or None) of a parameter instance, or the error reply."""
        device = self.device
        if parameter in DEVICE_PARAMETERS:
            if instance != 1:
                return f"+{INSTANCE_NOT_AVAILABLE:02X}"
            values = {100: device.device_type, 102: device.serial_number, 103: 510, 104: device.status, 105: device.error_number}
            return INT32, values[parameter], None
        if parameter not in CHANNEL_PARAMETERS:
            return f"+{PAR_NOT_AVAILABLE:02X}"
        if not 1 <= instance <= len(self.channels):
            return f"+{INSTANCE_NOT_AVAILABLE:02X}"
        n, channel = instance, self.channels[instance - 1]
        if parameter == 1000:
            return FLOAT32, self.reading(f"object{n}", channel.object), None
        if parameter == 1001:
            return FLOAT32, self.reading(f"sink{n}", channel.sink), None
        if parameter == 1010:
            return FLOAT32, channel.target, None
        if parameter == 1020:
            return FLOAT32, channel.current, None
        if parameter == 1021:
            return FLOAT32, channel.voltage, None
        if parameter == 2010:
            return INT32, channel.stage, lambda value: _set(channel, "stage", value, 0 <= value <= 3)
        if parameter == 2030:
            return FLOAT32, CURRENT_LIMIT, None
        low, high = TARGET_RANGE
        return FLOAT32, channel.target, lambda value: _set(channel, "target", value, low <= value <= high)

    # -- faults, physics, freeze ----------------------------------------------------------------

    def spoil(self, fault: str, frame: bytes) -> bytes:
        text = frame.decode("ascii", errors="replace")
        if fault not in ("checksum", "address", "sequence"):
            return super().spoil(fault, frame)
        if not text.startswith("!") or len(text) < 12:
            return frame
        body, check = text[:-5], text[-5:-1]
        if fault == "checksum":
            return f"{body}{int(check, 16) ^ 0x5A5A:04X}\r".encode("ascii")
        if fault == "address":
            body = f"!{(int(body[1:3], 16) + 1) % 256:02X}{body[3:]}"
        else:
            body = f"{body[:3]}{(int(body[3:7], 16) + 1) % 0x10000:04X}{body[7:]}"
        return acknowledge(body, check) if len(body) == 7 else reply(body, "")

    def step(self, dt: float) -> None:
        device = self.device
        if device.status == RESETTING:
            device.resetting -= dt
            if device.resetting <= 0:
                device.status, device.error_number = READY, 0
                for channel in self.channels:
                    channel.integral = 0.0
        running = False
        for channel in self.channels:
            enabled = device.status in (READY, RUN) and (
                channel.stage in (STAGE_ON, STAGE_LIVE) or (channel.stage == STAGE_HW_ENABLE and device.flowing)
            )
            channel.step(dt, enabled, device.flowing)
            running |= enabled
            if channel.sink > SINK_LIMIT and device.status in (READY, RUN):
                device.status, device.error_number = ERROR, SINK_ERROR
                device.log.append(f"sink at {channel.sink:.1f} °C: output stages off")
        if device.status in (READY, RUN):
            device.status = RUN if running else READY

    def readings(self) -> dict[str, object]:
        values: dict[str, object] = {}
        for n, channel in enumerate(self.channels, start=1):
            values[f"object{n}"] = channel.object
            values[f"sink{n}"] = channel.sink
        return values

    def set_flow(self, flowing: bool) -> None:
        """Start or stop the coolant through the sinks (and the hardware-enable input with it)."""
        with self.lock:
            self.device.flowing = flowing

    # -- the LTR-1200's greeting and the control port -------------------------------------------

    def _control_flow(self, state: str) -> None:
        self.set_flow(_on_off(state))

    def _control_refuse(self, parameter: str, code: str = "05") -> None:
        number = int(parameter)
        if code.lower() == "off":
            self.refused.pop(number, None)
            return
        if not 1 <= int(code, 16) <= 0xFF:
            raise ValueError(f"a server error code is 01 to FF (hex), not {code}")
        self.refused[number] = int(code, 16)

    def clear(self) -> None:
        with self.lock:
            super().clear()
            self.refused.clear()

    def _control_help(self) -> str:
        return super()._control_help() + " | flow on|off | sequence on|off | refuse PARAMETER [CODE|off]"

    def _control_status(self) -> str:
        refused = ",".join(f"{number}:+{code:02X}" for number, code in self.refused.items()) or "none"
        return f"{super()._control_status()} flow={'on' if self.device.flowing else 'off'} refused={refused}"

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **Simulator._CONTROL,
        "flow": _control_flow,
        "sequence": _reply_fault("sequence"),
        "refuse": _control_refuse,
        "clear": clear,
        "status": _control_status,
        "help": _control_help,
    }


#: Parameters of the device as a whole (instance 1 only): type, serial, firmware, status, error.
DEVICE_PARAMETERS = (100, 102, 103, 104, 105)
#: Parameters of each channel (instance = channel).
CHANNEL_PARAMETERS = (1000, 1001, 1010, 1020, 1021, 2010, 2030, 3000)
#: The error number the simulator reports for an overheated sink (parameter 105).
SINK_ERROR = 108


def _set(channel: Channel, name: str, value: float, allowed: bool) -> bool:
    if allowed:
        setattr(channel, name, value)
    return allowed
