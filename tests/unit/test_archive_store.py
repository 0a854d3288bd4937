"""The archive stores: the same suite runs against SQLite and PostgreSQL.

An attribute is registered once under its full name and gets an att_conf_id; values go in by
batches of (conf_id, time, value_r, value_w, quality, error) and come back as numpy arrays.
"""

from __future__ import annotations

import datetime
import os
import socket
import threading
import time

import numpy as np
import pytest
import tango

from device_servers.archiver.writer import Writer
from tangolab.archive import (
    INVALID,
    ArchiveError,
    PostgresStore,
    SQLiteStore,
    Store,
    canonical_host,
    open_store,
    without_password,
)
from tangolab.scripting import wait_until
from tests.postgres import PostgresServer, postgres_server, postgres_url, private_postgres_server  # noqa: F401

HOST = "tango://lab-host:10000/"
T0 = 1_700_000_000.0  # times a quarter second apart are exact in both stores


def name(attribute: str) -> str:
    return HOST + "lab/cryocon/1/" + attribute.lower()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path) -> Store:
    if request.param == "sqlite":
        opened: Store = SQLiteStore(tmp_path / "archive.db")
    else:
        opened = PostgresStore(request.getfixturevalue("postgres_url"))
    yield opened
    opened.close()


def write(store: Store, conf_id: int, values: list, start: float = T0) -> np.ndarray:
    times = start + 0.25 * np.arange(len(values))
    store.insert_values([(conf_id, t, v, None, 0, None) for t, v in zip(times.tolist(), values, strict=True)])
    return times


NAN = float("nan")
# every scalar type HDB++ archives (DevEnum: test_enum_values_come_back_as_their_labels), with its extremes
SCALARS = {
    "DevBoolean": ([True, False, True], np.bool_),
    "DevShort": ([-32768, 7, 32767], np.int16),
    "DevLong": ([1, -7, 2**31 - 1, -(2**31)], np.int32),
    "DevLong64": ([2**40, -1, 2**60 + 1, -(2**63)], np.int64),  # beyond 2**53: exact
    "DevUChar": ([0, 7, 255], np.uint8),
    "DevUShort": ([0, 65535], np.uint16),
    "DevULong": ([0, 2**32 - 1], np.uint32),
    "DevULong64": ([0, 2**53 + 1, 2**62 + 3], np.uint64),
    "DevFloat": ([1.5, -2.25, NAN], np.float32),
    "DevDouble": ([1.5, -2.25, 1e300, 0.1 + 0.2, NAN, float("inf")], np.float64),
    "DevString": (["cold", "a b\tc", 'ünïcode, "quoted", {braced}', ""], object),
    "DevState": ([tango.DevState.ON, tango.DevState.FAULT, tango.DevState.RUNNING], object),
}


@pytest.mark.parametrize("data_type", SCALARS)
def test_scalars_come_back_in_their_own_type_and_a_missing_value_is_masked(store: Store, data_type: str) -> None:
    conf_id = store.register(name("x"), data_type)
    sent, dtype = SCALARS[data_type]
    times = write(store, conf_id, sent)
    store.insert_error(conf_id, times[-1] + 1, "link lost")  # no value: masked, not a NaN or a 0
    got_times, got, quality = store.values(name("x"))
    np.testing.assert_array_equal(got_times, [*times, times[-1] + 1])
    assert quality.tolist() == [0] * len(sent) + [INVALID]
    assert got.dtype == dtype
    assert got.mask.tolist() == [False] * len(sent) + [True]
    assert [_same(v) for v in got.tolist()[:-1]] == [_same(v) for v in sent]  # a real NaN stays a value
    assert got.tolist()[-1] is None
    if data_type == "DevState":
        assert all(isinstance(v, tango.DevState) for v in got[:-1])
    last_value = store.state_at(times[-1])[name("x")]  # as Python has it
    assert type(last_value[1]) is type(sent[-1]) and _same(last_value[1]) == _same(sent[-1])
    assert store.state_at(times[-1] + 1)[name("x")] == (times[-1] + 1, None, INVALID)


