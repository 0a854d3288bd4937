"""`Store`: an archive, whichever back-end holds it.

Attributes are registered once (registry.py), then their values, errors and history go in
(writing.py) and come out in their Tango type (reading.py); lab messages too. The SQL is shared;
SQLiteStore and PostgresStore give their dialect and connection. Times cross this API as epoch
seconds with both.
"""

from __future__ import annotations

from .reading import Reading
from .writing import Writing


class Store(Writing, Reading):
    """An archive: attributes registered once, then their values, errors and history; lab messages.

    Every public method is thread-safe: the archiver's writer thread and queries share one connection.
    """
