"""The AlarmHandler device over a real TemperatureController and its simulator: rules evaluated on
the controller's events, the states an operator sees and changes, the lab log, e-mail and a command.

One server process holds the controller, the handler and an archiver (the lab log); the
Cryo-Con simulator runs in a thread of the test with a time constant so long that a temperature
stays where the test puts it (plus the sensor's noise). E-mail goes to an SMTP server the test
runs (aiosmtpd).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tango
from aiosmtpd.controller import Controller

from simulators import run_in_thread
from simulators.cryocon import CryoConSimulator
from tangolab.cli import main
from tangolab.history import messages
from tangolab.lab_config import free_port
from tangolab.scripting import wait_until

from .alarm_servers import HOST

ROOT = Path(__file__).resolve().parents[2]
LEVEL = 200.0


class Mailbox:
    def __init__(self) -> None:
        self.mails: list[str] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.mails.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"


class Bench:
    def __init__(self, port: int, simulator: CryoConSimulator, archive: Path, hook_file: Path, mailbox: Mailbox):
        self.port, self.simulator, self.archive, self.hook_file, self.mailbox = (
            port, simulator, archive, hook_file, mailbox)
        self.handler = tango.DeviceProxy(self.trl("test/alarms/1"))

    def trl(self, name: str) -> str:
        return f"tango://{HOST}:{self.port}/{name}#dbase=no"

    def state(self, rule: str) -> str:
        return self.row(rule)["state"]

    def row(self, rule: str) -> dict:
        return next(row for row in json.loads(self.handler.alarmTable) if row["name"] == rule)

    def seen(self, rule: str, channel: str) -> float:
        """The value of temperature<channel> the handler last took for a rule."""
        return float(re.search(rf"temperature{channel}(?:#dbase=no)?=([-\d.e+]+)", self.row(rule)["values"]).group(1))

    def log(self) -> list[str]:
        return [message.text for message in messages(source="test/alarms/1", store=self.archive)]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    folder = tmp_path_factory.mktemp("alarms")
    port, smtp_port = free_port(), free_port()
    hook_file, archive = folder / "hook.txt", folder / "archive.db"
    cryo = f"tango://{HOST}:{port}/test/cryocon/1"
    rules = [
        "# the test's rules",
        f"warm: {cryo}/temperatureA#dbase=no > {LEVEL} for 1 s; deadband=5; message=cold stage warm",
        f"latched: {cryo}/temperatureB#dbase=no > {LEVEL}; latch; severity=critical",
        f"shelf: {cryo}/temperatureC#dbase=no > {LEVEL}; severity=warning",
        f"stuck: frozen({cryo}/temperatureC#dbase=no, 0.001, 3); severity=warning",
        f"broken: {cryo}/temperatureA#dbase=no / {cryo}/temperatureD#dbase=no > 1; severity=info",
        f"bad: {cryo}/temperatureA#dbase=no >",
    ]
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname=HOST, port=smtp_port)
    smtp.start()
    simulator = CryoConSimulator(tau=1e9, seed=5)
    simulator.temperatures.update(A=150.0, B=150.0, C=150.0)
    with run_in_thread(simulator) as running:
        devices = {
            "device_servers.cryocon.device:TemperatureController": {
                "test/cryocon/1": {"Url": running.url, "PollPeriod": 0.2, "Timeout": 1.0}},
            "device_servers.archiver.device:Archiver": {"test/archiver/1": {"Store": str(archive)}},
            "device_servers.alarms.device:AlarmHandler": {"test/alarms/1": {
                "Rules": rules, "QuietRead": 2.0, "LogDevice": f"tango://{HOST}:{port}/test/archiver/1#dbase=no",
                "SmtpServer": f"{HOST}:{smtp_port}", "Notify": [
                    "critical: mailto:night-shift@lab.example",
                    f"warning: sh -c 'echo \"$ALARM_TEXT\" >> {hook_file}'",
                ]}},
        }
        server = subprocess.Popen([sys.executable, "-m", "tests.unit.alarm_servers", str(port), json.dumps(devices)],
                                  stdin=subprocess.PIPE, cwd=ROOT)
        try:
            bench = Bench(port, simulator, archive, hook_file, mailbox)
            wait_until(lambda: server.poll() is None and bench.state("warm") == "NORM", 60,
                       what=f"the handler up with its rules NORM (server exit status {server.poll()})")
            yield bench
        finally:
            server.stdin.close()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            smtp.stop()


def test_a_bad_rule_is_refused_at_load_with_its_line_and_reason_and_the_others_run(bench: Bench) -> None:
    refused = list(bench.handler.refusedRules)
    assert len(refused) == 1 and refused[0].startswith("line 7: bad: syntax error")
    assert "1 refused" in bench.handler.status()
    assert {row["name"] for row in json.loads(bench.handler.alarmTable)} == {"warm", "latched", "shelf", "stuck",
                                                                              "broken"}


def test_warming_past_the_level_raises_the_alarm_after_its_on_delay_and_clearing_needs_the_deadband(
        bench: Bench) -> None:
    warmed = time.time()
    bench.simulator.temperatures["A"] = LEVEL + 10
    wait_until(lambda: bench.state("warm") == "UNACK", 30, what="warm UNACK")
    assert bench.row("warm")["since"] >= warmed + 1.0  # not before its on-delay
    reading = bench.handler.read_attribute("warm")
    assert reading.quality == tango.AttrQuality.ATTR_ALARM
    assert bench.handler.get_attribute_config("warm").enum_labels[reading.value] == "UNACK"
    assert bench.handler.state() == tango.DevState.ALARM
    assert "warm UNACK alarm: cold stage warm" in list(bench.handler.activeAlarms)

    bench.simulator.temperatures["A"] = LEVEL - 3  # below the level, inside the deadband
    wait_until(lambda: bench.seen("warm", "A") < LEVEL, 30, what="the handler sees the value back below")
    assert bench.state("warm") == "UNACK"
    bench.simulator.temperatures["A"] = LEVEL - 10
    wait_until(lambda: bench.state("warm") == "RTNUN", 30, what="warm returned, unacknowledged")
    bench.handler.Acknowledge(["warm", "ann", "cryostat checked"])
    assert bench.state("warm") == "NORM"

    def entries() -> list[str]:
        lines = [line for line in bench.log() if line.startswith("warm ")]
        return lines if len(lines) >= 3 else []

    raised, returned, acknowledged = wait_until(entries, 30, what="three lab log entries")[-3:]
    assert raised.startswith("warm NORM -> UNACK (alarm): cold stage warm | ")
    assert "temperatureA#dbase=no=2" in raised and raised.endswith("by alarm handler")
    assert returned.startswith("warm UNACK -> RTNUN")
    assert acknowledged.startswith("warm RTNUN -> NORM") and acknowledged.endswith("by ann; why: cryostat checked")


def test_a_latched_alarm_stays_until_acknowledged_and_its_severity_sends_mail(bench: Bench) -> None:
    bench.simulator.temperatures["B"] = LEVEL + 10
    wait_until(lambda: bench.state("latched") == "UNACK", 30, what="latched UNACK")
    bench.simulator.temperatures["B"] = LEVEL - 50
    wait_until(lambda: bench.seen("latched", "B") < LEVEL, 30, what="the handler sees B back below")
    assert bench.state("latched") == "UNACK"
    bench.handler.Acknowledge(["latched", "ann", "seen"])
    assert bench.state("latched") == "NORM"
    mail = wait_until(lambda: bench.mailbox.mails, 30, what="a mail")[0]
    assert "Subject: [CRITICAL] latched UNACK" in mail and "To: night-shift@lab.example" in mail


def test_a_shelved_alarm_returns_by_itself_when_its_time_ends_and_the_warning_hook_runs(bench: Bench) -> None:
    bench.simulator.temperatures["C"] = LEVEL + 10
    wait_until(lambda: bench.state("shelf") == "UNACK", 30, what="shelf UNACK")
    bench.handler.Shelve(["shelf", "2", "ann", "sensor being swapped"])
    assert bench.state("shelf") == "SHLVD"
    assert bench.row("shelf")["shelved_until"] > time.time()
    wait_until(lambda: bench.state("shelf") == "UNACK", 30, what="shelf back from its shelving")
    bench.simulator.temperatures["C"] = LEVEL - 50
    wait_until(lambda: bench.state("shelf") == "RTNUN", 30, what="shelf RTNUN")
    bench.handler.Acknowledge(["shelf", "ann", "done"])
    hooked = wait_until(lambda: bench.hook_file.exists() and bench.hook_file.read_text(), 30, what="the hook ran")
    assert "shelf NORM -> UNACK (warning)" in hooked


def test_a_frozen_reading_raises_its_alarm_with_the_reason(bench: Bench) -> None:
    assert bench.state("stuck") == "NORM"
    frozen = time.monotonic()
    bench.simulator.freeze("C")
    try:
        wait_until(lambda: bench.state("stuck") == "UNACK", 30, what="the frozen reading noticed")
        print(f"frozen reading noticed {time.monotonic() - frozen:.2f} s after the freeze (its time: 3 s)")
        message = bench.row("stuck")["message"]
        assert re.search(r"test/cryocon/1/temperatureC#dbase=no unchanged at \d+(\.\d+)? K for [34] s", message), message
    finally:
        bench.simulator.unfreeze("C")
    wait_until(lambda: bench.state("stuck") == "RTNUN", 30, what="stuck clears when the reading moves")
    bench.handler.Acknowledge(["stuck", "ann", "moving again"])


def test_a_rule_that_cannot_be_evaluated_says_so(bench: Bench) -> None:
    wait_until(lambda: bench.state("broken") == "ERROR", 30, what="broken in ERROR")
    assert "cannot be evaluated" in bench.row("broken")["message"]
    assert "temperatureD#dbase=no is INVALID" in bench.row("broken")["message"]
    assert "1 in error" in bench.handler.summary


def test_bad_requests_are_refused_with_what_is_allowed_and_change_nothing(bench: Bench) -> None:
    for command, argin, words in (
        ("Acknowledge", ["nosuch", "ann", "x"], "no rule 'nosuch'; the rules are warm, latched"),
        ("Shelve", ["shelf", "-1", "ann", "x"], "above 0 and at most 30 days"),
        ("Acknowledge", ["warm", "ann"], "takes [rule, user, why], got 2 strings"),
        ("Acknowledge", ["warm", " ", "x"], "say who"),
        ("Shelve", ["shelf", "60", "ann", ""], "say why"),
        ("OutOfService", ["shelf", "ann", " "], "say why"),
    ):
        with pytest.raises(tango.DevFailed) as refused:
            bench.handler.command_inout(command, argin)
        assert words in refused.value.args[0].desc
    with pytest.raises(tango.DevFailed, match="syntax error"):
        bench.handler.AddRule("again: 1 +")
    assert bench.state("shelf") in ("NORM", "RTNUN")


def test_a_rule_added_at_run_time_runs_and_is_kept_across_a_restart(bench: Bench) -> None:
    cryo = f"tango://{HOST}:{bench.port}/test/cryocon/1"
    bench.handler.AddRule(f"cold: {cryo}/temperatureA#dbase=no < 100; severity=warning")
    wait_until(lambda: bench.state("cold") == "NORM", 30, what="the new rule evaluated")
    bench.handler.Init()
    assert any(line.startswith("cold: ") for line in bench.handler.ruleList)
    wait_until(lambda: bench.state("cold") == "NORM", 30, what="the new rule after Init")
    bench.handler.RemoveRule("cold")
    assert not any(line.startswith("cold: ") for line in bench.handler.ruleList)


def test_check_asks_the_devices_for_unknown_attributes_and_their_ranges(
        bench: Bench, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cryo = f"tango://{HOST}:{bench.port}/test/cryocon/1"
    rules = tmp_path / "rules.txt"
    rules.write_text(f"fine: {cryo}/temperatureA#dbase=no > 300\n"
                     f"typo: {cryo}/temperatureQ#dbase=no > 300\n"
                     f"beyond: {cryo}/setpoint1#dbase=no > 5000\n")
    assert main(["alarms", "check", str(rules)]) == 2
    typo, beyond = capsys.readouterr().out.splitlines()
    assert typo.startswith(f"{rules}:2: typo: unknown attribute {cryo}/temperatureQ#dbase=no: ")
    assert "temperatureA, temperatureB" in typo
    assert beyond.startswith(f"{rules}:3: beyond: can never fire: no value of {cryo}/setpoint1#dbase=no within "
                             "its range 0 … ")
