"""`tangolab get/set/call/put/devices/watch/spy/message` against the running demo lab, as a user types them."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import threading

import pytest
import tango

from tangolab.scripting import snapshot, wait_for, wait_until

TANGOLAB = [sys.executable, "-m", "tangolab"]


@pytest.fixture(scope="module")
def run(lab):
    def tangolab(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*TANGOLAB, args[0], "--tango-host", lab.tango_host, *args[1:]], check=False,
                              capture_output=True, text=True, timeout=timeout)
    return tangolab


def one_line_error(result: subprocess.CompletedProcess, status: int) -> str:
    assert result.returncode == status, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_devices_lists_class_server_and_state(run):
    result = run("devices")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("lab/cryocon/1 "))
    assert "TemperatureController" in row and "TemperatureController/lab" in row and "ON" in row
    assert "dserver/" not in result.stdout
    tecs = [json.loads(line) for line in run("devices", "tec", "--json").stdout.splitlines()]
    assert [t["device"] for t in tecs] == ["lab/tec/1", "lab/tec/2"] and tecs[0]["class"] == "PeltierController"
    one_line_error(run("devices", "nothing/like/this"), 3)


def test_get_by_short_name_as_text_and_json(run):
    result = run("get", "cryocon/temperatureA", "lab/cryocon/1/loopType1")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first.startswith("lab/cryocon/1/temperatureA  ") and first.split()[2] == "K"
    assert second.split()[1] in ("OFF", "MAN", "PID", "TABLE", "RAMPP", "RAMPT")  # an enum by its label
    record = json.loads(run("get", "cryocon/temperatureA", "--json").stdout)
    assert isinstance(record["value"], float) and record["quality"] in ("VALID", "ALARM", "CHANGING")
    assert record["attribute"] == "lab/cryocon/1/temperatureA" and record["unit"] == "K"


def test_get_errors_say_what_to_do(run):
    ambiguous = one_line_error(run("get", "tec/objectTemperature"), 2)
    assert "lab/tec/1" in ambiguous and "lab/tec/2" in ambiguous
    assert "lab/nothing/1" in one_line_error(run("get", "lab/nothing/1/x"), 3)
    missing = one_line_error(run("get", "cryocon/temperatureZ"), 3)
    assert "no attribute 'temperatureZ'" in missing and "temperatureA" in missing
    assert "DEVICE/ATTRIBUTE" in one_line_error(run("get", "cryocon"), 3)


def test_set_writes_in_the_attribute_type_and_refuses_bad_values(run, lab):
    cryo = lab.proxy("lab/cryocon/1")
    result = run("set", "cryocon/setpoint1", "85.5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("lab/cryocon/1/setpoint1  85.5")
    assert "refused" in one_line_error(run("set", "cryocon/setpoint1", "5000"), 2)
    assert "a number" in one_line_error(run("set", "cryocon/setpoint1", "warm"), 2)
    assert cryo.setpoint1 == 85.5  # nothing changed by the refusals
    assert run("set", "cryocon/loopType1", "pid").returncode == 0  # an enum by its label, any case
    assert cryo.loopType1 == 2
    assert run("set", "cryocon/loopType1", "0").returncode == 0  # or its index
    assert "OFF, MAN, PID" in one_line_error(run("set", "cryocon/loopType1", "FAST"), 2)
    assert "true or false" in one_line_error(run("set", "cryocon/control", "maybe"), 2)
    assert "read-only" in one_line_error(run("set", "cryocon/temperatureA", "4"), 2)
    assert cryo.loopType1 == 0 and not cryo.control


def test_call_runs_commands_in_their_type(run, lab):
    result = run("call", "archiver", "AttributeList", "--json")
    if result.returncode == 0:  # a command in this archiver
        assert isinstance(json.loads(result.stdout)["result"], list)
    assert run("call", "cryocon", "StopControl").stdout.strip() == "done"
    assert "takes no argument" in one_line_error(run("call", "cryocon", "StopControl", "1"), 2)
    assert one_line_error(run("call", "cryocon", "Explode"), 3).startswith("tangolab call: lab/cryocon/1 has no command")
    assert "takes an argument" in one_line_error(run("call", "archiver", "Message"), 2)
    assert "JSON array" in one_line_error(run("call", "archiver", "Message", "hello"), 2)


def test_archiving_what_does_not_exist_is_an_unknown_name(run):
    missing = one_line_error(run("call", "archiver", "AttributeAdd", "lab/cryocon/1/nothing"), 3)
    assert "lab/cryocon/1 has no attribute 'nothing'" in missing and "temperatureA" in missing
    assert "lab/nothing/1" in one_line_error(run("call", "archiver", "AttributeAdd", "lab/nothing/1/x"), 3)
    assert "is not archived" in one_line_error(run("call", "archiver", "AttributeRemove", "lab/cryocon/1/nothing"), 3)


def test_message_goes_to_the_lab_log(run, lab):
    result = run("message", "warning", "cryostat", "door", "open", "--source", "test")
    assert result.returncode == 0, result.stderr
    wait_until(lambda: "cryostat door open" in lab.proxy("lab/archiver/1").lastMessage, 20, what="the message")
    assert "use one of" in one_line_error(run("message", "loud", "hello"), 2)


def test_put_publishes_on_the_relay_and_refuses_bad_values(run, lab):
    if "lab/relay/1" in lab.proxy("sys/database/2").command_inout("DbGetDeviceWideList", "*"):
        result = run("put", "beam_f1", "3.5")
        assert result.returncode == 0, result.stderr
        assert lab.proxy("lab/relay/1").beam_f1 == 3.5
        assert run("put", "beam_f1", "4").returncode == 0 and lab.proxy("lab/relay/1").beam_f1 == 4.0
        assert run("put", "note_c16", "door open").returncode == 0  # plain words are a string
        assert lab.proxy("lab/relay/1").note_c16 == "door open"
        one_line_error(run("put", "beam_f1", "[1, 2]"), 2)
        assert lab.proxy("lab/relay/1").beam_f1 == 4.0  # unchanged
    missing = one_line_error(run("put", "beam_f1", "3.5", "--relay", "lab/norelay/1"), 3)
    assert "no relay device lab/norelay/1" in missing


def test_a_refused_put_changes_nothing(run, lab):
    assert run("put", "x_f1", "2.5").returncode == 0
    for bad in ("NaN", "Infinity", "1e999"):  # JSON as Python reads it; Tango writes no such number
        assert "give a finite number" in one_line_error(run("put", "x_f1", bad), 2)
    assert lab.proxy("lab/relay/1").x_f1 == 2.5
    assert float(run("get", "relay/x_f1").stdout.split()[1]) == 2.5


def test_a_refusal_reads_as_the_relay_wrote_it(run):
    """Tango carries a description as Latin-1: the relay's words arrive as it wrote them, not as UTF-8 bytes
    read as Latin-1 ("..." as â\x80¦, "é" as Ã©)."""
    too_long = one_line_error(run("put", "x" * 121 + "_f1", "1"), 2)
    assert f"'{'x' * 40}'... is 124 characters long, at most 100 allowed" in too_long
    assert "'température_f1' is not a relay variable name" in one_line_error(run("put", "température_f1", "1"), 2)
    assert "Latin-1 text only" in one_line_error(run("put", "note_c16", '"a…b"'), 2)  # JSON of text Tango cannot carry


def read_lines(process: subprocess.Popen, lines: list[str]) -> threading.Thread:
    thread = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    thread.start()
    return thread


def alternating(device: tango.DeviceProxy, attribute: str, *values: float):
    """A write of the next of `values` per call. A change pushed before a new subscription reaches the
    device's ZMQ publisher is lost (ZMQ's late joiner), and the spy and the watch have just subscribed:
    the writes go on until the output shows one."""
    turns = itertools.cycle(values)
    return lambda: device.write_attribute(attribute, next(turns))


def test_spy_prints_events_of_every_matching_device_until_ctrl_c(lab):
    process = subprocess.Popen([*TANGOLAB, "spy", "lab/cryocon/*", "--tango-host", lab.tango_host],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    read_lines(process, lines)
    try:
        wait_until(lambda: any('"temperatureA"' in line for line in lines)
                   and any('"State"' in line for line in lines), 60, what="cryocon events in the spy")
        alternate = alternating(lab.proxy("lab/cryocon/1"), "setpoint1", 90.5, 91.0)
        wait_until(lambda: alternate() or any('"setpoint1"' in line and "91.0" in line for line in lines), 30,
                   interval=0.5, what="set-point event")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    records = [json.loads(line) for line in lines]
    event = next(r for r in records if r["kind"] == "event" and r["attribute"] == "temperatureA")
    assert event["device"] == "lab/cryocon/1" and isinstance(event["value"], float) and event["error"] is None
    assert process.returncode == 0 and "Traceback" not in process.stderr.read()


def test_spy_takes_up_attributes_created_while_it_runs(lab):
    process = subprocess.Popen([*TANGOLAB, "spy", "relay", "--tango-host", lab.tango_host],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    read_lines(process, lines)
    try:
        wait_until(lambda: any('"Variables"' in line for line in lines), 60, what="the relay's Variables event")
        lab.proxy("lab/relay/1").Put(["spied_f1", "1.25"])
        wait_until(lambda: any('"spied_f1"' in line and "1.25" in line for line in lines), 30, what="the new variable")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def test_watch_checks_every_name_first(run):
    assert "'tec' could be lab/tec/1, lab/tec/2" in one_line_error(run("watch", "cryocon/setpoint2", "tec/state"), 2)


def test_watch_prints_values_as_they_change(lab):
    process = subprocess.Popen([*TANGOLAB, "watch", "cryocon/setpoint2", "--tango-host", lab.tango_host],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    read_lines(process, lines)
    try:
        wait_until(lambda: lines or process.poll() is not None, 60, what="the first value")
        assert lines, f"the watch ended ({process.returncode}) without a value: {process.stderr.read()}"
        alternate = alternating(lab.proxy("lab/cryocon/1"), "setpoint2", 76.0, 77.0)
        wait_until(lambda: alternate() or any("lab/cryocon/1/setpoint2  77" in line for line in lines), 30,
                   interval=0.5, what="the new value")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0


def test_scripting_snapshot_and_wait_for_by_short_names(lab, monkeypatch):
    monkeypatch.setenv("TANGO_HOST", lab.tango_host)
    taken = snapshot("lab/tec/*")
    assert isinstance(taken["lab/tec/1/objectTemperature"], float) and "lab/tec/2/State" in taken
    assert taken.quality["lab/tec/1/objectTemperature"] in ("VALID", "ALARM", "CHANGING")
    lab.proxy("lab/cryocon/1").setpoint2 = 66.0
    assert wait_for("cryocon/setpoint2", lambda v: v == 66.0, timeout=30) == 66.0


def test_spy_says_when_a_device_goes_away_and_comes_back(lab):
    process = subprocess.Popen([*TANGOLAB, "spy", "chiller", "--tango-host", lab.tango_host],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    read_lines(process, lines)

    def kinds() -> list[str]:
        return [json.loads(line)["kind"] for line in list(lines)]

    try:
        wait_until(lambda: "event" in kinds(), 60, what="chiller events")
        lab.kill("Chiller/lab")
        wait_until(lambda: "down" in kinds(), 30, what="the spy saying the chiller is down")
        lab.start_program("Chiller/lab")
        lab.wait_device("lab/chiller/1")
        wait_until(lambda: "up" in kinds(), 30, what="the spy saying the chiller is back")
        seen = len(lines)
        wait_until(lambda: "event" in kinds()[seen:], 60, what="chiller events after its return")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    down = next(json.loads(line) for line in lines if '"down"' in line)
    assert down["device"] == "lab/chiller/1" and down["error"]
