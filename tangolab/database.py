"""`python -m tangolab.database --host H --port P 2`: pytango's Tango database server as a lab runs it.

pytango's database tells Tango's Starter (`tango/admin/<host>`, UpdateServersInfo) when a server is
registered or exported, from inside the request; the proxy it builds for that asks the database
itself, busy with that very request, so with TANGO_HOST pointing at itself each `DbPutServerInfo`
stalls for the 3 s client time-out (measured). tangolab tells Starter itself (see
`tangolab/starter.py`), so this database does not.
"""

from __future__ import annotations

from tango.databaseds import database
from tango.databaseds.db_access import sqlite3 as sqlite_access


def quiet_database(personal_name: str = "2") -> sqlite_access.Sqlite3Database:
    db = sqlite_access.Sqlite3Database(personal_name)
    db.fire_to_starter = False
    return db


if __name__ == "__main__":
    sqlite_access.get_db = quiet_database
    database.main()
