"""A take of events as archive rows, in order, as the archiver stores them whichever process took them.

The events are the intake's own `Notice`s (shaped as Tango's EventData) around real
`DeviceAttribute` readings; the rows go through the archiver's `Writer` into a real SQLite archive.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import tango

from device_servers.archiver.intake import archive_rows
from device_servers.archiver.subscription import ArchivedAttribute
from device_servers.archiver.writer import Writer
from tangolab.archive import INVALID, SQLiteStore
from tangolab.events import QUEUE_FULL, SERVER_ENDED, Intake, Notice
from tangolab.scripting import wait_until

NAME = "tango://archive-host:10000/lab/test/1/level"
T0 = float(int(time.time()) - 60)  # a minute ago (whole seconds: TimeVal keeps microseconds): that late


def reading(value: float | None, when: float) -> Notice:
    attribute = tango.DeviceAttribute()
    attribute.value, attribute.w_value, attribute.time = value, None, tango.TimeVal.fromtimestamp(when)
    attribute.quality = tango.AttrQuality.ATTR_VALID if value is not None else tango.AttrQuality.ATTR_INVALID
    return Notice.reading(NAME, attribute)


@pytest.fixture(scope="module")
def intake() -> Iterator[Intake]:
    intake = Intake()  # nothing subscribed: the rows come as an intake process would send them
    yield intake
    intake.close()


@pytest.fixture
def archived(tmp_path, intake: Intake) -> Iterator[tuple[SQLiteStore, Writer, ArchivedAttribute]]:
    with SQLiteStore(tmp_path / "archive.db") as store, Writer(store, period=0.01) as writer:
        store.register(NAME, "DevDouble")
        yield store, writer, ArchivedAttribute(NAME, NAME.rpartition("/")[0], writer, intake)


def test_a_take_without_errors_is_its_readings(archived) -> None:
    _, _, attribute = archived
    rows, errors = archive_rows([reading(1.0, T0), reading(None, T0 + 1)], attribute.conf_id, False, False)
    assert not errors
    assert rows == [(attribute.conf_id, T0, 1.0, None, 0, None), (attribute.conf_id, T0 + 1, None, None, INVALID, None)]


def test_errors_become_error_rows_in_order_and_an_outage_is_stored_once(archived) -> None:
    store, writer, attribute = archived
    take = [
        reading(1.0, T0),
        Notice.error(NAME, SERVER_ENDED, "the server ended", T0 + 1),
        Notice.error(NAME, QUEUE_FULL, "events dropped", T0 + 1.5),  # a loss, counted by the feed: no row
        Notice.error(NAME, SERVER_ENDED, "still gone", T0 + 1.6),  # the same outage
        reading(2.0, T0 + 2),
        Notice.error(NAME, "API_EventTimeout", "no answer", T0 + 3),  # the next outage
    ]
    rows, errors = archive_rows(take, attribute.conf_id, False, False)
    assert errors
    assert [(row[1], row[2], row[5]) for row in rows] == [
        (T0, 1.0, None), (T0 + 1, None, "the server ended"), (T0 + 1.6, None, "still gone"), (T0 + 2, 2.0, None),
        (T0 + 3, None, "no answer"),
    ]
    attribute.accept(rows, errors, since=0.0)
    attribute.accept(*archive_rows([Notice.error(NAME, "API_EventTimeout", "no answer", T0 + 4)],
                                   attribute.conf_id, False, False), since=0.0)  # the outage goes on
    assert attribute.error == "no answer"
    wait_until(lambda: writer.stats().written == 4, 30, what="four rows stored")
    assert store.errors(NAME) == [(T0 + 1, "the server ended"), (T0 + 3, "no answer")]
    assert store.values(NAME)[1].tolist() == [1.0, None, 2.0, None]
    assert writer.stats().stored_lag >= 60.0  # late from the values' own time stamps


def test_what_a_subscription_read_first_is_late_only_from_the_subscription(archived) -> None:
    """A value unchanged for a minute, read as the subscription begins, is not a minute late."""
    _, writer, attribute = archived
    subscribed = time.time()
    attribute.accept(*archive_rows([reading(5.0, T0)], attribute.conf_id, False, False), since=subscribed)
    wait_until(lambda: writer.stats().written == 1, 30, what="the value stored")
    assert writer.stats().stored_lag < 30.0


def test_a_value_read_again_is_no_late_news(archived) -> None:
    """Tango re-subscribing by itself reads the last value again, with its old time stamp."""
    _, writer, attribute = archived
    attribute.accept(*archive_rows([reading(5.0, T0)], attribute.conf_id, False, False), since=0.0)
    wait_until(lambda: writer.stats().written == 1, 30, what="the value stored")
    assert writer.stats().stored_lag >= 60.0  # it was news, a minute late
    attribute.accept(*archive_rows([reading(5.0, T0)], attribute.conf_id, False, False), since=0.0)
    wait_until(lambda: writer.stats().skipped == 1, 30, what="the repeat seen")
    assert writer.stats().stored_lag < 30.0
