"""The alarm engine with a clock the test moves: delays, deadband, latching, shelving, suppression,
frozen readings, rules that cannot be evaluated, and the review's figures."""

from __future__ import annotations

from tangolab.alarms.engine import STARTUP_GRACE, AlarmState, Engine
from tangolab.alarms.figures import figures, parse_transition
from tangolab.alarms.rules import parse_rule

T = "lab/cryocon/1/temperatureA"
NORM, UNACK, ACKED, RTNUN, SHLVD, DSUPR, OOSRV, ERROR = AlarmState


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def engine_of(*lines: str) -> tuple[Engine, Clock]:
    clock = Clock()
    return Engine([parse_rule(line) for line in lines], clock), clock


def states(engine: Engine, clock: Clock, value: float | None = None, after: float = 0.0, name: str = T) -> list:
    """Let `after` s pass (firing the timers due), hear a value, step: the transitions as (rule, old, new)."""
    clock.now += after
    if value is not None:
        engine.hear(name, value, "VALID", clock.now)
    return [(t.rule, t.old, t.new) for t in engine.step()]


def test_the_alarm_rises_on_the_first_value_past_its_level_after_its_on_delay_and_clears_past_the_deadband() -> None:
    engine, clock = engine_of(f"warm: {T} > 250 for 5 s; deadband=2")
    assert states(engine, clock, 240.0) == []
    assert states(engine, clock, 251.0) == []  # the on-delay runs
    assert engine.next_wake() == clock.now + 5
    assert states(engine, clock, after=5.0) == [("warm", NORM, UNACK)]
    assert states(engine, clock, 249.0) == []  # below the level, inside the deadband
    assert states(engine, clock, 247.5) == [("warm", UNACK, RTNUN)]
    assert engine.acknowledge("warm", "ann", "seen")[0].new is NORM


def test_a_value_back_below_before_the_on_delay_ends_raises_nothing() -> None:
    engine, clock = engine_of(f"warm: {T} > 250 for 5 s")
    states(engine, clock, 251.0)
    assert states(engine, clock, 240.0, after=3.0) == []
    assert states(engine, clock, after=10.0) == []


def test_an_off_delay_holds_the_alarm_until_the_value_stayed_back_that_long() -> None:
    engine, clock = engine_of(f"warm: {T} > 250; off_delay=10")
    assert states(engine, clock, 251.0) == [("warm", NORM, UNACK)]
    engine.acknowledge("warm", "ann")
    assert states(engine, clock, 240.0) == []
    assert states(engine, clock, after=10.0) == [("warm", ACKED, NORM)]


def test_a_latched_alarm_stays_until_acknowledged_and_then_clears() -> None:
    engine, clock = engine_of(f"warm: {T} > 250; latch")
    assert states(engine, clock, 251.0) == [("warm", NORM, UNACK)]
    assert states(engine, clock, 200.0) == []
    assert engine.alarms["warm"].state is UNACK
    done = engine.acknowledge("warm", "ann", "looked at the cryostat")
    assert [(t.new, t.user, t.reason) for t in done] == [(NORM, "ann", "looked at the cryostat")]


def test_acknowledged_while_active_then_cleared_is_normal() -> None:
    engine, clock = engine_of(f"warm: {T} > 250")
    states(engine, clock, 251.0)
    assert engine.acknowledge("warm", "ann")[0].new is ACKED
    assert states(engine, clock, 249.0) == [("warm", ACKED, NORM)]


def test_a_shelved_alarm_returns_by_itself_when_its_time_ends() -> None:
    engine, clock = engine_of(f"warm: {T} > 250")
    states(engine, clock, 251.0)
    shelved = engine.shelve("warm", 60, "ann", "sensor being replaced")
    assert [(t.new, t.user, t.reason) for t in shelved] == [(SHLVD, "ann", "sensor being replaced")]
    assert states(engine, clock, 252.0, after=30) == []
    assert engine.next_wake() == clock.now + 30
    assert states(engine, clock, after=30) == [("warm", SHLVD, UNACK)]


def test_out_of_service_until_put_back() -> None:
    engine, clock = engine_of(f"warm: {T} > 250")
    states(engine, clock, 240.0)
    assert engine.out_of_service("warm", "ann", "cryostat open")[0].new is OOSRV
    assert states(engine, clock, 260.0, after=100) == []
    assert engine.in_service("warm", "ann", "closed")[0].new is UNACK


