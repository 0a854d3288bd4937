"""`tangolab alarms`: the lab's alarms from a shell, and its rules tried before they run.

    tangolab alarms                               the alarms, active ones first
    tangolab alarms ack RULE --why "checked"      acknowledge (also: unshelve, disable, enable)
    tangolab alarms shelve RULE 2h --why "sensor swapped"
    tangolab alarms report [--since 7d]           floods, most frequent, chattering, long shelved
    tangolab alarms check FILE                    refuse bad rules (a rules file or a lab file)
    tangolab alarms replay [--since 1d]           the rules over the archived history

`report` reads the lab log in the archive, where the handler writes every transition; `replay`
takes the rules of `--rules FILE`, else the running handler's, else the lab file's.
"""

from __future__ import annotations

import argparse
import getpass
import json
import math
import socket
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import tango

from ..archive import ArchiveError
from ..commands import EXIT_CODES, NOT_FOUND, OK, USAGE, CommandError, _run, _use_tango_host
from ..history import DEFAULT_ARCHIVE, messages, parse_time, values
from ..lab_config import DEFAULT_CONFIG
from ..names import trl
from .check import never_fires, rule_lines
from .engine import Engine, Transition
from .figures import figures, parse_transition
from .rules import RuleError, parse_rule

HANDLER = "lab/alarms/1"
ACTIONS = ("list", "ack", "shelve", "unshelve", "disable", "enable", "report", "check", "replay")
COMMANDS = {"ack": "Acknowledge", "unshelve": "Unshelve", "disable": "OutOfService", "enable": "InService"}
QUALITIES = ("VALID", "INVALID", "ALARM", "CHANGING", "WARNING")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
SEED_LOOKBACK = 86_400.0  # s before --since where replay looks for each source's value as it begins


def add_alarms_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "alarms", help="the lab's alarms: list, acknowledge, shelve; report, check rules, replay history",
        description=__doc__, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", nargs="?", default="list", choices=ACTIONS, help="what to do (list)")
    parser.add_argument("targets", nargs="*", metavar="ARG", help="RULE (ack ...), RULE DURATION (shelve), FILE (check)")
    parser.add_argument("--why", default="", help="the reason, for the log (ack, shelve, unshelve, disable, enable)")
    parser.add_argument("--user", default=f"{getpass.getuser()}@{socket.gethostname()}", help="who (%(default)s)")
    parser.add_argument("--since", help="report: from (7d); replay: from (1d); 1h, 2d, ISO time or epoch")
    parser.add_argument("--until", help="replay: until (now)")
    parser.add_argument("--rules", help="replay: a rules file or lab file (default: the handler's rules)")
    parser.add_argument("--archive", help=f"archive path or URL (${{TANGOLAB_ARCHIVE}} or {DEFAULT_ARCHIVE})")
    parser.add_argument("--handler", default=HANDLER, help="the AlarmHandler device (%(default)s)")
    parser.add_argument("--tango-host", help="HOST:PORT of the Tango database (default: $TANGO_HOST, else the lab)")
    parser.add_argument("--json", action="store_true", help="one JSON object a line, for scripts")
    parser.set_defaults(run=run_alarms)


def run_alarms(args: argparse.Namespace) -> int:
    if args.action not in ("report", "check") and not (args.action == "replay" and args.rules):
        return _run(ACTION[args.action], args)
    try:  # no lab needed: the archive, a file
        return ACTION[args.action](args)
    except CommandError as error:
        print(f"tangolab alarms: {error}", file=sys.stderr)
        return error.status


def _handler(args: argparse.Namespace) -> tango.DeviceProxy:
    return tango.DeviceProxy(trl(args.names.device(args.handler)))


def _targets(args: argparse.Namespace, *names: str) -> list[str]:
    if len(args.targets) != len(names):
        raise CommandError(f"alarms {args.action} takes {' '.join(names)}, got {len(args.targets)} arguments", USAGE)
    return args.targets


def _list(args: argparse.Namespace) -> int:
    table = json.loads(_handler(args).alarmTable)
    for row in table:
        if args.json:
            print(json.dumps(row))
            continue
        since = datetime.fromtimestamp(row["since"]).isoformat(sep=" ", timespec="seconds")
        print(f"{row['state']:<6} {row['severity']:<8} {row['name']:<24} {since}  {row['message']}")
    return OK


