"""The archiver in the running demo lab, once on SQLite and once on a real PostgreSQL server."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import tango

from tangolab import history
from tangolab.archive import open_store
from tangolab.launcher import Lab
from tangolab.scripting import wait_until
from tests.conftest import run_lab
from tests.integration.archive_lab import ARCHIVER, cryocon_lab
from tests.postgres import postgres_server  # noqa: F401 - a fixture

TEMPERATURE = "lab/cryocon/1/temperatureA"


@dataclass
class ArchiveLab:
    lab: Lab
    store: str

    @property
    def archiver(self) -> tango.DeviceProxy:
        return self.lab.proxy(ARCHIVER)

    def values(self, attribute: str, since: float = 0.0) -> tuple:
        found = history.values(attribute, since, store=self.store)
        return found["time"], found["value"], found["quality"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def archive(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArchiveLab]:
    folder = tmp_path_factory.mktemp(f"archive-{request.param}")
    if request.param == "postgresql":
        store = request.getfixturevalue("postgres_server").create_database()
    else:
        store = str(folder / "archive.db")
    config = cryocon_lab().with_free_ports().with_properties(ARCHIVER, Store=[store], RetryPeriod=["1.0"])
    with run_lab(config, folder) as lab:
        archiver = lab.proxy(ARCHIVER)
        wait_until(lambda: archiver.state() == tango.DevState.ON, 60, what="archiver ON")
        yield ArchiveLab(lab, store)


def test_listed_attributes_are_archived_in_time_order(archive):
    wait_until(lambda: len(archive.values(TEMPERATURE)[0]) >= 5, 60, what="5 archived temperatures")
    times, values, qualities = archive.values(TEMPERATURE)
    assert np.all(np.diff(times) > 0)
    assert np.all(qualities == 0)
    assert np.all((values > 1.0) & (values < 400.0))
    assert abs(times[-1] - time.time()) < 60
    sorted_names = archive.archiver.AttributeList
    assert any(name.endswith("/lab/cryocon/1/temperaturea") for name in sorted_names)


def test_input_without_sensor_is_archived_as_invalid(archive):
    wait_until(lambda: len(archive.values("lab/cryocon/1/temperatureD")[0]) >= 1, 60)
    _, values, qualities = archive.values("lab/cryocon/1/temperatureD")
    assert np.all(qualities == 1) and np.all(values.mask)  # no value: masked, not a number


def test_statistics_count_what_was_written(archive):
    archiver = archive.archiver
    wait_until(lambda: archiver.rowsWritten > 10, 60, what="rows written")
    assert archiver.eventsReceived >= archiver.rowsWritten
    assert 0 <= archiver.writeLag < 5.0
    # every row the archiver says it wrote is in the store: count them between two readings
    written_before = archiver.rowsWritten
    stored = sum(len(archive.values(name)[0]) for name in archiver.AttributeList)
    written_after = archiver.rowsWritten
    assert written_before <= stored <= written_after + archiver.queueDepth


def test_attributes_added_and_removed_at_run_time(archive):
    archiver = archive.archiver
    archiver.AttributeAdd("lab/cryocon/1/rampRate1")
    assert any(name.endswith("/lab/cryocon/1/ramprate1") for name in archiver.AttributeList)
    wait_until(lambda: len(archive.values("lab/cryocon/1/rampRate1")[0]) >= 1, 30, what="rampRate1 archived")

    with pytest.raises(tango.DevFailed, match="already archived"):
        archiver.AttributeAdd("lab/cryocon/1/rampRate1")
    archiver.AttributeRemove("lab/cryocon/1/rampRate1")
    assert not any(name.endswith("/ramprate1") for name in archiver.AttributeList)
    with pytest.raises(tango.DevFailed, match="is not archived"):
        archiver.AttributeRemove("lab/cryocon/1/rampRate1")
    with pytest.raises(tango.DevFailed, match="domain/family/member/attribute"):
        archiver.AttributeAdd("temperatureA")


def test_attribute_add_refuses_what_does_not_exist_and_lists_only_what_history_finds(archive):
    archiver = archive.archiver
    with pytest.raises(tango.DevFailed, match="lab/nothing/1") as failure:
        archiver.AttributeAdd("lab/nothing/1/x")
    assert failure.value.args[0].reason == "NoSuchDevice"
    with pytest.raises(tango.DevFailed, match="has no attribute 'nothing'; it has .*temperatureA") as failure:
        archiver.AttributeAdd("lab/cryocon/1/nothing")
    assert failure.value.args[0].reason == "NoSuchAttribute"
    assert not any("nothing" in error for error in archiver.attributesInError)
    for name in archiver.AttributeList:  # every attribute listed is one history finds
        archive.values(name)


def test_enum_attribute_is_archived_with_its_labels(archive):
    archive.archiver.AttributeAdd("lab/cryocon/1/loopType1")
    try:
        wait_until(lambda: len(archive.values("lab/cryocon/1/loopType1")[0]) >= 1, 30, what="loopType1 archived")
        labels = archive.lab.proxy("lab/cryocon/1").get_attribute_config("loopType1").enum_labels
        with open_store(archive.store) as store:
            rows = store._execute(
                "SELECT value_r, value_r_label FROM att_scalar_devenum WHERE value_r IS NOT NULL ORDER BY data_time"
            )
        assert rows and all(label == labels[value] for value, label in rows)  # as an HDB++ reader finds them
    finally:
        archive.archiver.AttributeRemove("lab/cryocon/1/loopType1")


def test_attribute_pushing_no_events_is_polled(archive):
    archive.archiver.AttributeAdd(f"{ARCHIVER}/rowsWritten")  # a plain attribute: no events
    wait_until(lambda: len(archive.values(f"{ARCHIVER}/rowsWritten")[0]) >= 3, 30, what="3 polled reads")
    _, values, _ = archive.values(f"{ARCHIVER}/rowsWritten")
    assert values[-1] > values[0]
    archive.archiver.AttributeRemove(f"{ARCHIVER}/rowsWritten")


def test_messages_are_stored_and_pushed_live(archive):
    archiver = archive.archiver
    received: list[str] = []
    seen, subscribed = threading.Event(), threading.Event()

    def on_message(event: tango.EventData) -> None:
        text = "" if event.err else event.attr_value.value or ""
        if "door open" in text:
            received.append(text)
            seen.set()
        elif "test: subscribed" in text:
            subscribed.set()

    subscription = archiver.subscribe_event("lastMessage", tango.EventType.CHANGE_EVENT, on_message)
    try:
        # an event pushed before the subscription reaches the archiver's ZMQ publisher is lost (ZMQ's
        # late joiner): say something until an event is heard, then the message under test
        wait_until(lambda: archiver.Message(["info", "test", "subscribed"]) or subscribed.is_set(), 20,
                   interval=0.2, what="an event through the subscription")
        archiver.Message(["warning", "operator", "cryostat door open"])
        assert seen.wait(20), "no lastMessage event"
    finally:
        archiver.unsubscribe_event(subscription)
    assert "WARNING operator: cryostat door open" in received[0]
    stored = history.messages(source="operator", store=archive.store)
    assert [(m.level, m.text) for m in stored] == [("WARNING", "cryostat door open")]

    with pytest.raises(tango.DevFailed, match="unknown level"):
        archiver.Message(["loud", "operator", "?"])
    with pytest.raises(tango.DevFailed, match=r"\[level, source, text\]"):
        archiver.Message(["info", "operator"])


def test_device_log_records_become_lab_messages(archive):
    """The cryocon's logging target is the archiver: losing the instrument is logged there."""
    lab, cryocon = archive.lab, archive.lab.proxy("lab/cryocon/1")
    lab.kill("simulator/cryocon", sig=signal.SIGKILL)
    try:
        wait_until(lambda: cryocon.state() == tango.DevState.FAULT, 30, what="cryocon FAULT")
        wait_until(lambda: history.messages(source="lab/cryocon/1", level="error", store=archive.store), 30,
                   what="an ERROR message from lab/cryocon/1")
    finally:
        lab.start_program("simulator/cryocon")
    wait_until(lambda: cryocon.state() == tango.DevState.ON, 30, what="cryocon ON again")
    wait_until(lambda: history.messages(source="lab/cryocon/1", level="info", store=archive.store), 30,
               what="an INFO message: the instrument answers again")


