"""What an archive has registered, and how a name finds it: attributes (att_conf), the ids of
error texts and history events, and the TANGO_HOSTs its labs archived from (`lab_tango_host`).

Any alias of an attribute's host finds it (hosts.py); a name without host means the lab's; a
lab restarted on another TANGO_HOST continues the history of the first (`archive_host`).
"""

from __future__ import annotations

import os
import threading
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager

from . import schema
from .catalogue import TYPES, Attribute, hdb_type
from .connection import ArchiveError, Connection, locked
from .hosts import canonical_name, canonical_tango_host


class Registry(Connection):
    """The schema made or checked at opening, and the registrations read from it, kept in memory."""

    def __init__(self, read_only: bool = False) -> None:
        self.read_only = read_only
        self._lock = threading.RLock()
        self._attributes: dict[int, Attribute] = {}
        self._by_name: dict[str, Attribute] = {}  # by canonical name
        self._ids: dict[tuple[str, str], int] = {}
        self._enum_labels: dict[int, list[str]] = {}
        if read_only:
            self._check_is_archive()
        else:
            self._create_schema()
        self._load_attributes()

    def _check_is_archive(self) -> None:
        if not self._has_table("att_conf"):
            raise ArchiveError(f"{self.shown} is not an archive: it has no HDB++ tables (att_conf)")

    def _create_schema(self) -> None:
        with self._transaction():
            for statement in schema.statements(self):
                self._execute(statement)
            for table, column, rows in schema.lookup_rows():
                self._executemany(
                    f"INSERT INTO {table} ({column}, {column}_num) VALUES (?, ?) ON CONFLICT DO NOTHING", rows
                )

    def _load_attributes(self) -> None:
        """Read att_conf again: another process may have registered attributes."""
        tango_names = {hdb_type(name): name for name in TYPES}
        rows = self._execute(
            "SELECT att_conf_id, att_name, type, format, write, table_name FROM att_conf"
            " JOIN att_conf_type USING (att_conf_type_id) JOIN att_conf_format USING (att_conf_format_id)"
            " JOIN att_conf_write USING (att_conf_write_id)"
        )
        attributes = [
            Attribute(conf_id, name, tango_names[data_type], data_format, write, table)
            for conf_id, name, data_type, data_format, write, table in rows
            if data_type in tango_names
        ]
        self._attributes = {att.conf_id: att for att in attributes}
        self._by_name = {}
        for att in sorted(attributes, key=lambda att: att.conf_id):  # the first registered wins
            self._by_name.setdefault(canonical_name(att.name), att)
        self._host_map = None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            with self._tx():
                yield
        except BaseException:
            self._ids.clear()  # ids inserted in a rolled-back transaction do not exist
            raise

    def _text_id(self, table: str, text: str) -> int:
        """The id of an error description or a history event, added on first use."""
        if (key := (table, text)) not in self._ids:
            column = schema.TEXT_COLUMNS[table]
            self._execute(f"INSERT INTO {table} ({column}) VALUES (?) ON CONFLICT DO NOTHING", (text,))
            ((self._ids[key],),) = self._execute(f"SELECT {table}_id FROM {table} WHERE {column} = ?", (text,))
        return self._ids[key]

    def _attribute(self, key: int | str) -> Attribute:
        """An attribute by conf id, or by name with any alias of its host, or without host.

        A name without host means the lab's: the attributes archived from $TANGO_HOST, else
        from the TANGO_HOST that archived last, when more than one host has the name.
        """
        for reload in (False, True):
            if reload:
                self._load_attributes()
            if isinstance(key, int):
                if key in self._attributes:
                    return self._attributes[key]
                continue
            name = canonical_name(key)
            if not name.startswith("tango://"):
                found = [att for full, att in self._by_name.items() if full.endswith("/" + name)]
                if len(found) > 1:
                    found = [att for att in found if att.name.startswith(f"tango://{self._lab_host()}/")] or found
                if len(found) > 1:
                    raise ValueError(f"{key!r} is ambiguous: {', '.join(att.name for att in found)}")
                if found:
                    return found[0]
                continue
            if name in self._by_name:
                return self._by_name[name]
            host, path = name.removeprefix("tango://").split("/", 1)
            archived_as = self._hosts().get(host)
            if archived_as and (att := self._by_name.get(f"tango://{archived_as}/{path}")):
                return att
        raise KeyError(f"{key!r} is not archived")

    def _hosts(self) -> dict[str, str]:
        """Each TANGO_HOST a lab archived from: the host:port its attributes are kept under."""
        if not hasattr(self, "_host_map") or self._host_map is None:
            rows = self._execute(f"SELECT tango_host, archived_as, {self.EPOCH.format('since')} FROM lab_tango_host")
            self._host_map = {h: a for h, a, _ in sorted(rows, key=lambda row: row[2])}  # the latest last
        return self._host_map

    def _lab_host(self) -> str | None:
        """Where a name without host is looked for: $TANGO_HOST's attributes, else the latest lab's."""
        hosts = self._hosts()
        if (env := os.environ.get("TANGO_HOST")) and (found := hosts.get(canonical_tango_host(env))):
            return found
        return next(reversed(hosts.values()), None)

    @locked
    def conf_id(self, name: str) -> int | None:
        """The att_conf_id of an archived attribute, found as `values` finds it; None if not archived."""
        try:
            return self._attribute(name).conf_id
        except (KeyError, ValueError):
            return None

    @locked
    def archived_name(self, name: str) -> str:
        """The name a full attribute name is (or would be) archived under: host canonical, and the
        host:port `archive_host` chose for its TANGO_HOST."""
        name = canonical_name(name)
        if not name.startswith("tango://"):
            raise ValueError(f"{name!r} is not an attribute name like tango://host:port/lab/cryocon/1/temperatureA")
        host, path = name.removeprefix("tango://").split("/", 1)
        return f"tango://{self._hosts().get(host, host)}/{path}"

    @locked
    def archive_host(self, tango_host: str, continue_history: bool = True) -> str:
        """The host:port under which an archiver on `tango_host` keeps its lab's attributes.

        The first TANGO_HOST to archive here keeps its own name. Another one (the lab restarted
        on another port or host name) continues that history, unless continue_history is False:
        then it starts its own. The choice is kept, so every later start makes the same.
        """
        current = canonical_tango_host(tango_host)
        self._host_map = None
        hosts = self._hosts()
        if current in hosts and (continue_history or hosts[current] == current):
            return hosts[current]
        archived_as = next(reversed(hosts.values())) if hosts and continue_history else current
        with self._transaction():
            self._execute("DELETE FROM lab_tango_host WHERE tango_host = ?", (current,))
            self._execute(
                f"INSERT INTO lab_tango_host (tango_host, archived_as, since) VALUES (?, ?, {self.TIME_PARAM})",
                (current, archived_as, _time.time()),
            )
        self._host_map = None
        return archived_as

    @locked
    def attributes(self) -> list[Attribute]:
        """Every archived attribute, by name."""
        self._load_attributes()
        return sorted(self._attributes.values(), key=lambda att: att.name)
