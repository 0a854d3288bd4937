"""The CCD head's health rules, without Tango: readings in, health and reasons out."""

from __future__ import annotations

import pytest

from device_servers.ccd.health import HeadReadings, Health, Reading, Thresholds, assess, flow_lost

LIMITS = Thresholds()  # 8e-3 mbar, 0.4 l/min, 2 degC, 60 s
NOW = 1000.0


def head(**values: object) -> HeadReadings:
    """A head whose sources were all heard at NOW with good values, except those given."""
    good = {"temperature": -90.0, "target": -90.0, "peltier_running": True, "pressure": 1e-6, "flow": 1.2}
    names = {
        "temperature": "lab/tec/1/objectTemperature", "target": "lab/tec/1/targetTemperature",
        "peltier_running": "lab/tec/1/State", "pressure": "lab/gauge/1/pressure", "flow": "lab/flow/1/pen1",
    }
    readings = {}
    for key, name in names.items():
        reading = Reading(name, key.replace("_", " "))
        reading.hear(values.get(key, good[key]), NOW, "its value is INVALID" if values.get(key, 0) is None else "")
        readings[key] = reading
    return HeadReadings(**readings)


def test_a_head_within_every_limit_is_ok_with_no_reason() -> None:
    verdict = assess(head(), LIMITS, NOW)
    assert verdict.health is Health.OK
    assert verdict.reason == ""


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"pressure": 9e-3}, "vacuum lost: pressure above 8.0e-03 mbar (lab/gauge/1/pressure)"),
        ({"flow": 0.39}, "coolant flow below 0.4 l/min (lab/flow/1/pen1); check the chiller"),
        ({"flow": 0.0}, "coolant flow below 0.4 l/min"),
        ({"peltier_running": False}, "Peltier not running (lab/tec/1/State)"),
        ({"flow": None}, "no flow from lab/flow/1/pen1: its value is INVALID"),
        ({"target": None}, "no target from lab/tec/1/targetTemperature"),
    ],
)
def test_each_error_rule_says_which_source_and_what_to_do(values: dict, words: str) -> None:
    verdict = assess(head(**values), LIMITS, NOW)
    assert verdict.health is Health.ERROR
    assert words in verdict.reason


def test_values_on_the_limits_are_still_ok() -> None:
    assert assess(head(pressure=8e-3, flow=0.4, temperature=-88.0), LIMITS, NOW).health is Health.OK


def test_temperature_off_its_target_is_a_warning_either_way() -> None:
    for temperature in (-87.9, -92.1):
        verdict = assess(head(temperature=temperature), LIMITS, NOW)
        assert verdict.health is Health.WARNING
        assert verdict.reason.startswith("temperature more than 2 degC from its target (lab/tec/1/objectTemperature)")


def test_errors_come_before_warnings_and_all_are_said() -> None:
    verdict = assess(head(flow=0.1, pressure=1e-2, temperature=-80.0), LIMITS, NOW)
    assert verdict.health is Health.ERROR
    assert len(verdict.errors) == 2 and len(verdict.warnings) == 1
    assert verdict.reason.index("vacuum lost") < verdict.reason.index("coolant flow") < verdict.reason.index(
        "temperature more than"
    )


def test_a_source_silent_longer_than_allowed_is_an_error_even_with_a_good_value() -> None:
    readings = head()
    readings.pressure.heard = NOW - 61.0
    verdict = assess(readings, LIMITS, NOW)
    assert verdict.health is Health.ERROR
    assert verdict.reason.startswith("lab/gauge/1/pressure silent for more than 60 s")
    readings.pressure.heard = NOW - 59.0
    assert assess(readings, LIMITS, NOW).health is Health.OK


def test_a_source_never_heard_from_is_an_error_that_says_so() -> None:
    readings = head()
    readings.flow = Reading("lab/flow/1/pen1", "coolant flow reading")
    verdict = assess(readings, LIMITS, NOW)
    assert verdict.health is Health.ERROR
    assert verdict.reason == "no coolant flow reading from lab/flow/1/pen1: no value yet"


def test_a_lost_source_keeps_its_reason_until_it_is_heard_again() -> None:
    readings = head()
    readings.flow.lose("Event channel is not responding anymore")
    assert "no flow from lab/flow/1/pen1: Event channel is not responding anymore" in assess(
        readings, LIMITS, NOW
    ).reason
    readings.flow.hear(1.0, NOW + 1)
    assert assess(readings, LIMITS, NOW + 1).health is Health.OK


def test_thresholds_are_the_given_ones() -> None:
    strict = Thresholds(max_pressure=1e-6, min_flow=2.0, max_temperature_error=0.5, max_silence=1.0)
    verdict = assess(head(pressure=2e-6, flow=1.5, temperature=-89.0), strict, NOW)
    assert "pressure above 1.0e-06 mbar" in verdict.reason
    assert "coolant flow below 2 l/min" in verdict.reason
    assert "more than 0.5 degC" in verdict.reason


def test_the_interlock_triggers_on_a_measured_low_flow_only() -> None:
    assert flow_lost(head(flow=0.1), LIMITS)
    assert not flow_lost(head(flow=0.5), LIMITS)
    assert not flow_lost(head(flow=None), LIMITS)  # a silent flow monitor is no reason to stop a Peltier
