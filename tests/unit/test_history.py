"""`tangolab.history` and `tangolab history`: the archive as a script or a person reads it."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import datetime

import numpy as np
import pytest
import tango

from tangolab import history
from tangolab.archive import INVALID, ArchiveError, SQLiteStore

NOW = 1_700_000_000.0
TEMPERATURE = "tango://lab-host:10000/lab/cryocon/1/temperaturea"


@pytest.fixture
def archive(tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An archive with an hour of temperatures, a spectrum and messages, as $TANGOLAB_ARCHIVE."""
    (tmp_path / "var").mkdir()
    path = str(tmp_path / "var" / "archive.db")
    with SQLiteStore(path) as store:
        temperature = store.register(TEMPERATURE, "DevDouble")
        curve = store.register("tango://lab-host:10000/lab/cryocon/1/curve", "DevDouble", "SPECTRUM")
        store.insert_values((temperature, NOW - 3600 + 60 * i, 300.0 - i, None, 0, None) for i in range(60))
        store.insert_error(temperature, NOW - 30, "link lost")
        store.insert_values([(curve, NOW - 10, [1.0, 2.5], None, 0, None)])
        store.insert_messages(
            [(NOW - 7200, "info", "operator", "cooldown"), (NOW - 60, "error", "lab/cryocon/1", "x")]
        )
    monkeypatch.setenv("TANGOLAB_ARCHIVE", path)
    monkeypatch.setattr(history._time, "time", lambda: NOW)
    return path


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("1h", NOW - 3600),
        ("30m", NOW - 1800),
        ("2d", NOW - 2 * 86400),
        ("1.5 s", NOW - 1.5),
        ("now", NOW),
        (NOW - 5, NOW - 5),
        ("1699999000", 1_699_999_000.0),
        (datetime.fromtimestamp(NOW - 7), NOW - 7),
        (datetime.fromtimestamp(NOW - 9).isoformat(sep=" "), NOW - 9),
    ],
)
def test_times_are_epochs_datetimes_iso_strings_or_durations_ago(when, expected: float) -> None:
    assert history.parse_time(when, now=NOW) == pytest.approx(expected)


def test_a_time_that_is_none_of_these_says_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="give e.g. 1h"):
        history.parse_time("yesterday-ish")


def test_values_are_a_structured_array(archive: str) -> None:
    h = history.values("lab/cryocon/1/temperatureA", since="30m")
    assert h.dtype.names == ("time", "value", "quality")
    assert h["time"][0] == NOW - 1800 and h["time"][-1] == NOW - 30
    assert h["value"][0] == 270.0 and h["value"][-1] is np.ma.masked  # the read failed: no value
    assert h["quality"][-1] == INVALID
    assert len(history.values("lab/cryocon/1/temperatureA", since="1h", until="59.5m")) == 1


def test_spectra_come_as_arrays(archive: str) -> None:
    (row,) = history.values("lab/cryocon/1/curve", since="1m", store=archive)
    np.testing.assert_array_equal(row["value"], [1.0, 2.5])


def test_state_at_and_messages(archive: str) -> None:
    assert history.state_at("45s")[TEMPERATURE] == (NOW - 60, 241.0, 0)
    assert [m.text for m in history.messages(since="1h")] == ["x"]
    assert [m.text for m in history.messages(source="operator")] == ["cooldown"]


def test_a_missing_archive_is_an_error_not_a_new_file(tmp_path) -> None:
    with pytest.raises(ArchiveError, match="no archive"):
        history.values("lab/x/1/y", since="1h", store=tmp_path / "none.db")
    assert not (tmp_path / "none.db").exists()


