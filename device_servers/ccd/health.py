"""The health rules of a CCD head, as plain Python: what its Peltier channel, vacuum gauge and
coolant pen say, rolled into OK / WARNING / ERROR and the reasons a person can act on.

The rules (thresholds from the `Thresholds`, i.e. the device's properties):

- ERROR: vacuum above `max_pressure` (8e-3 mbar): the CCD would frost and the Peltier load
  rises;
- ERROR: coolant flow below `min_flow` (0.4 l/min): the Peltier's hot side is no longer
  cooled;
- ERROR: the Peltier not running;
- ERROR: a source with no value (its server is down, its event failed, its quality INVALID),
  or silent for more than `max_silence` (60 s): nothing known is nothing safe;
- WARNING: the CCD temperature more than `max_temperature_error` (2 °C) from its target: normal
  while cooling down, so not an ERROR.

Reasons do not quote live values (the device's mirror attributes show those), so a reason
changes only when the situation does, and each change is worth an event and an archive row.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Health(enum.IntEnum):
    """How the head is, in one word; ordered, so the worst of several is `max`."""

    OK = 0
    WARNING = 1
    ERROR = 2


@dataclass(frozen=True)
class Thresholds:
    max_pressure: float = 8e-3  # mbar
    min_flow: float = 0.4  # l/min
    max_temperature_error: float = 2.0  # degC
    max_silence: float = 60.0  # s


@dataclass
class Reading:
    """What is known of one source: its value (None when there is none, `problem` says why) and
    when it was last heard from (monotonic seconds; None: never)."""

    source: str  # the attribute's full name, as the reasons name it
    what: str  # what it measures, in words: "coolant flow"
    value: Any = None
    problem: str = "no value yet"
    heard: float | None = None

    def hear(self, value: Any, now: float, problem: str = "") -> None:
        """News from the source: a value, or None with the problem that stands for it."""
        self.value = value
        self.problem = problem if value is None else ""
        self.heard = now

    def lose(self, problem: str) -> None:
        """The source failed to deliver (an event error, a failed read): no value, with why."""
        self.value = None
        self.problem = problem

    def silent_for(self, now: float) -> float | None:
        """Seconds since the source was last heard from; None if it never was."""
        return None if self.heard is None else now - self.heard


@dataclass
class HeadReadings:
    """The five things a head's health depends on."""

    temperature: Reading
    target: Reading
    peltier_running: Reading  # value: bool
    pressure: Reading
    flow: Reading

    def all(self) -> tuple[Reading, ...]:
        return (self.pressure, self.flow, self.peltier_running, self.temperature, self.target)


@dataclass(frozen=True)
class Verdict:
    health: Health
    errors: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())

    @property
    def reason(self) -> str:
        """Every problem, errors first, in one line; empty when the head is OK."""
        return "; ".join(self.errors + self.warnings)


def assess(head: HeadReadings, limits: Thresholds, now: float) -> Verdict:
    """The head's health at monotonic time `now`, with the reason for each problem."""
    errors: list[str] = []
    warnings: list[str] = []
    for reading in head.all():
        if reading.value is None:
            errors.append(f"no {reading.what} from {reading.source}: {reading.problem}")
        elif (silent := reading.silent_for(now)) is not None and silent > limits.max_silence:
            errors.append(
                f"{reading.source} silent for more than {limits.max_silence:g} s: is its device server "
                f"running and reading its instrument?"
            )
    if head.pressure.value is not None and head.pressure.value > limits.max_pressure:
        errors.append(
            f"vacuum lost: pressure above {limits.max_pressure:.1e} mbar ({head.pressure.source}); "
            f"check the pump and look for a leak"
        )
    if head.flow.value is not None and head.flow.value < limits.min_flow:
        errors.append(
            f"coolant flow below {limits.min_flow:g} l/min ({head.flow.source}); check the chiller and the hoses"
        )
    if head.peltier_running.value is False:
        errors.append(
            f"Peltier not running ({head.peltier_running.source}); start its output once vacuum and flow are good"
        )
    temperature, target = head.temperature.value, head.target.value
    if temperature is not None and target is not None and abs(temperature - target) > limits.max_temperature_error:
        warnings.append(
            f"temperature more than {limits.max_temperature_error:g} degC from its target "
            f"({head.temperature.source}); still cooling down, or the Peltier cannot hold it"
        )
    health = Health.ERROR if errors else Health.WARNING if warnings else Health.OK
    return Verdict(health, tuple(errors), tuple(warnings))


def flow_lost(head: HeadReadings, limits: Thresholds) -> bool:
    """Whether the coolant flow is measured and too low: the interlock's trigger. A flow monitor
    that cannot be heard is an ERROR, but not a reason to switch a Peltier off."""
    return head.flow.value is not None and head.flow.value < limits.min_flow
