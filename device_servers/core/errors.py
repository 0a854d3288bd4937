"""The two ways talking to an instrument fails, kept apart because they are handled apart.

A `LinkError` means the transport is gone, silent or garbled (`GarbledReply`): the device goes
FAULT and reconnects. An `InstrumentError` means the instrument itself refused or reported an
error (MeCom `+05`, a Modbus exception reply, the 487's error word): that one operation fails
with the instrument's words, and the link stays up.
"""

from __future__ import annotations


class LinkError(OSError):
    """The connection could not be opened, dropped, or a reply did not arrive in time."""


class GarbledReply(LinkError):
    """The bytes are no reply of this protocol (garbage, a bad checksum, a cut or unparseable
    frame, a wrong number of answers): where the next frame starts is unknown, so reconnect."""


class InstrumentError(ValueError):
    """The instrument refused a request or reported an error of its own, in its own words."""


class RejectedValue(ValueError):
    """A write or command refused before it reached the instrument; the message says what is allowed."""


def shown(data: bytes | str, limit: int = 40) -> str:
    """Bytes or text from the wire as a person can read them in a status or a log: printable
    ASCII, escaped (b'\\x06\\r\\n', '\\ufffd'), and cut to about `limit` characters ("...(+12)").

    ASCII because statuses and DevFailed descriptions cross Tango as latin-1: anything else
    arrives mangled (an ellipsis as three other characters)."""
    kept = min(len(data), limit)
    while len(text := ascii(data[:kept])) > limit + 3 and kept > 1:
        kept -= 1
    more = len(data) - kept
    return f"{text}...(+{more})" if more > 0 else text


def for_tango(text: str) -> str:
    """`text` as Tango carries a status or a DevFailed description (latin-1): any other character
    escaped (\\u2026) instead of arriving as mojibake."""
    return text.encode("latin-1", errors="backslashreplace").decode("latin-1")