def _same(value):
    """A value comparable with ==, NaN included."""
    return "NaN" if isinstance(value, float) and np.isnan(value) else value


SPECTRA = {
    "DevDouble": [np.array([1.5, -2.0, 3e-300]), np.array([]), np.arange(1000.0)],
    "DevLong": [np.array([1, -2, 3], np.int32), np.array([7], np.int32)],
    "DevULong64": [np.array([0, 2**63 + 5], np.uint64)],
    "DevBoolean": [np.array([True, False])],
    "DevString": [np.array(["a", "b c", '{x,"y"}', ""], object)],
    "DevState": [np.array([0, 8, 6], np.int32)],
}


@pytest.mark.parametrize("data_type", SPECTRA)
def test_spectra_round_trip(store: Store, data_type: str) -> None:
    conf_id = store.register(name("s"), data_type, tango.AttrDataFormat.SPECTRUM)
    times = write(store, conf_id, SPECTRA[data_type])
    got_times, got, _ = store.values(name("s"))
    np.testing.assert_array_equal(got_times, times)
    assert len(got) == len(SPECTRA[data_type])
    if data_type == "DevState":  # states come back as DevState
        assert [v.tolist() for v in got] == [[tango.DevState.values[int(i)] for i in s] for s in SPECTRA[data_type]]
        return
    for expected, value in zip(SPECTRA[data_type], got, strict=True):
        assert value.dtype == expected.dtype
        np.testing.assert_array_equal(value, expected)
    np.testing.assert_array_equal(store.state_at(times[-1])[name("s")][1], SPECTRA[data_type][-1])


def test_microsecond_times_survive(store: Store) -> None:
    conf_id = store.register(name("t"), "DevDouble")
    times = T0 + np.array([0.000001, 0.123456, 0.999999, 1.5])
    store.insert_values([(conf_id, t, 1.0, None, 0, None) for t in times.tolist()])
    np.testing.assert_allclose(store.values(name("t"))[0], times, rtol=0, atol=5e-7)


def test_errors_are_rows_without_value_and_invalid(store: Store) -> None:
    temperature = store.register(name("temperatureA"), "DevDouble")
    spectrum = store.register(name("curve"), "DevDouble", "SPECTRUM")
    status = store.register(name("status"), "DevString")
    write(store, temperature, [4.2])
    for conf_id in (temperature, spectrum, status):
        store.insert_error(conf_id, T0 + 1, "link lost: no reply in 1.0 s")
    store.insert_values([(temperature, T0 + 2, 4.3, None, 0, None)])

    times, got, quality = store.values(name("temperatureA"))
    np.testing.assert_array_equal(times, [T0, T0 + 1, T0 + 2])
    assert got.tolist() == [4.2, None, 4.3] and np.isnan(got.data[1])
    np.testing.assert_array_equal(quality, [0, INVALID, 0])
    assert store.errors(name("temperatureA")) == [(T0 + 1, "link lost: no reply in 1.0 s")]
    for other in ("curve", "status"):
        _, got, quality = store.values(name(other))
        assert got.tolist() == [None] and quality.tolist() == [INVALID]
    assert store.state_at(T0 + 1.5)[name("status")] == (T0 + 1, None, INVALID)


@pytest.mark.parametrize("data_type, value", [("DevDouble", 4.2), ("DevString", "cold"), ("DevLong", 7)])
def test_a_long_outage_before_the_first_value_reads_back(store: Store, data_type: str, value) -> None:
    conf_id = store.register(name("x"), data_type)
    outage = [(conf_id, T0 + 0.25 * i, None, None, INVALID, None) for i in range(3000)]  # INVALID readings
    store.insert_values([*outage, (conf_id, T0 + 1000, value, None, 0, None)])
    times, got, quality = store.values(name("x"))
    assert len(times) == 3001 and quality[-1] == 0 and got[-1] == value
    assert np.all(quality[:-1] == INVALID) and got.mask[:-1].all() and not got.mask[-1]


