"""A CCD head's health in the running demo lab: the coolant flow of its pen stops in the
recorder's simulator, the head says ERROR with the reason, and clears when the flow is back;
with the interlock (lab/ccd/2), its Peltier is switched off and stays off."""

from __future__ import annotations

import socket
import threading
import time

import tango

from tangolab.scripting import wait_until

HEAD = "lab/ccd/1"
ERROR, OK = 2, 0  # Health enum indices


def control(port: int, line: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(line.encode() + b"\n")
        return conn.makefile().readline().strip()


def test_a_stopped_coolant_flow_is_an_error_of_its_head_and_clears_when_restored(lab):
    head, flow = lab.proxy(HEAD), lab.proxy("lab/flow/1")
    wait_until(lambda: head.read_attribute("health").value == OK, 120, what=f"{HEAD} OK")
    poll_period = float(flow.get_property("PollPeriod")["PollPeriod"][0])
    errors: list[float] = []
    seen = threading.Event()

    def on_health(event: tango.EventData) -> None:
        if not event.err and event.attr_value.value == ERROR:
            errors.append(time.monotonic())
            seen.set()

    port = lab.control_port("minitrend")
    subscription = head.subscribe_event("health", tango.EventType.CHANGE_EVENT, on_health)
    try:
        assert control(port, "flow 0 off") == "OK"  # recorder pen 0 is lab/flow/1/pen1
        stopped = time.monotonic()
        assert seen.wait(60), "no ERROR event"
        reason = head.reason
        assert "flow" in reason.lower() and "0.4" in reason, reason
        assert head.state() == tango.DevState.ALARM
        assert lab.proxy("lab/ccd/2").read_attribute("health").value != ERROR  # the other head is fine
        print(f"flow stopped -> ERROR in {errors[0] - stopped:.2f} s (flow poll period {poll_period} s)")
    finally:
        control(port, "flow 0 on")
        head.unsubscribe_event(subscription)
    wait_until(lambda: head.read_attribute("health").value != ERROR, 60, what="health back from ERROR")
    assert head.reason == "" or "flow" not in head.reason.lower()


def test_with_the_interlock_a_lost_flow_switches_the_peltier_off_for_good(lab):
    head, tec = lab.proxy("lab/ccd/2"), lab.proxy("lab/tec/2")
    wait_until(lambda: head.read_attribute("health").value == OK, 120, what="lab/ccd/2 OK")
    port = lab.control_port("minitrend")
    assert control(port, "flow 1 off") == "OK"  # recorder pen 1 is lab/flow/1/pen2
    try:
        wait_until(lambda: head.interlockTripped, 60, what="interlock tripped")
        wait_until(lambda: tec.read_attribute("outputStage").value == 0, 30, what="Peltier output OFF")
    finally:
        control(port, "flow 1 on")
    wait_until(lambda: head.flow > 1.0, 30, what="the head sees the flow back")
    assert tec.read_attribute("outputStage").value == 0  # never switched back on by itself
    assert head.read_attribute("health").value == ERROR  # the Peltier is not running: someone must act
