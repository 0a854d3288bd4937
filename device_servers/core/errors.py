"""The two ways talking to an instrument fails, kept apart because they are handled apart.

A `LinkError` means the transport is gone or silent: the device goes FAULT and reconnects.
An `InstrumentError` means the instrument answered, but not with something we can use.
"""

from __future__ import annotations


class LinkError(OSError):
    """The connection could not be opened, dropped, or a reply did not arrive in time."""


class InstrumentError(ValueError):
    """The instrument replied garbage or reported an error of its own."""


class RejectedValue(ValueError):
    """A write or command refused before it reached the instrument; the message says what is allowed."""


def shown(data: bytes | str, limit: int = 40) -> str:
    """Bytes or text from the wire as a person can read them in a status or a log: printable,
    escaped (b'\\x06\\r\\n'), and cut to about `limit` characters."""
    kept = min(len(data), limit)
    while len(text := repr(data[:kept])) > limit + 3 and kept > 1:
        kept -= 1
    more = len(data) - kept
    return f"{text}…(+{more})" if more > 0 else text
