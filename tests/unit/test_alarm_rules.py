"""The rule language: what it accepts, what it refuses (with the reason), how it evaluates."""

from __future__ import annotations

from typing import Any

import pytest

from tangolab.alarms.rules import RuleError, Unevaluable, parse_rule, parse_rules
from tangolab.lab_config import LabConfig


class Values:
    """A context of fixed values: index -> value (an Exception stands for a failed source)."""

    def __init__(self, *values: Any, qualities: tuple[str, ...] = ()) -> None:
        self.values, self.qualities = values, qualities

    def value(self, index: int) -> Any:
        if isinstance(self.values[index], Exception):
            raise Unevaluable(str(self.values[index]))
        return self.values[index]

    def quality(self, index: int) -> str:
        return self.qualities[index] if self.qualities else "VALID"

    def frozen(self, index: int, band: float, seconds: float) -> bool:
        return False


def test_a_rule_line_gives_name_sources_options_and_the_trailing_for_as_on_delay() -> None:
    rule = parse_rule("cryo_warm: lab/cryocon/1/temperatureA > 250 for 10 s; severity=critical; deadband=2; "
                      "off_delay=3; latch; message=cryostat warming")
    assert rule.name == "cryo_warm" and rule.sources == ("lab/cryocon/1/temperatureA",)
    assert (rule.on_delay, rule.off_delay, rule.deadband, rule.latch) == (10.0, 3.0, 2.0, True)
    assert rule.severity == "critical" and rule.message == "cryostat warming"
    assert rule.condition(Values(251.0), 0.0) is True
    assert rule.condition(Values(249.0), 0.0) is False
    assert rule.condition(Values(249.0), 2.0) is True  # within the deadband, an active alarm stays
    assert rule.condition(Values(247.9), 2.0) is False


def test_arithmetic_logic_states_qualities_and_several_devices() -> None:
    rule = parse_rule("r: (tango://host:10000/lab/a/1/x - lab/b/1/y) / 2 >= 1 and not lab/c/1/State == FAULT "
                      "or quality(lab/a/1/z) == INVALID")
    assert rule.sources == ("tango://host:10000/lab/a/1/x", "lab/b/1/y", "lab/c/1/State", "lab/a/1/z")
    assert rule.condition(Values(5.0, 1.0, "ON", 0.0), 0.0) is True
    assert rule.condition(Values(5.0, 1.0, "FAULT", 0.0), 0.0) is False
    assert rule.condition(Values(5.0, 1.0, "FAULT", 0.0, qualities=("VALID",) * 3 + ("INVALID",)), 0.0) is True
    with_not = parse_rule("r: not lab/a/1/x < 5")
    assert with_not.condition(Values(5.5), 0.0) is True
    assert with_not.condition(Values(4.5), 1.0) is True  # under `not`, the deadband works the other way


def test_a_division_by_zero_or_a_failed_source_cannot_be_evaluated_but_short_circuits_as_python() -> None:
    rule = parse_rule("r: lab/a/1/x / lab/a/1/y > 1")
    with pytest.raises(Unevaluable, match="division by zero"):
        rule.condition(Values(1.0, 0.0), 0.0)
    either = parse_rule("r: lab/a/1/x > 1 or lab/a/1/y > 1")
    assert either.condition(Values(2.0, RuntimeError("down")), 0.0) is True
    with pytest.raises(Unevaluable, match="down"):
        either.condition(Values(0.0, RuntimeError("down")), 0.0)


@pytest.mark.parametrize(("line", "reason"), [
    ("no colon here", "starts with its name and a colon"),
    ("r: lab/a/1/x >", "syntax error"),
    ("r: __import__('os').system('true')", "is not allowed"),
    ("r: open('f')", "unknown function"),
    ("r: lab/a/1/x.real > 1", "is not allowed"),
    ("r: [1, 2]", "is not allowed"),
    ("r: lab/a/1/x > limit", "unknown name 'limit'"),
    ("r: lab/a/1/x > 1; severity=panic", "severity 'panic' is not one of"),
    ("r: lab/a/1/x > 1; on_delay=-1", "on_delay must be a number of at least 0"),
    ("r: lab/a/1/x > 1; colour=red", "unknown option 'colour'"),
    ("r: frozen(lab/a/1/x, 0.1, 0)", "SECONDS above 0"),
    ("r: quality(3)", "takes an attribute first"),
])
def test_bad_rules_are_refused_with_the_reason(line: str, reason: str) -> None:
    with pytest.raises(RuleError, match=reason):
        parse_rule(line)


def test_parse_rules_skips_comments_and_refuses_bad_lines_by_number_while_keeping_the_others() -> None:
    rules, refused = parse_rules(["# the lab's alarms", "a: lab/a/1/x > 1", "", "b: lab/a/1/x >", "A: lab/a/1/x < 0",
                                  "c: lab/a/1/x < 0"])
    assert [rule.name for rule in rules] == ["a", "c"]
    assert [number for number, _ in refused] == [4, 5]
    assert "syntax error" in refused[0][1] and "comes earlier" in refused[1][1]


def test_the_demo_labs_rules_parse_and_become_the_handlers_rules_property() -> None:
    config = LabConfig.load()
    lines = config.data["tangolab"]["alarms"]["rules"]
    rules, refused = parse_rules(lines)
    assert refused == [] and len(rules) == len(lines) >= 5
    handler = config.dsconfig()["servers"]["AlarmHandler"]["lab"]["AlarmHandler"]["lab/alarms/1"]
    assert handler["properties"]["Rules"] == lines
    assert "Rules" not in config.data["servers"]["AlarmHandler"]["lab"]["AlarmHandler"]["lab/alarms/1"]["properties"]
