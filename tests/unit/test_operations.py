"""Long operations (device_servers/core/operations.py) on a small device in its own server
process, driven by a DeviceProxy as a lab client would: progress and time-left events, one
operation at a time, Stop, Abort, an overrun, a failure; `tangolab.scripting.run` and
`tangolab call`; and a stage's moves as operations, in the unit its `Unit` property names.

The tests run in order on one device (module scope): each waits for the one before to end."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import tango
from tango.server import command
from tango.test_context import DeviceTestContext

from device_servers.core.link import Link
from device_servers.core.operations import LongOperationDevice, OperationFailed, Running
from tangolab.scripting import OperationError, run, wait_until

from .fake_instruments import SlideDevice

OPERATIONS = ("operation", "progress", "timeLeft", "outcome")
#: `tangolab call` of a device without database: its tango:// name needs none, but a host is asked for.
CALL = [sys.executable, "-m", "tangolab", "call", "--tango-host", "127.0.0.1:1"]


class Counter(LongOperationDevice):
    """Counts for a while: the smallest device with long operations."""

    def create_driver(self, link: Link) -> Link:
        return link

    def poll(self) -> dict[str, Any]:
        return {}

    def time_margin(self) -> float:
        return 0.5

    @command(dtype_in=float)
    def Count(self, seconds: float) -> None:
        """Count for `seconds`, reporting progress; Stop winds down over a tenth of a second."""
        self.run_operation("counting", lambda op: self._count(op, seconds), expected=seconds)

    @command(dtype_in=float)
    def Dawdle(self, seconds: float) -> None:
        """Take a hundred times as long as it says."""
        self.run_operation("dawdling", lambda op: self._count(op, 100 * seconds), expected=seconds)

    @command(dtype_in=float)
    def Cling(self, seconds: float) -> None:
        """Work that heeds no Stop, no Abort, no overrun, until `Release` (or half a minute)."""
        self._released = threading.Event()
        self.run_operation("clinging", lambda op: self._released.wait(30), expected=seconds)

    @command
    def Release(self) -> None:
        self._released.set()

    @command(dtype_in=str)
    def Fail(self, reason: str) -> None:
        """Fail with `reason` after a little work."""
        self.run_operation("failing", lambda op: self._fail(op, reason), expected=1.0)

    def _count(self, op: Running, seconds: float) -> None:
        while op.sleep(0.02):
            if op.elapsed >= seconds:
                return
            op.report(100 * op.elapsed / seconds, seconds - op.elapsed)
        if not op.abort_asked:
            time.sleep(0.1)  # winding down

    def _fail(self, op: Running, reason: str) -> None:
        op.sleep(0.1)
        raise OperationFailed(reason)


@pytest.fixture(scope="module")
def context():
    context = DeviceTestContext(Counter, properties={"Url": "memory://counter", "PollPeriod": 0.1},
                                process=True, timeout=30)
    with context as proxy:
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="counter ON")
        yield context


@pytest.fixture
def counter(context):
    proxy = context.device
    wait_until(lambda: proxy.read_attribute("operation").value == "", 30, what="idle")
    return proxy


def ended(counter: tango.DeviceProxy) -> str:
    wait_until(lambda: counter.read_attribute("operation").value == "", 30, what="the operation's end")
    return counter.read_attribute("outcome").value


def test_an_idle_device_shows_no_operation_and_no_outcome(counter):
    values = {a.name: a.value for a in counter.read_attributes(list(OPERATIONS))}
    assert values == {"operation": "", "progress": 0.0, "timeLeft": 0.0, "outcome": ""}
    assert counter.get_attribute_config("progress").unit == "%"


def test_an_operation_runs_with_progress_and_time_left_events_and_ends_done(counter):
    heard: dict[str, list] = {name: [] for name in (*OPERATIONS, "State", "Status")}
    subscriptions = [
        counter.subscribe_event(
            name, tango.EventType.CHANGE_EVENT,
            lambda event, name=name: heard[name].append(event.attr_value.value) if not event.err else None,
        )
        for name in heard
    ]
    try:
        wait_until(lambda: all(heard.values()), 10, what="the value of each at subscription")
        counter.command_inout("Count", 1.0)
        assert ended(counter) == "done"
        wait_until(lambda: heard["outcome"][-1:] == ["done"], 10, what="the outcome's event")
        wait_until(lambda: counter.state() == tango.DevState.ON, 10, what="ON after it")
    finally:
        for subscription in subscriptions:
            counter.unsubscribe_event(subscription)
    assert heard["operation"][-2:] == ["counting", ""]
    assert heard["State"][-2:] == [tango.DevState.RUNNING, tango.DevState.ON]
    assert "Counting" in heard["Status"]
    progress = heard["progress"]
    assert progress[-1] == 100.0 and len([p for p in progress if 0 < p < 100]) >= 5, progress
    assert progress[1:] == sorted(progress[1:])  # never backwards (the first is the value at subscription)
    times = heard["timeLeft"]
    assert times[-1] == 0.0 and any(0.1 < t < 1.0 for t in times), times


def test_a_second_operation_is_refused_naming_the_one_running_then_stop_ends_it_stopped(counter):
    counter.command_inout("Count", 30.0)
    with pytest.raises(tango.DevFailed) as refused:
        counter.command_inout("Fail", "never")
    error = refused.value.args[0]
    assert error.reason == "Busy"
    assert "failing refused: counting is running (RUNNING" in error.desc and "run Stop" in error.desc
    assert counter.read_attribute("operation").value == "counting"  # the running one carries on
    counter.command_inout("Stop")
    assert ended(counter) == "stopped"
    wait_until(lambda: counter.state() == tango.DevState.ON, 10, what="ON after Stop")
    assert 0 < counter.read_attribute("progress").value < 100


def test_abort_ends_it_aborted(counter):
    counter.command_inout("Count", 30.0)
    counter.command_inout("Abort")
    assert ended(counter) == "aborted"
    wait_until(lambda: counter.state() == tango.DevState.ON, 10, what="ON after Abort")


def test_an_overrun_ends_fault_with_the_reason_until_the_next_operation(counter):
    counter.command_inout("Dawdle", 0.2)  # 20 s of work; overdue after 1.5 x 0.2 + 0.5 s
    outcome = ended(counter)
    assert outcome == "failed: dawdling did not finish in time (0.2 s expected); stopped"
    wait_until(lambda: counter.state() == tango.DevState.FAULT, 10, what="FAULT after the overrun")
    assert "dawdling did not finish in time" in counter.status()
    assert "the next operation clears it" in counter.status()
    counter.command_inout("Count", 0.1)
    assert ended(counter) == "done"
    wait_until(lambda: counter.state() == tango.DevState.ON, 10, what="ON after the next operation")


def test_an_overrun_is_fault_at_once_even_while_its_work_still_clings_on(counter):
    counter.command_inout("Cling", 0.1)
    try:
        wait_until(lambda: counter.state() == tango.DevState.FAULT, 20, what="FAULT at the overrun")
        assert counter.read_attribute("operation").value == "clinging"  # its thread has not ended
        assert "clinging did not finish in time" in counter.status()
        with pytest.raises(tango.DevFailed, match="clinging is running"):
            counter.command_inout("Count", 0.1)
    finally:
        counter.command_inout("Release")
    assert ended(counter) == "failed: clinging did not finish in time (0.1 s expected); stopped"


def test_a_failure_is_the_outcome_with_the_reason_and_fault(counter):
    counter.command_inout("Fail", "no contact within 10 um")
    assert ended(counter) == "failed: no contact within 10 um"
    wait_until(lambda: counter.state() == tango.DevState.FAULT, 10, what="FAULT after the failure")
    assert "no contact within 10 um" in counter.status()


def test_run_waits_for_the_end_and_raises_with_the_reason(counter):
    heard: list[tuple[str, float, float]] = []
    assert run(counter, "Count", 0.5, timeout=30, on_progress=lambda *figures: heard.append(figures)) is None
    assert counter.read_attribute("outcome").value == "done"
    assert heard and all(name == "counting" for name, _, _ in heard)
    with pytest.raises(OperationError, match="failing failed: the cantilever broke") as failure:
        run(counter, "Fail", "the cantilever broke", timeout=30)
    assert failure.value.outcome == "failed: the cantilever broke"
    with pytest.raises(OperationError, match="failing failed: the cantilever broke"):  # the same outcome again
        run(counter, "Fail", "the cantilever broke", timeout=30)
    assert run(counter, "State") == tango.DevState.FAULT  # a command that starts nothing returns at once


def test_call_shows_progress_on_a_terminal_and_returns_at_the_end(context, counter):
    terminal, stderr = pty.openpty()
    try:
        process = subprocess.Popen([*CALL, context.get_device_access(), "Count", "1.5"],
                                   stdout=subprocess.PIPE, stderr=stderr, text=True)
        os.close(stderr)
        shown = b""
        while True:  # until the call ends and closes its end of the terminal
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: no writer left
                break
            if not chunk:
                break
            shown += chunk
        output, _ = process.communicate(timeout=60)
    finally:
        os.close(terminal)
    assert process.returncode == 0, shown
    assert output == "done\n"
    assert counter.read_attribute("outcome").value == "done"
    bars = [line for line in shown.split(b"\r") if line.startswith(b"counting [")]
    assert len(bars) >= 3 and b" % " in bars[0] and b"s left" in bars[0], shown
    assert shown.endswith(b"\r\x1b[K")  # the bar is wiped once it ends


def test_call_of_an_operation_that_fails_exits_non_zero_with_the_reason(context, counter):
    result = subprocess.run([*CALL, context.get_device_access(), "Fail", "the tip is blunt"],
                            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result
    assert result.stderr.strip().endswith("failing failed: the tip is blunt")
    assert len(result.stderr.strip().splitlines()) == 1  # no progress bar in a pipe
    assert result.stdout == ""


def test_ctrl_c_during_a_call_stops_the_operation(context, counter):
    process = subprocess.Popen([*CALL, context.get_device_access(), "Count", "60"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: counter.read_attribute("operation").value == "counting", 30, what="counting")
        process.send_signal(signal.SIGINT)
        output, errors = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, (output, errors)
    assert errors.strip().endswith(f"interrupted: Stop was sent to {counter.name()} (counting)"), errors
    assert ended(counter) == "stopped"


@pytest.fixture(scope="module")
def slide():
    properties = {"Url": "memory://slide-um", "PollPeriod": 0.5, "Step_per_unit": 1.0, "Unit": "um"}
    with DeviceTestContext(SlideDevice, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="slide ON")
        run(proxy, "Home", timeout=30)
        yield proxy


def test_a_stage_shows_its_unit_from_the_property(slide):
    units = [slide.get_attribute_config(name).unit for name in ("Position", "Velocity", "Acceleration")]
    assert units == ["um", "um/s", "um/s\u00b2"]
    with pytest.raises(tango.DevFailed) as failure:
        slide.write_attribute("Position", 60_000.0)
    assert failure.value.args[0].reason == "API_WAttrOutsideLimit"  # Position's min/max: the travel, in um
    config = slide.get_attribute_config("Position")
    assert (float(config.min_value), float(config.max_value)) == (0.0, 50_000.0)
    assert slide.read_attribute("outcome").value == "done"  # the homing's


def test_a_stage_move_is_an_operation_with_progress_and_refuses_a_second(slide):
    progress: list[float] = []
    subscription = slide.subscribe_event(
        "progress", tango.EventType.CHANGE_EVENT,
        lambda event: progress.append(event.attr_value.value) if not event.err else None,
    )
    try:
        slide.write_attribute("Position", 10_000.0)  # 2 s at 5000 um/s
        assert slide.state() == tango.DevState.MOVING
        assert slide.read_attribute("operation").value == "moving to 10000 um"
        with pytest.raises(tango.DevFailed) as refused:
            slide.write_attribute("Position", 100.0)
        assert refused.value.args[0].reason == "Busy"
        assert "moving to 100 um refused: moving to 10000 um is running (MOVING" in refused.value.args[0].desc
        assert ended(slide) == "done"
        wait_until(lambda: progress[-1:] == [100.0], 10, what="the last progress event")
    finally:
        slide.unsubscribe_event(subscription)
    assert len([p for p in progress if 0 < p < 100]) >= 5, progress  # from the position, polled fast
    assert slide.read_attribute("Position").value == 10_000.0


def test_stop_during_a_stage_move_ends_it_stopped_where_it_is(slide):
    slide.write_attribute("Position", 45_000.0)
    wait_until(lambda: slide.read_attribute("progress").value > 10, 20, what="under way")
    slide.command_inout("Stop")
    assert ended(slide) == "stopped"
    wait_until(lambda: slide.state() == tango.DevState.ON, 10, what="ON after Stop")
    assert 5000.0 < slide.read_attribute("Position").value < 45_000.0
