"""The Archiver device when its PostgreSQL server goes away and comes back.

The device runs in a DeviceTestContext process of its own, against a PostgreSQL server of the
test's own, which the test stops and starts again.
"""

from __future__ import annotations

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.archiver.device import Archiver
from tangolab.archive import open_store
from tangolab.scripting import wait_until
from tests.postgres import PostgresServer, private_postgres_server  # noqa: F401 (fixture)


@pytest.mark.postgres
def test_messages_fail_clearly_while_postgres_is_down_and_are_stored_once_it_is_back(
    private_postgres_server: PostgresServer,  # noqa: F811 (fixture)
) -> None:
    server = private_postgres_server
    url = server.url()
    with DeviceTestContext(Archiver, properties={"Store": url}, process=True, timeout=30) as archiver:
        wait_until(lambda: archiver.state() == tango.DevState.ON, 30, what="archiver ON")
        archiver.Message(["info", "operator", "before"])
        server.halt()
        with pytest.raises(tango.DevFailed) as failure:
            archiver.Message(["warning", "operator", "while down"])
        error = failure.value.args[0]
        assert error.reason == "ArchiveUnavailable"
        assert "not stored" in error.desc and url in error.desc
        server.start()  # returns when the server accepts connections
        archiver.Message(["info", "operator", "after"])
    with open_store(url) as store:
        assert [message.text for message in store.messages(source="operator")] == ["before", "after"]