def test_the_command_prints_a_table(archive: str, capsys: pytest.CaptureFixture) -> None:
    assert history.history_main(["lab/cryocon/1/temperatureA", "--since", "90s"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["time", "quality", "value"]
    assert lines[1].split()[2:] == ["VALID", "241"]
    assert lines[2].split()[2:] == ["INVALID"]


def test_the_command_prints_csv(archive: str, capsys: pytest.CaptureFixture) -> None:
    assert (
        history.history_main(["lab/cryocon/1/temperatureA", "--since", "90s", "--csv", "--archive", archive])
        == 0
    )
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["time", "value", "quality"]
    assert datetime.fromisoformat(rows[1][0]).timestamp() == NOW - 60
    assert rows[1][1:] == ["241", "VALID"] and rows[2][1:] == ["", "INVALID"]


def test_the_command_explains_what_it_cannot_find(archive: str, capsys: pytest.CaptureFixture) -> None:
    assert history.history_main(["lab/cryocon/1/nothing"]) == 2
    assert "not archived" in capsys.readouterr().err


def test_short_names_resolve_among_the_archived_devices_as_get_resolves_them(archive: str, capsys) -> None:
    full = history.values("lab/cryocon/1/temperatureA", since="30m")
    for short in ("cryocon/temperatureA", "cryocon/1/temperatureA", "CRYOCON/temperaturea"):
        assert history.values(short, since="30m").tolist() == full.tolist()
    assert history.history_main(["cryocon/curve", "--since", "1m"]) == 0
    assert "[1.0, 2.5]" in capsys.readouterr().out


def test_a_short_name_that_means_no_or_several_archived_devices_is_refused_saying_so(archive: str, capsys) -> None:
    with SQLiteStore(archive) as store:
        store.register("tango://lab-host:10000/lab/cryocon/2/temperatureA", "DevDouble")
    assert history.history_main(["cryocon/temperatureA"]) == 2
    assert "'cryocon' could be lab/cryocon/1, lab/cryocon/2" in capsys.readouterr().err
    assert history.history_main(["chiller/temperature"]) == 2
    assert f"no device 'chiller' in the archive {archive}" in capsys.readouterr().err


def test_values_come_back_in_their_tango_types_in_csv_and_json(tmp_path, capsys: pytest.CaptureFixture) -> None:
    path = str(tmp_path / "typed.db")
    with SQLiteStore(path) as store:
        for attr, data_type, values in (
            ("State", "DevState", [tango.DevState.RUNNING, None]),
            ("flag", "DevBoolean", [True, False]),
            ("count", "DevShort", [7, -3]),
            ("reading", "DevDouble", [float("nan"), None]),  # a real NaN, then no value
        ):
            conf_id = store.register(f"tango://lab-host:10000/lab/t/1/{attr}", data_type)
            store.insert_values(
                (conf_id, NOW - 10 + i, v, None, INVALID if v is None else 0, None) for i, v in enumerate(values)
            )
    h = history.values("lab/t/1/State", since=NOW - 60, until=NOW, store=path)
    assert h["value"][0] == tango.DevState.RUNNING and h["value"][1] is np.ma.masked
    assert history.values("lab/t/1/flag", since=NOW - 60, store=path)["value"].dtype == np.bool_
    assert history.values("lab/t/1/count", since=NOW - 60, store=path)["value"].tolist() == [7, -3]

    expected = {"State": ["RUNNING", ""], "flag": ["true", "false"], "count": ["7", "-3"], "reading": ["NaN", ""]}
    for attr, cells in expected.items():
        assert history.history_main([f"lab/t/1/{attr}", "--since", str(NOW - 60), "--csv", "--archive", path]) == 0
        rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))[1:]
        assert [row[1] for row in rows] == cells
    json_values = {"State": ["RUNNING", None], "flag": [True, False], "count": [7, -3], "reading": ["NaN", None]}
    for attr, found in json_values.items():
        assert history.history_main([f"lab/t/1/{attr}", "--since", str(NOW - 60), "--json", "--archive", path]) == 0
        records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [r["value"] for r in records] == found
        assert [r["quality"] for r in records][-1] == ("VALID" if attr in ("flag", "count") else "INVALID")


def test_the_command_ends_quietly_when_its_reader_stops_reading(tmp_path) -> None:
    path = str(tmp_path / "long.db")
    with SQLiteStore(path) as store:
        conf_id = store.register(TEMPERATURE, "DevDouble")
        store.insert_values((conf_id, NOW - 100_000 + i, float(i), None, 0, None) for i in range(100_000))
    command = [sys.executable, "-c", "import sys; from tangolab.history import history_main; sys.exit(history_main())",
               "lab/cryocon/1/temperatureA", "--since", str(NOW - 200_000), "--csv", "--archive", path]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.readline().startswith(b"time,value")  # as `| head -1` reads it
    process.stdout.close()
    assert process.wait(60) == 141
    assert process.stderr.read() == b""  # no traceback


def test_what_is_wrong_with_a_store_is_said_in_one_line(tmp_path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    for archive, reason in (
        (str(tmp_path), "is a folder"),
        (str(tmp_path / "notes.txt"), "not an archive"),
        (str(tmp_path / "nothing.db"), "no archive at"),
        ("postgresql://nobody@127.0.0.1:1/hdb", "cannot reach PostgreSQL"),
    ):
        assert history.history_main(["lab/x/1/y", "--archive", archive]) == 2
        err = capsys.readouterr().err
        assert err.startswith("tangolab history: ") and reason in err and err.count("\n") == 1
