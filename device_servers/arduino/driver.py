"""Driver of the lab's Arduino environment box over MIN (protocol.py), with MIN's transport:
each command goes as a transport frame with the next sequence number and is sent again every
`RETRANSMIT_S` until the box acknowledges it, and each frame of the box is acknowledged.

Pure Python over a `Link`, no threads of its own:

    box = EnvironmentBoxDriver(SerialLink("/dev/ttyACM0", framing=FRAMING, write_terminator=b"",
                                          serial_options={"baudrate": 115200}))
    box.connect()                 # opens the port, which resets the board: waits for it to answer
    box.read_status()             # BoxStatus(temperatures=(21.5, 21.25), humidities=(45.2, 44.8), ...)
    box.set_switch(3, True)       # set_sw03on, then get_sw03st -> True

Frames arrive between the replies the driver waits for (an ACK, a late reply): every frame the
box sends goes through `_heard`, whether it came during a wait or while the device was idle.
"""

from __future__ import annotations

import math
import time

from ..core.errors import GarbledReply, LinkError, RejectedValue, shown
from ..core.link import Link
from .protocol import ACK, RESET, SWITCHES, BoxStatus, Frame, ack, command, decode, encode, parse_status

#: MIN's host sends an unacknowledged frame again after this long.
RETRANSMIT_S = 0.1
#: Seconds the board takes to start after its port opened (the bootloader waits, then the sketch starts).
STARTUP_S = 3.0


def dew_point(celsius: float, relative_humidity: float) -> float:
    """The dew point, °C, by the Magnus formula (Sonntag's constants 17.62 and 243.12 °C)."""
    if relative_humidity <= 0:
        return -math.inf
    gamma = math.log(relative_humidity / 100.0) + 17.62 * celsius / (243.12 + celsius)
    return 243.12 * gamma / (17.62 - gamma)


class EnvironmentBoxDriver:
    """The Arduino box: two temperature and humidity sensors, four switches."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self._next_seq = 0  # of the next command
        self._expected = 0  # the sequence number the box's next frame should carry
        self._acked = 0  # the box's next expected sequence number, from its last ACK
        self._replies: dict[int, str] = {}  # request sequence number -> the reply's text after "seq:"
        link.listen((EnvironmentBoxDriver,), self._heard)

    def connect(self, within: float = STARTUP_S) -> BoxStatus:
        """Open the port (from a script; the Tango device opens its own) and wait for the board."""
        self.link.open()
        return self.start(within)

    def close(self) -> None:
        self.link.close()

    def start(self, within: float = STARTUP_S) -> BoxStatus:
        """Reset the transport (RESET, twice as MIN's host does) and ask the status until the board,
        reset by the port's opening, has started and answers, within `within` seconds."""
        with self.link.lock:
            reset = encode(Frame(RESET, b"", 0))
            self.link.transaction(reset + reset, reply=False)
            self._next_seq = self._expected = self._acked = 0
            self._replies.clear()
            return parse_status(self._ask("get_ardsta", "status", within))

    def read_status(self) -> BoxStatus:
        """Both sensors and the four switches, in one exchange."""
        return parse_status(self._ask("get_ardsta", "status"))

    def read_switch(self, switch: int) -> bool:
        return self._ask(f"get_sw{self._switch(switch):02d}st", f"sw{switch:02d}") == "1"

    def set_switch(self, switch: int, on: bool) -> bool:
        """Switch on or off; returns the switch as read back."""
        self._tell(f"set_sw{self._switch(switch):02d}{'on' if on else 'of'}")
        return self.read_switch(switch)

    # -- MIN transport ------------------------------------------------------------------------

    def _ask(self, text: str, key: str, within: float | None = None) -> str:
        """Send a command and return the value of its reply (`<seq>:<key>=<value>`)."""
        with self.link.lock:
            seq = self._send_until(text, lambda seq: seq in self._replies, within)
            reply = self._replies.pop(seq)
        name, equals, value = reply.partition("=")
        if name != key or not equals:
            raise GarbledReply(f"the box answered {shown(reply)} to {text}, not {key}=<value>")
        return value

    def _tell(self, text: str) -> None:
        """Send a command that gets no reply but the ACK."""
        with self.link.lock:
            self._send_until(text, lambda seq: (self._acked - seq - 1) & 0xFF < 0x80, None)

    def _send_until(self, text: str, done, within: float | None) -> int:
        seq, self._next_seq = self._next_seq, (self._next_seq + 1) & 0xFF
        frame = encode(command(seq, text))
        seconds = self.link.timeout if within is None else within
        deadline = time.monotonic() + seconds
        sent_at = -math.inf
        while not done(seq):
            now = time.monotonic()
            if now > deadline:
                raise self.link.lost(LinkError(
                    f"{self.link.url}: the box did not answer {text} within {seconds:g} s"
                ))
            if now - sent_at >= RETRANSMIT_S:
                self.link.transaction(frame, reply=False)
                sent_at = now
            self.link.route_waiting()
            if not done(seq):
                time.sleep(0.005)
        return seq

    def _heard(self, payload: bytes) -> None:
        """Every frame of the box: ACKs move the window, its own frames are acknowledged and kept."""
        frame = decode(payload)
        if frame.id_control == ACK:
            self._acked = frame.seq
        elif frame.id_control == RESET:
            self._expected = 0
        else:
            self._expected = (frame.seq + 1) & 0xFF
            self.link.transaction(encode(ack(self._expected)), reply=False)
            text = frame.payload.decode("ascii", errors="replace")
            seq, colon, rest = text.partition(":")
            if not (colon and seq.isdigit()):
                raise GarbledReply(f"a frame of the box that answers no request: {shown(text)}")
            self._replies[int(seq)] = rest

    @staticmethod
    def _switch(switch: int) -> int:
        if switch not in SWITCHES:
            raise RejectedValue(f"switch {switch} does not exist: the box has switches 1 to {len(SWITCHES)}")
        return switch