def test_a_second_value_at_the_same_time_is_skipped(store: Store) -> None:
    conf_id = store.register(name("x"), "DevDouble")
    store.insert_values([(conf_id, T0, 1.0, None, 0, None), (conf_id, T0, 2.0, None, 0, None)])
    store.insert_values([(conf_id, T0, 3.0, None, 0, None)])
    assert store.values(name("x"))[1].tolist() == [1.0]


def test_write_values_and_quality_are_kept(store: Store) -> None:
    conf_id = store.register(name("setpoint1"), "DevDouble", write=tango.AttrWriteType.READ_WRITE)
    store.insert_values([(conf_id, T0, 10.0, 12.5, tango.AttrQuality.ATTR_CHANGING, None)])
    assert store.values(name("setpoint1"))[2].tolist() == [3]
    assert store._execute("SELECT value_w FROM att_scalar_devdouble") == [(12.5,)]
    assert store.attributes()[0].write == "READ_WRITE"


def test_register_is_idempotent_and_checks_the_type(store: Store) -> None:
    conf_id = store.register(name("temperatureA"), tango.CmdArgType.DevDouble)
    assert store.register(name("temperatureA"), "DEV_DOUBLE") == conf_id
    with pytest.raises(ValueError, match="archived as SCALAR DevDouble"):
        store.register(name("temperatureA"), "DevLong")
    with pytest.raises(ValueError, match="images are not archived"):
        store.register(name("frame"), "DevUShort", "IMAGE")
    with pytest.raises(ValueError, match="not an attribute name"):
        store.register("temperatureA", "DevDouble")
    (att,) = store.attributes()
    assert (att.conf_id, att.name, att.data_type, att.data_format, att.table) == (
        conf_id,
        name("temperatureA"),
        "DevDouble",
        "SCALAR",
        "att_scalar_devdouble",
    )
    (row,) = store._execute("SELECT cs_name, domain, family, member, name FROM att_conf")
    assert tuple(row) == ("lab-host:10000", "lab", "cryocon", "1", "temperaturea")


def test_attributes_are_found_without_host_and_in_any_case(store: Store) -> None:
    write(store, store.register(name("temperatureA"), "DevDouble"), [4.2])
    assert store.values("lab/cryocon/1/TemperatureA")[1].tolist() == [4.2]
    with pytest.raises(KeyError, match="not archived"):
        store.values("lab/cryocon/1/nothing")


def test_another_connection_sees_new_attributes(store: Store) -> None:
    url = store.path if isinstance(store, SQLiteStore) else store.url
    with open_store(url) as other:
        write(other, other.register(name("late"), "DevDouble"), [1.0])
    store.insert_values([(store.register(name("late"), "DevDouble"), T0 + 1, 2.0, None, 0, None)])
    assert store.values("lab/cryocon/1/late")[1].tolist() == [1.0, 2.0]


def test_messages_by_source_level_and_time(store: Store) -> None:
    store.insert_messages(
        [
            (T0, "info", "lab/cryocon/1", "cooling started"),
            (T0 + 60, "WARNING", "lab/cryocon/1", "heater at 95 %"),
            (T0 + 120, "error", "lab/stage/1", "limit switch hit"),
            (T0 + 180, "info", "operator", "sample changed; it's the 'B' one"),
        ]
    )
    assert [m.text for m in store.messages()] == [
        "cooling started",
        "heater at 95 %",
        "limit switch hit",
        "sample changed; it's the 'B' one",
    ]
    assert [m.time for m in store.messages(source="lab/cryocon/1")] == [T0, T0 + 60]
    assert [m.source for m in store.messages(level="error")] == ["lab/stage/1"]
    assert [m.level for m in store.messages(start=T0 + 30, end=T0 + 150)] == ["WARNING", "ERROR"]
    assert store.messages(source="operator", level="warning") == []


