"""The Archiver when its store cannot be opened: it stays a device, says why, and opens it later.

Each device runs in a DeviceTestContext process of its own; the store is a PostgreSQL server
that starts only after the Archiver, or a SQLite file in a folder that appears later.
"""

from __future__ import annotations

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.archiver.device import Archiver
from tangolab.archive import open_store
from tangolab.scripting import wait_until
from tests.postgres import INSTALL_HINT, PostgresServer, find_bindir


@pytest.mark.postgres
def test_a_postgres_that_starts_later_is_found_and_archived_into() -> None:
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(INSTALL_HINT)
    server = PostgresServer(bindir)  # its port chosen, not started yet
    try:
        url = server.url()
        with DeviceTestContext(Archiver, properties={"Store": url}, process=True, timeout=30) as archiver:
            assert archiver.state() == tango.DevState.FAULT  # State and Status answer
            status = archiver.status()
            assert "cannot reach PostgreSQL" in status and url in status and "trying again" in status
            archiver.Init()  # allowed, and still FAULT for the same reason
            assert archiver.state() == tango.DevState.FAULT
            assert archiver.rowsWritten == 0 and archiver.writeLag == 0.0
            with pytest.raises(tango.DevFailed, match="not stored"):
                archiver.Message(["info", "operator", "too early"])

            server.start()
            wait_until(lambda: archiver.state() == tango.DevState.ON, 90, what="the archiver opening its store")
            assert "new archive" in archiver.status()  # nothing was there: said so
            archiver.Message(["info", "operator", "stored"])
        with open_store(url, read_only=True) as store:
            assert [m.text for m in store.messages(source="operator")] == ["stored"]
            (note,) = store.messages(level="warning")
            assert "created a new archive" in note.text
    finally:
        server.stop()


def test_a_store_in_a_folder_that_does_not_exist_is_a_fault_until_the_folder_is_there(tmp_path) -> None:
    path = tmp_path / "typo" / "archive.db"
    with DeviceTestContext(Archiver, properties={"Store": str(path)}, process=True, timeout=30) as archiver:
        assert archiver.state() == tango.DevState.FAULT
        assert f"no folder {tmp_path / 'typo'}" in archiver.status()
        assert not path.parent.exists()  # no folders made for a typo
        path.parent.mkdir()
        wait_until(lambda: archiver.state() == tango.DevState.ON, 60, what="the archiver opening its store")
        assert "new archive" in archiver.status()
    assert path.exists()
