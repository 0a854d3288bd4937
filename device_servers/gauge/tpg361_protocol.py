"""The Pfeiffer TPG 361 / 362's mnemonics protocol ("TPG 361, TPG 362 Mnemonics and Pfeiffer Vacuum
Protocol", BG 5510 BEN, section 1; RS-232 9600 8N1, or Ethernet on TCP port 8000 with the same
bytes), shared by the driver and the simulator.

The host sends a mnemonic of three letters, perhaps with parameters, ended by CR (the LF after it
is optional): `PR1\r\n`. The gauge acknowledges with ACK CR LF (`\x06\r\n`), or NAK CR LF
(`\x15\r\n`) for a mnemonic or parameter it cannot take, and sets its error word. The host then
sends ENQ (`\x05`, one byte) and gets the answer ended by CR LF: `0,1.0000E-03\r\n` (status,
pressure). ETX (`\x03`) clears what the gauge has received of a mnemonic so far.
"""

from __future__ import annotations

from ..core.framing import Framing, FramingError, Lines

TCP_PORT = 8000
ACK, NAK, ENQ, ETX, CR, LF = b"\x06", b"\x15", b"\x05", b"\x03", b"\r", b"\n"
END = b"\r\n"
#: How the host reads what the gauge sends: lines ending in CR LF.
FRAMING = Lines(END)
#: UNI codes, by the names the gauges' shared vocabulary uses (V: the gauge's signal, not a pressure).
UNITS = ("mbar", "Torr", "Pa", "Micron", "hPa", "V")
#: The ERR word's bits, left to right, and their words.
CONTROLLER_ERROR, NO_HARDWARE, BAD_PARAMETER, SYNTAX_ERROR = 8, 4, 2, 1
ERROR_BITS = ("controller error (see the display)", "no hardware", "inadmissible parameter", "syntax error")
#: COM intervals, s, by their code.
STREAM_PERIODS_S = (0.1, 1.0, 60.0)

#: The messages driver and simulator use: mnemonics, the control bytes, the acknowledgements.
MESSAGES = {
    "pressure": "PR1", "second gauge's pressure": "PR2", "unit": "UNI", "gauge identification": "TID",
    "error status": "ERR", "continuous output": "COM", "are you there": "AYT",
    "enquiry": "ENQ", "end of text": "ETX", "acknowledge": "ACK", "not acknowledged": "NAK",
}
_CONTROL = {ENQ: "ENQ", ETX: "ETX", ACK + END: "ACK", NAK + END: "NAK"}


class TpgRequests(Framing):
    """What a TPG receives: a mnemonic up to CR, or ENQ / ETX / LF alone, wherever they stand."""

    max_length = 64

    def split(self, buffer: bytes) -> tuple[bytes, bytes] | None:
        for index, byte in enumerate(buffer):
            single = bytes([byte])
            if single in (ENQ, ETX, LF):
                # a control byte after part of a mnemonic: the part is a frame of its own (ETX ends
                # it, ENQ or LF leave it waiting for its CR)
                if index == 0 or single == ETX:
                    return buffer[: index + 1], buffer[index + 1 :]
                return buffer[index : index + 1], buffer[:index] + buffer[index + 1 :]
            if single == CR:  # with the LF after it when it has come (it may not come at all)
                end = index + 2 if buffer[index + 1 : index + 2] == LF else index + 1
                return buffer[:end], buffer[end:]
        if len(buffer) > self.max_length:
            raise FramingError(f"no CR in {len(buffer)} bytes")
        return None


def message_id(frame: bytes) -> str | None:
    """What one frame is: a mnemonic (`b"UNI,0\r\n"` -> 'UNI'), a control byte or an acknowledgement."""
    if frame in _CONTROL:
        return _CONTROL[frame]
    mnemonic = frame.rstrip(CR + LF).decode("ascii").partition(",")[0].upper()
    return mnemonic if mnemonic in MESSAGES.values() else None
