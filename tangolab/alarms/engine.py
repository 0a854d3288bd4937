"""The alarm engine: rules over the latest values of their sources, as plain Python with a clock passed in.

Whoever feeds it (the AlarmHandler device from events, `tangolab alarms replay` from the
archive, a test from a list) calls `hear`/`fail` for each source's news, then `step(now)`, which
evaluates the rules whose sources changed and those whose timers (on/off delays, shelving, a
frozen reading's time) are due, and returns the state transitions. `next_wake()` says when a
timer falls due, so that nothing polls.

States are ISA-18.2's (IEC 62682), as PANIC shows them, plus ERROR for a rule that cannot be
evaluated: it is neither in alarm nor normal, and says why.

- NORM: condition clear, nothing to acknowledge;
- UNACK: condition active, not acknowledged;   ACKED: active and acknowledged;
- RTNUN: condition cleared before anyone acknowledged it (a latched alarm stays UNACK instead);
- SHLVD: shelved by someone, for a time; DSUPR: suppressed by design (its `suppressed_by` holds);
- OOSRV: out of service, until put back; ERROR: cannot be evaluated now.
"""

from __future__ import annotations

import enum
import heapq
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .rules import Rule, Unevaluable

HANDLER = "alarm handler"  # the "user" of the transitions the rules themselves make
HISTORY = 100_000  # transitions kept in memory for the figures
READ_RETRY = 1.0  # s before a frozen reading asks again for the read that confirms it
STARTUP_GRACE = 5.0  # s a new rule waits for the first values of its sources before it says it has none


class AlarmState(enum.IntEnum):
    NORM = 0
    UNACK = 1
    ACKED = 2
    RTNUN = 3
    SHLVD = 4
    DSUPR = 5
    OOSRV = 6
    ERROR = 7


ACTIVE = frozenset({AlarmState.UNACK, AlarmState.ACKED})


@dataclass
class Source:
    """The latest news of one attribute."""

    name: str
    value: Any = None
    quality: str = "VALID"
    stamp: float | None = None
    problem: str = "no value yet"
    unit: str = ""
    ever: bool = False  # whether it has ever had a value
    checked: float = -math.inf  # when its latest news came (the engine's clock): a value known to hold then
    #: frozen-reading watches: band -> [reference value, since when it has not moved by more than band]
    still: dict[float, list] = field(default_factory=dict)

    def hear(self, value: Any, quality: str, stamp: float, now: float) -> None:
        self.value, self.quality, self.stamp, self.problem, self.ever = value, quality, stamp, "", True
        self.checked = now
        for band, watch in self.still.items():
            if quality != "VALID":
                watch[:] = [None, None]
            elif watch[1] is None or _moved(watch[0], value, band):
                watch[:] = [value, stamp]

    def fail(self, problem: str, stamp: float) -> None:
        self.value, self.problem, self.stamp = None, problem, stamp
        for watch in self.still.values():
            watch[:] = [None, None]

    def shown(self) -> str:
        if self.problem:
            return f"{self.name}: {self.problem}"
        value = f"{self.value:.6g}" if isinstance(self.value, float) else str(self.value)
        quality = "" if self.quality == "VALID" else f" ({self.quality})"
        return f"{self.name}={value}{' ' + self.unit if self.unit else ''}{quality}"


def _moved(reference: Any, value: Any, band: float) -> bool:
    try:
        return abs(value - reference) > band
    except TypeError:
        return value != reference


@dataclass
class Transition:
    """One change of an alarm's state: what, when, by whom, why, with the values the rule read."""

    time: float
    rule: str
    old: AlarmState
    new: AlarmState
    severity: str
    message: str
    values: str
    user: str = HANDLER
    reason: str = ""

    def text(self) -> str:
        """One line for the lab log; `figures.parse_transition` reads it back."""
        why = f"; why: {self.reason}" if self.reason else ""
        return (f"{self.rule} {self.old.name} -> {self.new.name} ({self.severity}): {self.message}"
                f" | {self.values} | by {self.user}{why}")


@dataclass
class Alarm:
    """One rule's state as it runs."""

    rule: Rule
    condition: bool = False  # the rule's condition after its delays and deadband
    active: bool = False  # in alarm: the condition (or a latch not yet acknowledged)
    acked: bool = True
    error: str = ""
    suppressed: bool = False
    shelved_until: float | None = None
    out_of_service: bool = False
    changing_since: float | None = None  # the evaluated condition differs from `condition` since then
    wake: float = math.inf  # when a timer of this alarm falls due
    queued: float = math.inf  # the wake its entry in the engine's heap of timers holds
    detail: str = ""  # what the last evaluation adds to the message (a frozen reading)
    since: float = 0.0  # when it entered its present state
    added: float = 0.0
    state: AlarmState = AlarmState.NORM

    def derived(self) -> AlarmState:
        if self.out_of_service:
            return AlarmState.OOSRV
        if self.shelved_until is not None:
            return AlarmState.SHLVD
        if self.suppressed:
            return AlarmState.DSUPR
        if self.error:
            return AlarmState.ERROR
        if self.active:
            return AlarmState.ACKED if self.acked else AlarmState.UNACK
        return AlarmState.NORM if self.acked else AlarmState.RTNUN

    @property
    def message(self) -> str:
        if self.error:
            return f"cannot be evaluated: {self.error}"
        text = self.rule.message or self.rule.expression
        return f"{text} ({self.detail})" if self.detail else text