def test_state_at_is_the_last_value_of_each_attribute(store: Store) -> None:
    temperature = store.register(name("temperatureA"), "DevDouble")
    state = store.register(name("State"), "DevState")
    write(store, temperature, [4.0, 4.1, 4.2])  # at T0, T0 + 0.25, T0 + 0.5
    write(store, state, [tango.DevState.ON, tango.DevState.ALARM], start=T0 + 0.3)
    assert store.state_at(T0 - 1) == {}
    assert store.state_at(T0 + 0.1) == {name("temperatureA"): (T0, 4.0, 0)}
    assert store.state_at(T0 + 0.3) == {
        name("temperatureA"): (T0 + 0.25, 4.1, 0),
        name("state"): (T0 + 0.3, tango.DevState.ON, 0),
    }
    assert store.state_at(T0 + 10)[name("state")] == (T0 + 0.55, tango.DevState.ALARM, 0)


def test_a_query_of_100k_points_returns_the_right_arrays(store: Store) -> None:
    conf_id = store.register(name("temperatureA"), "DevDouble")
    other = store.register(name("temperatureB"), "DevDouble")
    n = 100_000
    times = T0 + 0.25 * np.arange(n)
    values = np.sin(np.arange(n) / 1000.0)
    quality = np.where(np.arange(n) % 1000 == 0, 2, 0)
    rows = [
        (c, t, v, None, q, None)
        for t, v, q in zip(times.tolist(), values.tolist(), quality.tolist(), strict=True)
        for c in (conf_id, other)
    ]
    for first in range(0, len(rows), 20_000):
        store.insert_values(rows[first : first + 20_000])
    got_times, got, got_quality = store.values(name("temperatureA"), times[10], times[n - 11])
    np.testing.assert_array_equal(got_times, times[10 : n - 10])
    np.testing.assert_array_equal(got, values[10 : n - 10])
    np.testing.assert_array_equal(got_quality, quality[10 : n - 10])
    assert got_quality.dtype == np.int16


def test_parameters_and_history_events(store: Store) -> None:
    conf_id = store.register(name("temperatureA"), "DevDouble")
    store.insert_parameters(
        conf_id, T0, label="Temperature A", unit="K", format="%.3f", archive_period="1000"
    )
    store.insert_history_event(conf_id, "start", T0)
    store.insert_history_event(conf_id, "stop", T0 + 5)
    with pytest.raises(ValueError, match="unknown parameters"):
        store.insert_parameters(conf_id, T0, colour="red")
    with pytest.raises(ValueError, match="unknown event"):
        store.insert_history_event(conf_id, "explode", T0)
    (row,) = store._execute("SELECT label, unit, format, archive_period, description FROM att_parameter")
    assert tuple(row) == ("Temperature A", "K", "%.3f", "1000", "")
    events = store._execute(
        "SELECT event FROM att_history JOIN att_history_event USING (att_history_event_id) ORDER BY event_time"
    )
    assert [event for (event,) in events] == ["start", "stop", "add"]  # "add" was at registration, now


