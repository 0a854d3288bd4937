"""`tangolab.history` and `tangolab history`: the archive as a script or a person reads it."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import numpy as np
import pytest

from tangolab import history
from tangolab.archive_store import INVALID, ArchiveError, SQLiteStore

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