class _Moment:
    """The sources of one rule at one moment, as its compiled expressions read them."""

    __slots__ = ("details", "engine", "now", "rule", "wakes")

    def __init__(self, engine: Engine, rule: Rule, now: float) -> None:
        self.engine, self.rule, self.now = engine, rule, now
        self.wakes: list[float] = []
        self.details: list[str] = []

    def _source(self, index: int) -> Source:
        source = self.engine.sources[self.rule.sources[index].lower()]
        if source.problem:
            raise Unevaluable(f"{source.name}: {source.problem}")
        return source

    def value(self, index: int) -> Any:
        source = self._source(index)
        if source.quality == "INVALID":
            raise Unevaluable(f"{source.name} is INVALID")
        return source.value

    def quality(self, index: int) -> str:
        return self._source(index).quality

    def frozen(self, index: int, band: float, seconds: float) -> bool:
        source = self._source(index)
        reference, since = source.still[band]
        if since is None:
            return False
        held = self.now - since
        if held < seconds:
            self.wakes.append(since + seconds)
            return False
        if source.checked < since + seconds:  # no news since: it may have moved by less than its events show
            self.engine.reads_wanted.add(source.name)
            self.wakes.append(self.now + READ_RETRY)
            return False
        shown = f"{reference:.6g}" if isinstance(reference, float) else str(reference)
        self.details.append(f"{source.name} unchanged at {shown}{' ' + source.unit if source.unit else ''} "
                            f"for {held:.0f} s")
        return True