def test_writer_stores_every_value_put_from_many_threads(store: Store) -> None:
    ids = [store.register(name(f"a{i}"), "DevDouble") for i in range(4)]
    with Writer(store, batch_size=500, period=0.01) as writer:

        def produce(conf_id: int) -> None:
            for i in range(5000):
                writer.put(conf_id, T0 + i * 0.25, float(i))

        threads = [threading.Thread(target=produce, args=(conf_id,)) for conf_id in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    stats = writer.stats()
    assert (stats.received, stats.written, stats.failed, stats.queue_depth) == (20_000, 20_000, 0, 0)
    for i in range(4):
        np.testing.assert_array_equal(store.values(name(f"a{i}"))[1], np.arange(5000.0))


def test_writer_reports_a_failed_batch_and_goes_on(store: Store) -> None:
    conf_id = store.register(name("x"), "DevDouble")
    with Writer(store, batch_size=1, period=0.01) as writer:
        writer.put(9999, T0, 1.0)  # no such attribute
        writer.put(conf_id, T0, 1.0)
        writer.put(conf_id, T0 + 1, 0.0, quality=INVALID, error="link lost")
    stats = writer.stats()
    assert (stats.received, stats.written, stats.failed) == (3, 2, 1)
    assert "9999" in stats.last_error
    assert store.values(name("x"))[2].tolist() == [0, INVALID]


def test_enum_values_are_stored_with_their_labels(store: Store) -> None:
    scalar = store.register(name("loopType1"), "DevEnum", write="READ_WRITE")
    spectrum = store.register(name("loopTypes"), "DevEnum", "SPECTRUM")
    for conf_id in (scalar, spectrum):
        store.insert_parameters(conf_id, T0, enum_labels=["OFF", "MAN", "PID"], label="Loop type")
    store.insert_values([
        (scalar, T0, 2, 1, 0, None),
        (scalar, T0 + 1, 7, None, 0, None),  # a value without a label
        (spectrum, T0, np.array([0, 2], np.int16), None, 0, None),
    ])
    assert store.values(name("loopType1"))[1].tolist() == ["PID", 7]  # labels; a number without one
    assert [v.tolist() for v in store.values(name("loopTypes"))[1]] == [["OFF", "PID"]]
    assert store._execute(
        "SELECT value_r_label, value_w_label FROM att_scalar_devenum ORDER BY data_time"
    ) == [("PID", "MAN"), (None, None)]
    ((labels,),) = store._execute("SELECT value_r_label FROM att_array_devenum")
    assert store._decode_array(labels) == ["OFF", "PID"]
    with open_store(store.url if isinstance(store, PostgresStore) else store.path) as again:  # labels kept
        again.insert_values([(scalar, T0 + 2, 1, None, 0, None)])
        later = f"SELECT value_r_label FROM att_scalar_devenum WHERE data_time = {again.TIME_PARAM}"
        assert again._execute(later, (T0 + 2,)) == [("MAN",)]


@pytest.mark.postgres
def test_writer_holds_values_while_postgres_is_down_and_stores_them_when_it_is_back(
    private_postgres_server: PostgresServer,  # noqa: F811 (fixture)
) -> None:
    server = private_postgres_server
    with PostgresStore(server.url()) as store, Writer(store, period=0.01) as writer:
        conf_id = store.register(name("x"), "DevDouble")
        writer.put(conf_id, T0, 0.0)
        wait_until(lambda: writer.stats().written == 1, 30, what="the first value stored")
        server.halt()
        for i in range(1, 101):
            writer.put(conf_id, T0 + 0.25 * i, float(i))
        wait_until(lambda: writer.stats().failing, 30, what="the writer sees the database gone")
        down = writer.stats()
        assert (down.written, down.failed, down.dropped, down.queue_depth) == (1, 0, 0, 100)
        assert "connection" in down.last_error  # PostgreSQL's own words: the server cut it off, or refuses it
        server.start()
        wait_until(lambda: writer.stats().written == 101, 60, what="the held values stored")
        assert not writer.stats().failing and writer.stats().failed == 0
        np.testing.assert_array_equal(store.values(name("x"))[1], np.arange(101.0))


def test_writer_counts_a_refused_value_and_stores_the_next(store: Store) -> None:
    conf_id = store.register(name("counts"), "DevShort")
    with Writer(store, batch_size=1, period=0.01) as writer:
        writer.put(conf_id, T0, 100_000)  # no DevShort: PostgreSQL refuses it, SQLite keeps what it gets
        writer.put(conf_id, T0 + 1, 7)
        writer.put(conf_id, T0 + 2, None, INVALID, error="Traceback ...\n" * 2000)  # a very long error
    stats = writer.stats()
    refused = 1 if isinstance(store, PostgresStore) else 0
    assert (stats.written, stats.failed, stats.queue_depth, stats.failing) == (3 - refused, refused, 0, False)
    assert store.values(name("counts"))[1][-2] == 7
    ((when, text),) = store.errors(name("counts"))
    assert when == T0 + 2 and text.startswith("Traceback ...") and len(text) == 1000


def test_writer_holds_values_while_sqlite_is_locked_and_stores_them_when_it_is_free(tmp_path) -> None:
    with SQLiteStore(tmp_path / "archive.db") as store, SQLiteStore(tmp_path / "archive.db") as other:
        store._execute("PRAGMA busy_timeout = 100")
        conf_id = store.register(name("x"), "DevDouble")
        with Writer(store, period=0.01) as writer:
            other._execute("BEGIN IMMEDIATE")  # another writer keeps the file locked
            for i in range(100):
                writer.put(conf_id, T0 + 0.25 * i, float(i))
            wait_until(lambda: writer.stats().failing, 30, what="the writer sees the file locked")
            assert "database is locked" in writer.stats().last_error
            assert (writer.stats().failed, writer.stats().queue_depth) == (0, 100)
            other._execute("ROLLBACK")
            wait_until(lambda: writer.stats().written == 100, 30, what="the held values stored")
        np.testing.assert_array_equal(store.values(name("x"))[1], np.arange(100.0))


def test_writer_drops_values_beyond_its_queue(store: Store) -> None:
    writer = Writer(store, max_queue=10)  # not started: nothing drains the queue
    for i in range(15):
        writer.put(1, T0 + i, 1.0)
    assert (writer.stats().queue_depth, writer.stats().dropped) == (10, 5)


def test_a_password_in_a_store_url_is_not_shown() -> None:
    assert without_password("postgresql://lab:s3cret@db:5432/hdb") == "postgresql://lab:***@db:5432/hdb"
    assert without_password("postgresql://db/hdb?sslmode=require&password=s3cret").endswith("password=***")
    for shown in ("postgresql://lab@db/hdb", "sqlite:////var/archive.db", "var/archive.db"):
        assert without_password(shown) == shown


def test_open_store_chooses_by_url(tmp_path) -> None:
    with open_store(f"sqlite:///{tmp_path}/a.db") as sqlite:
        assert isinstance(sqlite, SQLiteStore) and sqlite.path == f"{tmp_path}/a.db"
    with open_store(tmp_path / "b.db") as sqlite:
        assert isinstance(sqlite, SQLiteStore)
    with pytest.raises(ArchiveError, match="no archive"):
        open_store(tmp_path / "missing.db", create=False)
    with pytest.raises(ArchiveError, match="unknown archive URL"):
        open_store("mysql://host/hdb")


@pytest.mark.postgres
def test_pyhdbpp_reads_our_postgres_archive(postgres_url: str) -> None:  # noqa: F811 (fixture)
    """HDB++'s own reader finds the attributes and the values: the schema is HDB++'s."""
    import psycopg

    try:
        from pyhdbpp.timescaledb import TimescaleDbReader
    except ImportError as error:  # its TimescaleDB reader needs psycopg2
        message = f"pyhdbpp's TimescaleDB reader cannot be imported ({error}): pip install psycopg2-binary"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)

    with PostgresStore(postgres_url) as store:
        temperature = store.register(name("temperatureA"), "DevDouble")
        curve = store.register(name("curve"), "DevLong", "SPECTRUM")
        times = write(store, temperature, [4.2, 4.3, 4.4])
        write(store, curve, [np.array([1, 2, 3]), np.array([4, 5])])
        store.insert_error(temperature, T0 + 10, "link lost")

    info = psycopg.conninfo.conninfo_to_dict(postgres_url)
    reader = TimescaleDbReader(
        host=info["host"],
        port=int(info["port"]),
        user=info["user"],
        password="",
        database=info["dbname"],
        connection_pool_max_conn=2,  # it takes a second connection while holding the first
    )
    assert sorted(reader.get_attributes()) == sorted([name("temperatureA"), name("curve")])
    start, stop = (datetime.datetime.fromtimestamp(t) for t in (T0 - 1, T0 + 20))
    rows = reader.get_attribute_values(name("temperatureA"), start, stop)  # valid values only, newest first
    assert [(t, value, quality) for t, value, _, quality, _ in rows] == list(
        zip(times[::-1], [4.4, 4.3, 4.2], [0] * 3)
    )
    rows = reader.get_attribute_values(name("curve"), start, stop)
    assert [value for _, value, _, _, _ in rows] == [[4, 5], [1, 2, 3]]
    assert reader.get_last_attribute_value(name("temperatureA")) == [T0 + 10, None]  # the error row


