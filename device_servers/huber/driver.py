"""Driver of a Huber temperature control unit (Unichiller) over Huber's LAI protocol.

Pure Python over a `Link`: the Unichiller's RS-232 port behind a terminal server, or its
Ethernet interface, both give a byte stream (`socket://host:port`).

    chiller = HuberChiller(SerialLink("socket://chiller:8101", framing=Lines(b"\\r")))
    chiller.connect()
    chiller.read_status()       # HuberStatus(mode='COOL', alarm=False, setpoint=15.0, ...)
    chiller.set_setpoint(12.5)
    chiller.set_mode("COOL")

The frame, as Huber's data communication chapter (LAI commands) defines it:

    [ M 0 1 G 0 D s a t t t t p p CR
    start, master, slave address 01, command (V, L or G), data length in hex (the bytes before
    the checksum), data, checksum = the low byte of the sum of every byte before it, in two hex
    digits, then CR. The unit answers `[S01` with the same command.

`G` sets and reads in one exchange: `*` leaves a field as it is. Its reply holds the mode
(C circulation = pump, I internal control = pump and cooling, O off), the alarm flag, the
set-point and the internal and external temperatures in hundredths of a degree, as 16-bit
two's complement hex (C504 = -151.00 °C means no external sensor).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import GarbledReply, InstrumentError, RejectedValue, shown
from ..core.limits import Limits
from ..core.link import Link
from ..core.scpi import parsed
from .protocol import MODES, NO_SENSOR, SLAVE, celsius, checksum, frame, hundredths

#: Set-point range of the Unichiller 025 (its working range, -20 to 40 °C); the `L` command
#: reads the range a given unit allows (`read_limits`).
SETPOINT_LIMITS = Limits(-20.0, 40.0, "degC")


@dataclass(frozen=True)
class HuberStatus:
    mode: str  # one of MODES
    alarm: bool  # the unit reports an alarm
    setpoint: float  # °C
    internal: float  # °C, the bath (internal sensor)
    external: float | None  # °C, None: no external sensor


class HuberChiller:
    """A Huber unit at slave address 01, one method per operation, each one LAI exchange."""

    def __init__(self, link: Link) -> None:
        self.link = link

    def connect(self) -> None:
        """Open the link (from a script; the device opens its own)."""
        self.link.open()

    def close(self) -> None:
        self.link.close()

    def identify(self) -> str:
        """The unit's name (`V` command), e.g. 'Huber Control'."""
        return self._exchange("V", "")

    def read_limits(self) -> tuple[Limits, Limits]:
        """The set-point limits and the working range of this unit (`L` command), in °C."""
        data = self._exchange("L", "*" * 8)
        if len(data) != 16:
            raise GarbledReply(f"limits reply holds {len(data)} characters, not 16: {shown(data)}")
        low, high, work_low, work_high = (self._celsius(data[i : i + 4], data) for i in range(0, 16, 4))
        return Limits(low, high, "degC"), Limits(work_low, work_high, "degC")

    def read_status(self) -> HuberStatus:
        """Mode, alarm, set-point and temperatures, changing nothing."""
        return self._general("*", "****")

    def set_setpoint(self, degrees: float) -> float:
        """Regulate to `degrees` °C (not kept over a power cycle); returns the set-point read back."""
        value = SETPOINT_LIMITS.check("set-point", degrees)
        status = self._general("*", hundredths(value))
        if abs(status.setpoint - value) > 0.006:
            raise InstrumentError(f"the unit did not take set-point {value:g} degC: it reads {status.setpoint:g} degC")
        return status.setpoint

    def set_mode(self, mode: str) -> str:
        """OFF, PUMP (circulation only) or COOL (circulation and temperature control)."""
        name = str(mode).strip().upper()
        if name not in MODES:
            raise RejectedValue(f"mode {mode!r} is not one of {', '.join(MODES)}")
        status = self._general(MODES[name], "****")
        if status.mode != name:
            raise InstrumentError(f"the unit did not switch to {name}: it reports {status.mode}")
        return status.mode

    # -- internals ----------------------------------------------------------------------------

    def _general(self, mode: str, setpoint: str) -> HuberStatus:
        data = self._exchange("G", f"{mode}*{setpoint}")
        if len(data) != 14:
            raise GarbledReply(f"status reply holds {len(data)} characters, not 14: {shown(data)}")
        modes = {char: name for name, char in MODES.items()}
        if data[0] not in modes:
            raise GarbledReply(f"unknown mode {data[0]!r} in status reply {shown(data)}")
        if data[1] not in "0123456789":
            raise GarbledReply(f"unknown alarm flag {data[1]!r} in status reply {shown(data)}")
        external = self._celsius(data[10:14], data)
        return HuberStatus(
            mode=modes[data[0]],
            alarm=data[1] != "0",
            setpoint=self._celsius(data[2:6], data),
            internal=self._celsius(data[6:10], data),
            external=None if external == NO_SENSOR else external,
        )

    def _exchange(self, command: str, data: str) -> str:
        """Send one master frame; return the data field of the unit's reply, checked."""
        request = frame(command, data)
        reply = self.link.transaction(request)
        body, sent_sum = reply[:-2], reply[-2:]
        if not reply.startswith(b"[S" + SLAVE.encode() + command.encode()) or len(reply) < 9:
            raise GarbledReply(f"reply {shown(reply)} to {shown(request)} is not from slave {SLAVE}")
        if checksum(body) != sent_sum:
            raise GarbledReply(
                f"reply {shown(reply)} has checksum {shown(sent_sum)}, its bytes sum to {checksum(body).decode()}"
            )
        length = parsed(lambda field: int(field, 16), body[5:7].decode("latin-1"), f"length field of {shown(reply)}")
        if length != len(body):
            raise GarbledReply(f"reply {shown(reply)} says {length} bytes but holds {len(body)}")
        return parsed(lambda data: data.decode("ascii"), body[7:], f"data of {shown(reply)}")

    @staticmethod
    def _celsius(text: str, reply: str) -> float:
        return parsed(celsius, text, f"temperature in {shown(reply)}")
