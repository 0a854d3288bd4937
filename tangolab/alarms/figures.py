"""The figures an alarm review asks for first (ISA-18.2): floods, the most frequent alarms,
chattering ones and long-shelved ones, from a list of transitions.

The AlarmHandler computes them over the transitions it made since it started; `tangolab alarms
report` over those the lab log holds (each transition is a lab message, read back here).
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass

from .engine import ACTIVE, AlarmState, Transition

FLOOD_WINDOW = 600.0  # s: ISA-18.2 counts alarms per operator per 10 minutes
FLOOD_LEVEL = 10  # more than this many in the window is a flood
CHATTER_WINDOW, CHATTER_COUNT = 60.0, 3  # three or more activations within a minute
LONG_SHELVED = 86_400.0  # s
TOP = 10

_LINE = re.compile(r"^(\w+) (\w+) -> (\w+) \((\w+)\): (.*?) \| (.*?) \| by (.*?)(?:; why: (.*))?$", re.DOTALL)


@dataclass(frozen=True)
class Figures:
    per_10_min: int  # activations in the last 10 minutes
    flood_seconds: float  # time spent with more than FLOOD_LEVEL activations in the 10 minutes before
    top: list[tuple[str, int]]  # the most frequent alarms, most first
    chattering: list[tuple[str, int]]  # alarms with 3 or more activations in a minute, with the most seen in one
    long_shelved: list[tuple[str, float]]  # alarms shelved longer than a day, with how long (s)

    def lines(self) -> list[str]:
        """The figures as text, for a terminal."""
        out = [(f"activations in the last 10 minutes: {self.per_10_min}"
               f"{'  (a flood: more than 10)' if self.per_10_min > FLOOD_LEVEL else ''}"),
               f"time in flood: {self.flood_seconds:.0f} s", "most frequent:"]
        out += [f"  {count:6d}  {name}" for name, count in self.top] or ["  none"]
        out.append("chattering (3 or more activations in a minute):")
        out += [f"  {name} ({count} in a minute)" for name, count in self.chattering] or ["  none"]
        out.append("shelved longer than a day:")
        out += [f"  {name} ({seconds / 3600:.1f} h)" for name, seconds in self.long_shelved] or ["  none"]
        return out


def is_activation(transition: Transition) -> bool:
    """An alarm annunciated anew: into UNACK from a state that was not already in alarm."""
    return transition.new is AlarmState.UNACK and transition.old not in ACTIVE


def figures(transitions: Iterable[Transition], now: float, since: float | None = None) -> Figures:
    """The figures of the transitions from `since` (default: the first) to `now`."""
    transitions = sorted(transitions, key=lambda t: t.time)
    since = transitions[0].time if since is None and transitions else (now if since is None else since)
    activations = [(t.time, t.rule) for t in transitions if is_activation(t) and since <= t.time <= now]
    counts = Counter(rule for _, rule in activations)
    return Figures(
        per_10_min=sum(1 for when, _ in activations if when > now - FLOOD_WINDOW),
        flood_seconds=_flood_seconds([when for when, _ in activations], since, now),
        top=counts.most_common(TOP),
        chattering=_chattering(activations),
        long_shelved=_long_shelved(transitions, since, now),
    )


def _flood_seconds(times: list[float], since: float, now: float) -> float:
    """How long the count of activations in the trailing window stayed above FLOOD_LEVEL."""
    steps = sorted([(t, 1) for t in times] + [(t + FLOOD_WINDOW, -1) for t in times])
    count, total, began = 0, 0.0, None
    for when, step in steps:
        count += step
        if count > FLOOD_LEVEL and began is None:
            began = when
        elif count <= FLOOD_LEVEL and began is not None:
            total += max(0.0, min(when, now) - max(began, since))
            began = None
    if began is not None:
        total += max(0.0, now - max(began, since))
    return total


def _chattering(activations: list[tuple[float, str]]) -> list[tuple[str, int]]:
    windows: dict[str, deque[float]] = {}
    most: dict[str, int] = {}
    for when, rule in activations:
        window = windows.setdefault(rule, deque())
        window.append(when)
        while window[0] < when - CHATTER_WINDOW:
            window.popleft()
        if len(window) >= CHATTER_COUNT:
            most[rule] = max(most.get(rule, 0), len(window))
    return sorted(most.items(), key=lambda item: (-item[1], item[0]))


def _long_shelved(transitions: list[Transition], since: float, now: float) -> list[tuple[str, float]]:
    shelved_at: dict[str, float] = {}
    longest: dict[str, float] = {}
    for transition in transitions:
        if transition.new is AlarmState.SHLVD:
            shelved_at.setdefault(transition.rule, transition.time)
        elif transition.old is AlarmState.SHLVD and transition.rule in shelved_at:
            began = shelved_at.pop(transition.rule)
            longest[transition.rule] = max(longest.get(transition.rule, 0.0), transition.time - began)
    for rule, began in shelved_at.items():
        longest[rule] = max(longest.get(rule, 0.0), now - began)
    return sorted(((rule, seconds) for rule, seconds in longest.items() if seconds > LONG_SHELVED),
                  key=lambda item: -item[1])


def parse_transition(when: float, text: str) -> Transition | None:
    """A transition back from its lab message (`Transition.text`); None for another message."""
    match = _LINE.match(text)
    if match is None or match.group(2) not in AlarmState.__members__ or match.group(3) not in AlarmState.__members__:
        return None
    rule, old, new, severity, message, values, user, reason = match.groups()
    return Transition(when, rule, AlarmState[old], AlarmState[new], severity, message, values, user, reason or "")
