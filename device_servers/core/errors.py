"""The two ways talking to an instrument fails, kept apart because they are handled apart.

A `LinkError` means the transport is gone or silent: the device goes FAULT and reconnects.
An `InstrumentError` means the instrument answered, but not with something we can use.
"""


class LinkError(OSError):
    """The connection could not be opened, dropped, or a reply did not arrive in time."""


class InstrumentError(ValueError):
    """The instrument replied garbage or reported an error of its own."""


class RejectedValue(ValueError):
    """A write or command refused before it reached the instrument; the message says what is allowed."""