def test_writer_counts_a_repeated_value_as_skipped_not_written(store: Store) -> None:
    """A re-subscription sends the last value again: the archive keeps one row and says so."""
    conf_id = store.register(name("again"), "DevDouble")
    with Writer(store) as writer:
        writer.put(conf_id, T0, 4.2)
        writer.put_many([(conf_id, T0, 4.2, None, 0, None), (conf_id, T0 + 1, 4.3, None, 0, None)])
    stats = writer.stats()
    assert (stats.received, stats.written, stats.skipped) == (3, 2, 1)
    assert store.values(name("again"))[1].tolist() == [4.2, 4.3]


# -- names: one attribute whatever its host was called ------------------------------------------


def test_an_attribute_is_kept_once_and_found_by_any_alias_of_its_host(store: Store) -> None:
    this = socket.gethostname()
    aliases = ["localhost", "127.0.0.1", this, socket.getfqdn()]
    conf_id = store.register("tango://localhost:20000/lab/cryocon/1/temperatureA", "DevDouble")
    for alias in aliases:  # registering by another alias is the same attribute
        assert store.register(f"tango://{alias}:20000/lab/cryocon/1/temperatureA", "DevDouble") == conf_id
    write(store, conf_id, [4.2])
    for alias in aliases:
        assert store.values(f"tango://{alias.upper()}:20000/lab/cryocon/1/TemperatureA")[1].tolist() == [4.2]
    (att,) = store.attributes()
    assert att.name == f"tango://{canonical_host('localhost')}:20000/lab/cryocon/1/temperaturea"
    assert canonical_host("localhost") not in ("localhost", "127.0.0.1")  # a name other machines can use
    with pytest.raises(KeyError, match="not archived"):
        store.values("tango://localhost:20001/lab/cryocon/1/temperatureA")  # another Tango database