def test_suppression_by_design_while_its_condition_holds() -> None:
    pump = "lab/pump/1/State"
    engine, clock = engine_of(f"vacuum: lab/gauge/1/pressure > 1e-3; suppressed_by={pump} == OFF")
    engine.hear(pump, "OFF", "VALID", clock.now)
    assert states(engine, clock, 1.0, name="lab/gauge/1/pressure") == [("vacuum", NORM, DSUPR)]
    engine.hear(pump, "ON", "VALID", clock.now)
    assert states(engine, clock) == [("vacuum", DSUPR, UNACK)]


def test_a_rule_that_cannot_be_evaluated_is_in_error_with_the_reason_never_silently_normal() -> None:
    engine, clock = engine_of(f"ratio: {T} / lab/cryocon/1/temperatureB > 2")
    engine.hear("lab/cryocon/1/temperatureB", 0.0, "VALID", clock.now)
    assert states(engine, clock, 10.0) == [("ratio", NORM, ERROR)]
    assert "division by zero" in engine.alarms["ratio"].message
    engine.hear("lab/cryocon/1/temperatureB", 1.0, "VALID", clock.now)
    assert states(engine, clock) == [("ratio", ERROR, UNACK)]
    engine.fail(T, "the server of lab/cryocon/1 ended")
    assert states(engine, clock) == [("ratio", UNACK, ERROR)]
    assert "the server of lab/cryocon/1 ended" in engine.alarms["ratio"].message
    engine.hear(T, 5.0, "INVALID", clock.now)
    assert states(engine, clock) == []
    assert "is INVALID" in engine.alarms["ratio"].message


def test_a_new_rule_waits_a_moment_for_its_first_values_before_it_says_it_has_none() -> None:
    engine, clock = engine_of(f"warm: {T} > 250")
    assert states(engine, clock) == []
    assert states(engine, clock, after=STARTUP_GRACE) == [("warm", NORM, ERROR)]
    assert "no value yet" in engine.alarms["warm"].message


def test_a_reading_that_does_not_move_for_its_time_while_valid_is_frozen_with_the_reason() -> None:
    engine, clock = engine_of(f"stuck: frozen({T}, 0.001, 120); severity=warning")
    engine.sources[T.lower()].unit = "K"
    assert states(engine, clock, 219.305) == []
    assert states(engine, clock, 219.3055, after=60) == []  # moved less than the band
    assert states(engine, clock, after=60) == []  # no news since: it may have moved below its events' threshold
    assert engine.reads_wanted == {T}
    assert states(engine, clock, 219.3052, after=0.1) == [("stuck", NORM, UNACK)]  # a read confirms it
    assert "lab/cryocon/1/temperatureA unchanged at 219.305 K for 120 s" in engine.alarms["stuck"].message
    assert states(engine, clock, 219.4, after=1) == [("stuck", UNACK, RTNUN)]
    engine.hear(T, 219.4, "INVALID", clock.now)  # an INVALID reading is not a frozen one
    assert states(engine, clock, after=1) == []


def test_figures_floods_top_chattering_and_long_shelved_from_transitions_and_back_from_the_lab_log() -> None:
    lines = [f"a{n}: lab/x/{n}/v > 1" for n in range(12)]
    engine, clock = engine_of(*lines)
    start = clock.now
    for n in range(12):  # twelve alarms within two minutes: a flood
        states(engine, clock, 2.0, after=10, name=f"lab/x/{n}/v")
    for _ in range(3):  # a0 chatters
        states(engine, clock, 0.0, after=5, name="lab/x/0/v")
        engine.acknowledge("a0", "ann")
        states(engine, clock, 2.0, after=5, name="lab/x/0/v")
    engine.shelve("a5", 2 * 86_400, "ann", "broken sensor")
    clock.now += 1.5 * 86_400
    seen = figures(engine.transitions, clock.now)
    assert seen.per_10_min == 0 and seen.flood_seconds > 0
    assert seen.top[0] == ("a0", 4)
    assert seen.chattering == [("a0", 3)]
    assert [name for name, _ in seen.long_shelved] == ["a5"]
    read_back = [parse_transition(t.time, t.text()) for t in engine.transitions]
    assert figures(read_back, clock.now) == seen
    assert figures(engine.transitions, start + 10 * 12 + 1).per_10_min > 10