def test_device_server_restart_leaves_one_error_row_and_no_silent_gap(archive):
    lab, archiver = archive.lab, archive.archiver
    killed = time.time()
    lab.kill("TemperatureController/lab")
    wait_until(lambda: archiver.attributesInError, 60, what="the archiver noticing the outage")
    lab.start_program("TemperatureController/lab")
    lab.wait_device("lab/cryocon/1")
    wait_until(lambda: not archiver.attributesInError, 60, what="archiving resumed")
    restarted = time.time()
    wait_until(lambda: archive.values(TEMPERATURE, restarted)[0].size >= 2, 60, what="values after restart")

    with open_store(archive.store) as store:
        errors = store.errors(TEMPERATURE, killed - 1)
    assert len(errors) == 1, errors
    times = archive.values(TEMPERATURE, killed - 5)[0]
    error_at = errors[0][0]
    before = times[times < error_at]
    after = times[times > error_at]
    assert before.size and after.size
    assert error_at - before[-1] < 30, "the outage was recorded late"


def test_archiver_killed_hard_keeps_the_archive_and_resumes(archive):
    lab, archiver = archive.lab, archive.archiver
    wait_until(lambda: archiver.rowsWritten > 0, 30)
    committed = archiver.rowsWritten
    lab.kill("Archiver/lab", sig=signal.SIGKILL)
    killed = time.time()

    with open_store(archive.store) as store:  # readable, and nothing committed was lost
        stored = sum(len(store.values(att.name)[0]) for att in store.attributes())
    assert stored >= committed

    lab.start_program("Archiver/lab")
    lab.wait_device(ARCHIVER)
    wait_until(lambda: archive.values(TEMPERATURE, killed)[0].size >= 2, 60, what="archiving after restart")