def test_a_lab_on_another_port_continues_the_history_unless_told_otherwise(store: Store) -> None:
    first = store.archive_host("localhost:20000")
    assert first == f"{canonical_host('localhost')}:20000"
    write(store, store.register("tango://localhost:20000/lab/cryocon/1/temperatureA", "DevDouble"), [4.2])

    assert store.archive_host("127.0.0.1:20001") == first  # the lab restarted on another port
    conf_id = store.register("tango://localhost:20001/lab/cryocon/1/temperatureA", "DevDouble")
    write(store, conf_id, [4.3], start=T0 + 10)
    assert len(store.attributes()) == 1
    for asked in ("lab/cryocon/1/temperatureA", "tango://localhost:20001/lab/cryocon/1/temperatureA",
                  "tango://localhost:20000/lab/cryocon/1/temperatureA"):
        assert store.values(asked)[1].tolist() == [4.2, 4.3]

    assert store.archive_host("localhost:20002", continue_history=False) == f"{canonical_host('localhost')}:20002"
    write(store, store.register("tango://localhost:20002/lab/cryocon/1/temperatureA", "DevDouble"), [9.0])
    assert len(store.attributes()) == 2
    assert store.values("lab/cryocon/1/temperatureA")[1].tolist() == [9.0]  # the latest lab's
    assert store.values("tango://localhost:20001/lab/cryocon/1/temperatureA")[1].tolist() == [4.2, 4.3]
    assert store.archive_host("localhost:20002") == f"{canonical_host('localhost')}:20002"  # the choice is kept