def _request(args: argparse.Namespace) -> int:
    (rule,) = _targets(args, "RULE")
    _handler(args).command_inout(COMMANDS[args.action], [rule, args.user, args.why])
    return _list_one(args, rule)


def _shelve(args: argparse.Namespace) -> int:
    rule, duration = _targets(args, "RULE", "DURATION")
    seconds = _seconds(duration)
    _handler(args).Shelve([rule, f"{seconds:g}", args.user, args.why])
    return _list_one(args, rule)


def _list_one(args: argparse.Namespace, rule: str) -> int:
    row = next(row for row in json.loads(_handler(args).alarmTable) if row["name"] == rule)
    print(json.dumps(row) if args.json else f"{row['name']} {row['state']}: {row['message']}")
    return OK


def _seconds(text: str) -> float:
    number, unit = (text[:-1], text[-1]) if text[-1:] in DURATION_UNITS else (text, "s")
    try:
        return float(number) * DURATION_UNITS[unit]
    except ValueError:
        raise CommandError(f"{text!r} is not a duration: give e.g. 90, 30m, 2h, 1d", USAGE) from None


def _report(args: argparse.Namespace) -> int:
    now = time.time()
    since = parse_time(args.since or "7d", now)
    try:
        logged = messages(source=args.handler, since=since, store=args.archive)
    except (ArchiveError, OSError, ValueError) as error:
        raise CommandError(f"cannot read the lab log: {error}", USAGE) from None
    transitions = [t for m in logged if (t := parse_transition(m.time, m.text)) is not None]
    seen = figures(transitions, now, since)
    if args.json:
        print(json.dumps({"since": since, "until": now, "transitions": len(transitions), **seen.__dict__}))
    else:
        start = datetime.fromtimestamp(since).isoformat(sep=" ", timespec="seconds")
        print(f"{len(transitions)} transitions of {args.handler} since {start}")
        print("\n".join(seen.lines()))
    return OK


def _check(args: argparse.Namespace) -> int:
    (path,) = _targets(args, "FILE")
    try:
        lines = rule_lines(Path(path))
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read {path}: {error}", USAGE) from None
    attributes = _Attributes(args)
    refused = names = 0
    seen: set[str] = set()
    for number, line in lines:
        try:
            rule = parse_rule(line)
            if rule.name.lower() in seen:
                raise RuleError(f"{rule.name}: a rule of that name comes earlier")
            seen.add(rule.name.lower())
            ranges = {source: attributes.check(rule.name, source) for source in rule.sources}
            if reason := never_fires(rule, {s: r for s, r in ranges.items() if r is not None}):
                raise RuleError(f"{rule.name}: can never fire: {reason}")
        except RuleError as error:
            refused += 1
            print(f"{path}:{number}: {error}")
            continue
        names += 1
    if attributes.unchecked:
        print(f"attributes not checked: {attributes.unchecked}", file=sys.stderr)
    print(f"{names} rules good, {refused} refused", file=sys.stderr)
    return USAGE if refused else OK


