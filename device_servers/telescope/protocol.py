"""A telescope's control system as a lab drives it: offsets from the pointing, in-position,
focus, and the weather at the dome (humidity, dew point).

The GTC's control system is reached through CORBA (`gtcserver`: do_offset, focus, telescope
parameters, humidity, dew point); tangolab's telescope link carries the same operations as text
lines over TCP, one request a line, one answer a line:

    OFFSET <ra> <dec>    -> OK          move to these offsets from the pointing, arcsec
    OFFSET?              -> OK <ra> <dec>   where the telescope is now (on the way too)
    INPOS?               -> OK 1 | OK 0     arrived and settled at the offsets asked for
    FOCUS <mm>           -> OK          the secondary mirror's focus position
    FOCUS?               -> OK <mm>
    WEATHER?             -> OK <humidity %> <dew point degC> <air degC>

and every refusal is one line `ERR <reason>`.
"""

from __future__ import annotations

from ..core.limits import Limits

#: Offsets from the pointing a nod may ask for, arcsec.
OFFSET_RANGE = Limits(-3600.0, 3600.0, "arcsec")
FOCUS_RANGE = Limits(-10.0, 10.0, "mm")
#: How fast offsets are made, arcsec a second, and how long the telescope settles after one.
SLEW_ARCSEC_PER_S = 30.0
SETTLE_S = 0.5


def number_text(value: float) -> str:
    return f"{value:.3f}"


#: The link's requests (the first word of a line).
MESSAGES = {word: word for word in ("OFFSET", "OFFSET?", "INPOS?", "FOCUS", "FOCUS?", "WEATHER?")}


def message_id(frame: bytes) -> str | None:
    """The request of a line."""
    words = frame.split()
    word = words[0].decode("ascii").upper() if words else ""
    return word if word in MESSAGES else None