def test_a_name_without_host_means_the_lab_of_tango_host(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    for port, value in ((20000, 1.0), (30000, 2.0)):
        store.archive_host(f"localhost:{port}", continue_history=False)
        write(store, store.register(f"tango://localhost:{port}/lab/x/1/y", "DevDouble"), [value])
    monkeypatch.setenv("TANGO_HOST", "127.0.0.1:20000")
    assert store.values("lab/x/1/y")[1].tolist() == [1.0]
    monkeypatch.delenv("TANGO_HOST")
    assert store.values("lab/x/1/y")[1].tolist() == [2.0]  # the lab that archived last


# -- opening: what cannot be opened says so in one line -----------------------------------------


def test_a_store_that_cannot_be_opened_says_why_in_one_line(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("not an archive\n" * 100)
    cases = {
        str(tmp_path): "is a folder",
        str(tmp_path / "notes.txt"): "not an archive",
        str(tmp_path / "typo" / "archive.db"): "no folder",
        "postgresql://nobody@127.0.0.1:1/hdb": "cannot reach PostgreSQL",
    }
    for url, reason in cases.items():
        with pytest.raises(ArchiveError, match=reason) as failure:
            open_store(url).close()
        assert "\n" not in str(failure.value)
    assert not (tmp_path / "typo").exists()  # a typo makes no folders


def test_a_sqlite_database_that_is_not_an_archive_is_not_made_one(tmp_path) -> None:
    from adbc_driver_sqlite import dbapi

    with dbapi.connect(str(tmp_path / "inventory.db"), autocommit=True) as db, db.cursor() as cursor:
        cursor.execute("CREATE TABLE sample (name text)")
    for read_only in (False, True):
        with pytest.raises(ArchiveError, match="not an archive"):
            open_store(tmp_path / "inventory.db", read_only=read_only)


def test_a_new_archive_says_it_was_created(tmp_path) -> None:
    with open_store(tmp_path / "archive.db") as store:
        assert store.created
    with open_store(tmp_path / "archive.db") as store:
        assert not store.created


def test_reading_an_archive_writes_nothing_to_it(tmp_path) -> None:
    path = tmp_path / "archive.db"
    with SQLiteStore(path) as store:
        write(store, store.register(name("x"), "DevDouble"), [1.0, 2.0])
        store._execute("PRAGMA journal_mode = DELETE")  # as an archive copied elsewhere may be
    before = path.read_bytes()
    with open_store(path, create=False, read_only=True) as reader:
        assert reader.values("lab/cryocon/1/x")[1].tolist() == [1.0, 2.0]
        with pytest.raises(Exception, match="readonly"):
            reader.register(name("y"), "DevDouble")
    assert path.read_bytes() == before and not (tmp_path / "archive.db-wal").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes any file: no permission to test")
def test_an_archive_without_permission_says_so(tmp_path) -> None:
    path = tmp_path / "archive.db"
    SQLiteStore(path).close()
    path.chmod(0o444)
    with pytest.raises(ArchiveError, match="no permission to write"):
        open_store(path)
    with open_store(path, read_only=True) as reader:  # read as it is
        assert reader.attributes() == []
    path.chmod(0)
    with pytest.raises(ArchiveError, match="no permission to read"):
        open_store(path, read_only=True)


def test_write_lag_is_the_wait_of_the_oldest_value_now(store: Store) -> None:
    conf_id = store.register(name("x"), "DevDouble")
    writer = Writer(store)  # not started: values wait
    assert writer.stats().lag == 0.0
    writer.put(conf_id, T0, 1.0)
    wait_until(lambda: writer.stats().lag > 0.2, 10, what="the waiting value's lag growing")
    writer.start()
    wait_until(lambda: writer.stats().written == 1, 30, what="the value written")
    assert writer.stats().stored_lag > 0.2  # it was stored that late
    wait_until(lambda: writer.stats().lag == 0.0, 10, what="the lag back to 0: nothing waits")
    writer.stop()


def test_write_lag_counts_from_when_the_values_came_into_being(store: Store) -> None:
    """Values that waited elsewhere first (in Tango's queues) are as late as their birth says."""
    conf_id = store.register(name("x"), "DevDouble")
    writer = Writer(store)  # not started: values wait
    born = time.time() - 30.0
    writer.put_many([(conf_id, born, 1.0, None, 0, None)], born=born)
    assert writer.stats().lag >= 30.0
    writer.start()
    wait_until(lambda: writer.stats().written == 1, 30, what="the value written")
    assert writer.stats().stored_lag >= 30.0
    writer.stop()