class _Attributes:
    """Whether rule sources exist, and their declared ranges, asked of their devices: through the
    Tango database of the lab (if one is found), or directly for names that carry their own
    (`tango://host:port/...#dbase=no`)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.unchecked = ""
        try:
            _use_tango_host(args)
            self.database = True
        except CommandError as error:
            self.database, self.reason = False, str(error)
        self._proxies: dict[str, tango.DeviceProxy] = {}

    def check(self, rule: str, source: str) -> tuple[float, float] | None:
        device, _, attribute = source.partition("#")[0].rpartition("/")
        device += "#dbase=no" if "#dbase=no" in source else ""
        if not self.database and "#dbase=no" not in source:
            self.unchecked = f"no Tango database to ask: {self.reason}"
            return None
        try:
            proxy = self._proxies.get(device) or tango.DeviceProxy(device)
            self._proxies[device] = proxy
            config = proxy.get_attribute_config(attribute)
        except tango.DevFailed as error:
            reasons = {e.reason for e in error.args}
            if reasons & {"API_AttrNotFound", "API_AttributeNotFound"}:
                known = ", ".join(sorted(proxy.get_attribute_list(), key=str.lower))
                raise RuleError(f"{rule}: unknown attribute {source}: {device} has {known}") from None
            if reasons & {"DB_DeviceNotDefined", "API_DeviceNotDefined"}:
                raise RuleError(f"{rule}: unknown attribute {source}: no device {device} in the database") from None
            self.unchecked = f"{device} does not answer ({error.args[0].reason}): its attributes were not checked"
            return None
        low, high = (_limit(config.min_value, -math.inf), _limit(config.max_value, math.inf))
        return (low, high) if (low, high) != (-math.inf, math.inf) else None


def _limit(text: str, default: float) -> float:
    try:
        return float(text)
    except ValueError:
        return default


def _replay(args: argparse.Namespace) -> int:
    now = time.time()
    since, until = parse_time(args.since or "1d", now), parse_time(args.until or "now", now)
    rules = _replay_rules(args)
    clock = _Clock(since)
    engine = Engine(rules, clock)
    rows: list[tuple[float, str, object, int]] = []
    for source in sorted({source for rule in rules for source in rule.sources}):
        try:
            history = values(source, since - SEED_LOOKBACK, until, args.archive)
        except (ArchiveError, OSError) as error:
            raise CommandError(f"cannot read the archive: {error}", USAGE) from None
        except (LookupError, ValueError) as error:
            print(f"{source}: not archived ({error.args[0] if error.args else error}): rules reading it stay "
                  "without a value", file=sys.stderr)
            continue
        masked = np.ma.getmaskarray(history["value"])
        known = [(float(t), source, None if missing else value, int(q))
                 for (t, value, q), missing in zip(history.tolist(), masked)]
        before = [row for row in known if row[0] < since]
        rows += [(since, *before[-1][1:])] if before else []  # its value as the replay begins
        rows += [row for row in known if row[0] >= since]
    rows.sort(key=lambda row: row[0])
    fired = 0
    for when, source, value, quality in [*rows, (until, "", None, 0)]:
        while engine.next_wake() <= when:
            clock.now = engine.next_wake()
            fired += _show(args, engine.step(clock.now))
        clock.now = when
        if not source:
            break
        if value is None:
            engine.fail(source, "no value (an error row in the archive)", when)
        else:
            engine.hear(source, _plain(value), QUALITIES[quality], when)
        fired += _show(args, engine.step(when))
    print(f"{fired} transitions of {len(rules)} rules over {len(rows)} archived values", file=sys.stderr)
    return OK


def _replay_rules(args: argparse.Namespace) -> list:
    if args.rules:
        lines = [line for _, line in rule_lines(Path(args.rules))]
    else:
        try:
            lines = list(_handler(args).ruleList)
        except (tango.DevFailed, CommandError):
            lines = [line for _, line in rule_lines(DEFAULT_CONFIG)]
    rules = []
    for line in lines:
        try:
            rules.append(parse_rule(line))
        except RuleError as error:
            print(f"skipped: {error}", file=sys.stderr)
    if not rules:
        raise CommandError("no rules to replay: give --rules FILE", NOT_FOUND)
    return rules


def _plain(value: object) -> object:
    if isinstance(value, tango.DevState):
        return str(value)
    return value.item() if isinstance(value, np.generic) else value


def _show(args: argparse.Namespace, transitions: list[Transition]) -> int:
    for transition in transitions:
        if args.json:
            print(json.dumps({"time": transition.time, "rule": transition.rule, "from": transition.old.name,
                              "to": transition.new.name, "message": transition.message, "values": transition.values}))
        else:
            stamp = datetime.fromtimestamp(transition.time).isoformat(sep=" ", timespec="milliseconds")
            print(f"{stamp}  {transition.text()}")
    return len(transitions)


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


ACTION = {"list": _list, "ack": _request, "unshelve": _request, "disable": _request, "enable": _request,
          "shelve": _shelve, "report": _report, "check": _check, "replay": _replay}
