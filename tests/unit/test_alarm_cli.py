"""`tangolab alarms check`, `report` and `replay` on files and archives, without a lab."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tangolab.alarms.engine import AlarmState, Transition
from tangolab.archive import SQLiteStore
from tangolab.cli import main

NOW = 1_800_000_000.0
TEMPERATURE = "tango://lab-host:10000/lab/cryocon/1/temperatureA"


@pytest.fixture(autouse=True)
def no_lab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TANGO_HOST", raising=False)
    monkeypatch.chdir(tmp_path)  # no var/ here: no lab to find


def test_check_refuses_bad_rules_with_their_line_and_reason(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rules = tmp_path / "rules.txt"
    rules.write_text("# the cryostat\n"
                     "warm: lab/cryocon/1/temperatureA > 300 for 10 s\n"
                     "typo: lab/cryocon/1/temperatureA >> \n"
                     "\n"
                     "never: lab/cryocon/1/temperatureA > 300 and lab/cryocon/1/temperatureA <= 300\n"
                     "always_off: 1 > 2\n")
    assert main(["alarms", "check", str(rules)]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{rules}:3: typo: syntax error in 'lab/cryocon/1/temperatureA >>': invalid syntax",
        (f"{rules}:5: never: can never fire: no value of lab/cryocon/1/temperatureA satisfies "
        "lab/cryocon/1/temperatureA > 300 and lab/cryocon/1/temperatureA <= 300"),
        f"{rules}:6: always_off: can never fire: it reads no attribute and is always false",
    ]
    assert "1 rules good, 3 refused" in err and "attributes not checked: no Tango database" in err


def test_check_reads_the_rules_of_a_lab_file_with_their_lines(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    lab = tmp_path / "lab.json"
    lab.write_text('{\n  "tangolab": {\n    "alarms": {\n      "rules": [\n'
                   '        "a: lab/x/1/v > 1",\n        "b: lab/x/1/v >"\n      ]\n    }\n  }\n}\n')
    assert main(["alarms", "check", str(lab)]) == 2
    assert capsys.readouterr().out.startswith(f"{lab}:6: b: syntax error")
    assert main(["alarms", "check", str(Path(__file__).parents[2] / "db_config" / "lab.json")]) == 0


def test_report_gives_the_figures_of_the_transitions_in_the_lab_log(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    archive, now = tmp_path / "archive.db", time.time()
    rows = []
    for n in range(12):  # twelve alarms in a minute: a flood
        transition = Transition(now - 300 + 5 * n, f"a{n % 4}", AlarmState.NORM, AlarmState.UNACK, "alarm",
                                "too warm", "lab/x/1/v=2")
        rows.append((transition.time, "ERROR", "lab/alarms/1", transition.text()))
    rows.append((now - 200, "INFO", "lab/alarms/1", "not a transition"))
    with SQLiteStore(str(archive)) as store:
        store.insert_messages(rows)
    assert main(["alarms", "report", "--archive", str(archive), "--since", "1h"]) == 0
    out = capsys.readouterr().out
    assert "12 transitions of lab/alarms/1" in out
    assert "activations in the last 10 minutes: 12  (a flood: more than 10)" in out
    assert "time in flood: 0 s" not in out
    assert "       3  a0" in out
    assert "a0 (3 in a minute)" in out


def test_replay_runs_rules_over_the_archived_history(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    archive, rules = tmp_path / "archive.db", tmp_path / "rules.txt"
    with SQLiteStore(str(archive)) as store:
        temperature = store.register(TEMPERATURE, "DevDouble")
        store.insert_values((temperature, NOW - 600 + 10 * i, 290.0 + i, None, 0, None) for i in range(30))
        setpoint = store.register(TEMPERATURE.replace("temperatureA", "setpoint1"), "DevDouble")
        store.insert_values([(setpoint, NOW - 3600, 80.0, None, 0, None)])  # set an hour before, not since
    rules.write_text("warm: lab/cryocon/1/temperatureA > 300 and lab/cryocon/1/setpoint1 < 100 for 25 s\n")
    assert main(["alarms", "replay", "--rules", str(rules), "--archive", str(archive),
                 "--since", str(NOW - 598), "--until", str(NOW), "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1, out  # the set-point archived before --since is known as it begins: no "no value yet"
    assert '"to": "UNACK"' in out[0] and '"time": 1799999535.0' in out[0]  # 301 K at -490 s, plus the on-delay