class Engine:
    """Rules, their sources' latest values and their alarms' states."""

    def __init__(self, rules: Iterable[Rule] = (), clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.sources: dict[str, Source] = {}
        self.alarms: dict[str, Alarm] = {}
        self._readers: dict[str, set[str]] = {}  # source (lower case) -> rules reading it
        self._dirty: set[str] = set()
        self._timers: list[tuple[float, str]] = []  # heap of (wake, rule); an entry is stale once the alarm's wake moved
        self.transitions: deque[Transition] = deque(maxlen=HISTORY)  # for the figures
        #: sources to read now: a frozen reading is only said once a value read after its time confirms it
        self.reads_wanted: set[str] = set()
        for rule in rules:
            self.add(rule)

    # -- rules ------------------------------------------------------------------------------------

    def add(self, rule: Rule) -> None:
        if rule.name in self.alarms:
            raise ValueError(f"a rule named {rule.name} exists")
        now = self.clock()
        self.alarms[rule.name] = Alarm(rule, since=now, added=now)
        for name in rule.sources:
            self.sources.setdefault(name.lower(), Source(name))
            self._readers.setdefault(name.lower(), set()).add(rule.name)
        for index, band, _ in rule.frozen_watches:
            self.sources[rule.sources[index].lower()].still.setdefault(band, [None, None])
        self._dirty.add(rule.name)

    def remove(self, name: str) -> Rule:
        alarm = self.alarms.pop(name)
        for source in alarm.rule.sources:
            readers = self._readers[source.lower()]
            readers.discard(name)
            if not readers:
                del self._readers[source.lower()], self.sources[source.lower()]
        self._dirty.discard(name)
        return alarm.rule

    # -- news of the sources ----------------------------------------------------------------------

    def hear(self, name: str, value: Any, quality: str = "VALID", stamp: float | None = None) -> None:
        """A value of a source (its full name, any case)."""
        key = name.lower()
        if (source := self.sources.get(key)) is not None:
            now = self.clock()
            source.hear(value, quality, now if stamp is None else stamp, now)
            self._dirty |= self._readers[key]

    def fail(self, name: str, problem: str, stamp: float | None = None) -> None:
        """A source that has no value: its device is down, its read failed."""
        key = name.lower()
        if (source := self.sources.get(key)) is not None:
            source.fail(problem, self.clock() if stamp is None else stamp)
            self._dirty |= self._readers[key]

    # -- evaluation -------------------------------------------------------------------------------

    def next_wake(self) -> float:
        """When a timer falls due (math.inf: none)."""
        timers = self._timers
        while timers and self._stale(*timers[0]):
            heapq.heappop(timers)
        return timers[0][0] if timers else math.inf

    def _stale(self, wake: float, name: str) -> bool:
        alarm = self.alarms.get(name)
        return alarm is None or alarm.wake != wake

    def step(self, now: float | None = None) -> list[Transition]:
        """Evaluate what changed or fell due; the transitions that came of it."""
        now = self.clock() if now is None else now
        due, self._dirty = self._dirty, set()
        timers = self._timers
        while timers and timers[0][0] <= now:
            wake, name = heapq.heappop(timers)
            if not self._stale(wake, name):
                self.alarms[name].queued = math.inf
                due.add(name)
        transitions: list[Transition] = []
        for name in due:
            if (alarm := self.alarms.get(name)) is not None:
                self._evaluate(alarm, now)
                self._settle(alarm, now, transitions)
        return transitions

    def _evaluate(self, alarm: Alarm, now: float) -> None:
        rule = alarm.rule
        moment = _Moment(self, rule, now)
        alarm.wake = math.inf
        if now < alarm.added + STARTUP_GRACE and not all(self.sources[s.lower()].ever for s in rule.sources):
            self._set_wake(alarm, alarm.added + STARTUP_GRACE)  # its sources are still being subscribed
            return
        if alarm.shelved_until is not None:
            if alarm.shelved_until <= now:
                alarm.shelved_until = None
            else:
                moment.wakes.append(alarm.shelved_until)
        try:
            alarm.suppressed = rule.suppression is not None and bool(rule.suppression(moment, 0.0))
        except Unevaluable:
            alarm.suppressed = False  # not known to be on purpose: the alarm stands
        try:
            evaluated = bool(rule.condition(moment, rule.deadband if alarm.condition else 0.0))
            alarm.error = ""
        except Unevaluable as exc:
            alarm.error, alarm.changing_since = str(exc), None
            self._set_wake(alarm, min(moment.wakes, default=math.inf))
            return
        alarm.detail = "; ".join(moment.details)
        if evaluated == alarm.condition:
            alarm.changing_since = None
        else:
            if alarm.changing_since is None:
                alarm.changing_since = now
            delay = rule.on_delay if evaluated else rule.off_delay
            if now - alarm.changing_since >= delay:
                alarm.condition, alarm.changing_since = evaluated, None
            else:
                moment.wakes.append(alarm.changing_since + delay)
        if alarm.condition and not alarm.active:
            alarm.active, alarm.acked = True, False
        elif not alarm.condition and alarm.active and (alarm.acked or not rule.latch):
            alarm.active = False
        self._set_wake(alarm, min(moment.wakes, default=math.inf))

    def _set_wake(self, alarm: Alarm, wake: float) -> None:
        alarm.wake = wake
        if wake < math.inf and wake != alarm.queued:  # once in the heap is enough
            alarm.queued = wake
            heapq.heappush(self._timers, (wake, alarm.rule.name))

    def _settle(self, alarm: Alarm, now: float, transitions: list[Transition],
                user: str = HANDLER, reason: str = "") -> None:
        new = alarm.derived()
        if new == alarm.state:
            return
        transition = Transition(now, alarm.rule.name, alarm.state, new, alarm.rule.severity, alarm.message,
                                self.values_of(alarm.rule), user, reason)
        alarm.state, alarm.since = new, now
        self.transitions.append(transition)
        transitions.append(transition)

    def values_of(self, rule: Rule) -> str:
        return ", ".join(self.sources[name.lower()].shown() for name in rule.sources) or "no sources"

    # -- what operators do ------------------------------------------------------------------------

    def _act(self, name: str, change: Callable[[Alarm, float], None], user: str, reason: str,
             now: float | None) -> list[Transition]:
        now = self.clock() if now is None else now
        alarm = self.alarms[name]
        change(alarm, now)
        self._evaluate(alarm, now)
        transitions: list[Transition] = []
        self._settle(alarm, now, transitions, user, reason)
        return transitions

    def acknowledge(self, name: str, user: str, reason: str = "", now: float | None = None) -> list[Transition]:
        def acknowledge(alarm: Alarm, now: float) -> None:
            alarm.acked = True
            if not alarm.condition:
                alarm.active = False
        return self._act(name, acknowledge, user, reason, now)

    def shelve(self, name: str, seconds: float, user: str, reason: str = "",
               now: float | None = None) -> list[Transition]:
        def shelve(alarm: Alarm, now: float) -> None:
            alarm.shelved_until = now + seconds
        return self._act(name, shelve, user, reason, now)

    def unshelve(self, name: str, user: str, reason: str = "", now: float | None = None) -> list[Transition]:
        def unshelve(alarm: Alarm, now: float) -> None:
            alarm.shelved_until = None
        return self._act(name, unshelve, user, reason, now)

    def out_of_service(self, name: str, user: str, reason: str = "", now: float | None = None) -> list[Transition]:
        def remove(alarm: Alarm, now: float) -> None:
            alarm.out_of_service = True
        return self._act(name, remove, user, reason, now)

    def in_service(self, name: str, user: str, reason: str = "", now: float | None = None) -> list[Transition]:
        def restore(alarm: Alarm, now: float) -> None:
            alarm.out_of_service = False
        return self._act(name, restore, user, reason, now)
