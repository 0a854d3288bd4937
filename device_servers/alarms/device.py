"""`AlarmHandler`: the lab's alarms, evaluated on the events of the attributes the rules read.

Rules (`tangolab.alarms.rules`) come from the `Rules` property, which `tangolab up` fills from
the lab file's `tangolab.alarms.rules`, and from `AddRule` at run time (saved back into the
property, so a restarted handler runs the same rules; `RemoveRule` undoes one). A rule refused
at load is listed with its line and reason in `refusedRules` while the others run.

Every source is subscribed through one `tangolab.events.Intake` (by callback: events are taken as
they come and each batch is evaluated at once), and read once when it has been quiet for
`QuietRead` s; timers (delays, shelving, frozen readings) wake the loop when due, so nothing
polls. Each rule has an attribute of its own, named after it, whose value is its state (an
enumeration: NORM, UNACK, ...) and whose quality is ALARM or WARNING (by severity) while it is
in alarm; `summary`, `alarmTable` and the review's figures describe them all. Every transition
goes to the lab log and to the hooks of its severity (`notify.py`).
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import tango
from tango import AttrQuality, AttrWriteType, DevState, Except
from tango.server import Device, attribute, command, device_property

from tangolab.alarms.engine import ACTIVE, Alarm, AlarmState, Engine, Transition
from tangolab.alarms.figures import Figures, figures
from tangolab.alarms.rules import SEVERITIES, RuleError, parse_rule, parse_rules
from tangolab.events import Feed, Intake, error_text, event_time, is_loss

from ..core.server import serve
from .notify import Notifier, parse_hooks

LOG_LEVEL = {"critical": "ERROR", "alarm": "ERROR", "warning": "WARNING", "info": "INFO"}
ALARM_QUALITY = {"critical": AttrQuality.ATTR_ALARM, "alarm": AttrQuality.ATTR_ALARM,
                 "warning": AttrQuality.ATTR_WARNING, "info": AttrQuality.ATTR_VALID}
READ_TIMEOUT_MS = 3000
BATCH = 0.01  # s at least between two passes of the loop: events that come meanwhile are taken at once
SUMMARY_PERIOD = 0.2  # s at most between a transition and the summaries' events
FIGURES_PERIOD = 1.0  # s during which the figures, once computed, are served again
STOP_WAIT = 1.0  # s delete_device waits for the loop to end
CHECK_QUIET = 0.25  # s between two looks for quiet sources (and for sources of new rules)


def _attribute_of(source: str) -> tuple[str, str]:
    text, hash_, option = source.partition("#")
    device, _, attr = text.rpartition("/")
    return device + hash_ + option, attr


def _plain(value: Any) -> Any:
    """A value as rules compare it: a state by its name, numpy scalars as Python's."""
    if isinstance(value, tango.DevState):
        return str(value)
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value


class AlarmHandler(Device):
    """The lab's alarm rules: ISA-18.2 states, acknowledge, shelve, suppress, and the review's figures."""

    Rules = device_property(
        dtype=(str,), default_value=[],
        doc="One rule a line: NAME: EXPRESSION [for N s]; severity=...; message=...; on_delay, off_delay, "
        "deadband, latch, suppressed_by=EXPRESSION",
    )
    QuietRead = device_property(dtype=float, default_value=10.0,
                                doc="Seconds without events after which a source is read once")
    LogDevice = device_property(dtype=str, default_value="lab/archiver/1",
                                doc="The device whose Message command keeps the lab log (empty: none)")
    Notify = device_property(dtype=(str,), default_value=[],
                             doc="One hook a line: SEVERITY: COMMAND ARGS..., or SEVERITY: mailto:ADDRESS[, ADDRESS]")
    SmtpServer = device_property(dtype=str, default_value="localhost:25", doc="host:port that sends the mail")
    MailFrom = device_property(dtype=str, default_value="tangolab-alarms@localhost", doc="The mail's sender")

    # -- Tango life cycle ---------------------------------------------------------------------

    def init_device(self) -> None:
        super().init_device()
        self.set_state(DevState.INIT)
        self.engine = Engine()
        self._lock = threading.Lock()  # the engine, between the loop and the commands; never held while pushing
        self._stop = threading.Event()
        self._readings: queue.SimpleQueue = queue.SimpleQueue()  # quiet reads and units, from the readers
        self._readers = ThreadPoolExecutor(2, thread_name_prefix="alarm reads")
        self._heard: dict[str, float] = {}  # source (lower case) -> monotonic time of its last news
        self._reading: set[str] = set()  # sources being read now
        self.intake: Intake | None = None
        self.feeds: dict[str, Feed] = {}  # source (lower case) -> its subscription
        self.refused: list[str] = []
        self._log_proxy: tango.DeviceProxy | None = None
        self._figured: tuple[float, Figures] | None = None
        for name in ("summary", "alarmTable", "activeAlarms"):
            self.set_change_event(name, True, False)
        rules, refused = parse_rules(list(self.Rules))
        self.refused = [f"line {number}: {reason}" for number, reason in refused]
        for rule in rules:
            try:
                self._check_name(rule.name)
            except RuleError as exc:
                self.refused.append(str(exc))
                continue
            self.engine.add(rule)
            self._add_rule_attribute(rule.name)
        try:
            hooks = parse_hooks(list(self.Notify))
        except ValueError as exc:
            hooks = []
            self.refused.append(str(exc))
        self.notifier = Notifier(hooks, self.SmtpServer, self.MailFrom, self._log_transition)
        for line in self.refused:
            self.error_stream(f"refused: {line}")
        self._report()
        self._thread = threading.Thread(target=self._watch, args=(self._stop,), name="alarm handler", daemon=True)
        self._thread.start()

    def delete_device(self) -> None:
        """Without waiting long: Init runs under the device's monitor, which a push of the loop may
        be waiting for; the loop then ends at its next look at its own stop."""
        self._stop.set()
        self._thread.join(timeout=STOP_WAIT)
        if self.intake is not None:
            self.intake.close()
        self._readers.shutdown(wait=False, cancel_futures=True)
        self.notifier.close()
        for name in list(self.engine.alarms):
            self.remove_attribute(name, False, False)
        super().delete_device()

    # -- attributes ---------------------------------------------------------------------------

    @attribute(dtype=str, doc="How many alarms are active, unacknowledged, shelved, suppressed, out of service, in error")
    def summary(self) -> str:
        return self._summary()

    @attribute(dtype=str, doc="Every alarm as JSON: [{name, state, severity, since, message, values, ...}], "
               "active ones first, most severe first")
    def alarmTable(self) -> str:
        return json.dumps(self._table())

    @attribute(dtype=(str,), max_dim_x=10_000, doc="The active alarms, most severe first: NAME STATE SEVERITY: message")
    def activeAlarms(self) -> list[str]:
        return _active_lines(self._table())

    @attribute(dtype=(str,), max_dim_x=10_000, doc="The rules that run, one a line, as written")
    def ruleList(self) -> list[str]:
        with self._lock:
            return [alarm.rule.line for alarm in self.engine.alarms.values()]

    @attribute(dtype=(str,), max_dim_x=10_000, doc="Rules (and Notify lines) refused at load, with line and reason")
    def refusedRules(self) -> list[str]:
        return self.refused

    @attribute(dtype=int, doc="Alarms annunciated in the last 10 minutes (ISA-18.2: more than 10 is a flood)")
    def alarmsPer10Min(self) -> int:
        return self._figures().per_10_min

    @attribute(dtype=float, unit="s", format="%.0f", doc="Time spent in flood since the handler started")
    def timeInFlood(self) -> float:
        return self._figures().flood_seconds

    @attribute(dtype=(str,), max_dim_x=10, doc="The ten most frequent alarms since the handler started: COUNT NAME")
    def topTen(self) -> list[str]:
        return [f"{count} {name}" for name, count in self._figures().top]

    @attribute(dtype=(str,), max_dim_x=10_000, doc="Alarms annunciated 3 or more times within a minute: NAME COUNT")
    def chattering(self) -> list[str]:
        return [f"{name} {count}" for name, count in self._figures().chattering]

    @attribute(dtype=(str,), max_dim_x=10_000, doc="Alarms shelved longer than a day: NAME HOURS")
    def longShelved(self) -> list[str]:
        return [f"{name} {seconds / 3600:.1f}" for name, seconds in self._figures().long_shelved]

    # -- commands -----------------------------------------------------------------------------

    @command(dtype_in=(str,), doc_in="[rule, user, why]: acknowledge an alarm")
    def Acknowledge(self, argin: list[str]) -> None:
        name, user, why = self._request(argin, 3, "[rule, user, why]", "Acknowledge")
        self._operate(lambda now: self.engine.acknowledge(name, user, why, now))

    @command(dtype_in=(str,), doc_in="[rule, seconds, user, why]: shelve an alarm for a time; it returns by itself")
    def Shelve(self, argin: list[str]) -> None:
        name, seconds, user, why = self._request(argin, 4, "[rule, seconds, user, why]", "Shelve")
        try:
            duration = float(seconds)
        except ValueError:
            duration = math.nan
        if not 0 < duration <= 30 * 86_400:
            Except.throw_exception("BadAlarmRequest", f"shelving time {seconds!r}: give seconds, above 0 and at most "
                                   "30 days (2592000)", "AlarmHandler.Shelve")
        self._operate(lambda now: self.engine.shelve(name, duration, user, why, now))

    @command(dtype_in=(str,), doc_in="[rule, user, why]: end a shelving before its time")
    def Unshelve(self, argin: list[str]) -> None:
        name, user, why = self._request(argin, 3, "[rule, user, why]", "Unshelve")
        self._operate(lambda now: self.engine.unshelve(name, user, why, now))

    @command(dtype_in=(str,), doc_in="[rule, user, why]: take an alarm out of service until InService")
    def OutOfService(self, argin: list[str]) -> None:
        name, user, why = self._request(argin, 3, "[rule, user, why]", "OutOfService")
        self._operate(lambda now: self.engine.out_of_service(name, user, why, now))

    @command(dtype_in=(str,), doc_in="[rule, user, why]: put an alarm back in service")
    def InService(self, argin: list[str]) -> None:
        name, user, why = self._request(argin, 3, "[rule, user, why]", "InService")
        self._operate(lambda now: self.engine.in_service(name, user, why, now))

    @command(dtype_in=str, doc_in="a rule line (NAME: EXPRESSION; options); kept across restarts")
    def AddRule(self, line: str) -> None:
        try:
            rule = parse_rule(line)
            self._check_name(rule.name)
        except RuleError as exc:
            Except.throw_exception("BadRule", str(exc), "AlarmHandler.AddRule")
        with self._lock:
            if rule.name.lower() in {name.lower() for name in self.engine.alarms}:  # as Tango's attribute names
                Except.throw_exception("BadRule", f"a rule named {rule.name} exists: RemoveRule it first",
                                       "AlarmHandler.AddRule")
            self.engine.add(rule)
        self._add_rule_attribute(rule.name)
        self._save_rules()
        self._report()

    @command(dtype_in=str, doc_in="the name of a rule to remove (for good: the Rules property is updated)")
    def RemoveRule(self, name: str) -> None:
        with self._lock:
            if name not in self.engine.alarms:
                Except.throw_exception("NoSuchRule", f"no rule {name!r}; the rules are {', '.join(self.engine.alarms)}",
                                       "AlarmHandler.RemoveRule")
            self.engine.remove(name)
        self.remove_attribute(name, False, True)
        self._save_rules()
        self._publish([])
        self._report()

    # -- requests -----------------------------------------------------------------------------

    def _request(self, argin: list[str], count: int, shape: str, origin: str) -> list[str]:
        if len(argin) != count:
            Except.throw_exception("BadAlarmRequest", f"{origin} takes {shape}, got {len(argin)} strings",
                                   f"AlarmHandler.{origin}")
        name = argin[0]
        with self._lock:
            known = list(self.engine.alarms)
        if name not in known:
            Except.throw_exception("NoSuchRule", f"no rule {name!r}; the rules are {', '.join(known) or 'none'}",
                                   f"AlarmHandler.{origin}")
        user = argin[-2].strip()
        if not user:
            Except.throw_exception("BadAlarmRequest", f"{origin}: say who (the user is empty)", f"AlarmHandler.{origin}")
        if origin in ("Shelve", "OutOfService") and not argin[-1].strip():
            Except.throw_exception("BadAlarmRequest", f"{origin}: say why (an alarm taken from the operators' "
                                   "sight needs a reason in the log)", f"AlarmHandler.{origin}")
        return argin

    def _operate(self, act) -> None:
        with self._lock:
            transitions = act(time.time())
        self._publish(transitions)

    def _check_name(self, name: str) -> None:
        own = {"state", "status", *(name.lower() for name in type(self).__dict__)}
        if name.lower() in own:
            raise RuleError(f"{name}: the handler has an attribute or command of that name: name the rule otherwise")

    def _save_rules(self) -> None:
        with self._lock:
            lines = [alarm.rule.line for alarm in self.engine.alarms.values()]
        tango.Util.instance().get_database().put_device_property(self.get_name(), {"Rules": lines})

    # -- one attribute per rule ---------------------------------------------------------------

    def _add_rule_attribute(self, name: str) -> None:
        attr = tango.Attr(name, tango.CmdArgType.DevEnum, AttrWriteType.READ)
        defaults = tango.UserDefaultAttrProp()
        defaults.set_enum_labels([state.name for state in AlarmState])
        with self._lock:
            rule = self.engine.alarms[name].rule
        defaults.set_description(f"{rule.severity}: {rule.message or rule.expression}")
        attr.set_default_properties(defaults)
        self.add_attribute(attr, self._read_rule)
        self.set_change_event(name, True, False)
        self.set_archive_event(name, True, False)

    def _read_rule(self, attr: tango.Attribute) -> None:
        with self._lock:
            alarm = self.engine.alarms.get(attr.get_name())
            state = alarm.state if alarm is not None else AlarmState.NORM
            quality = _quality(alarm) if alarm is not None else AttrQuality.ATTR_VALID
            since = alarm.since if alarm is not None else time.time()
        attr.set_value_date_quality(int(state), since, quality)

    # -- the loop: events, quiet sources, timers ----------------------------------------------

    def _watch(self, stop: threading.Event) -> None:
        while tango.Util.instance().is_svr_starting() and not stop.is_set():
            stop.wait(0.05)
        self.intake = Intake(by_callback=True)
        self._follow_sources()
        next_quiet_check = time.monotonic() + CHECK_QUIET
        summaries_due, last_pass = math.inf, 0.0
        while not stop.is_set():
            with self._lock:
                wake = min(self.engine.next_wake() - time.time(), summaries_due - time.monotonic())
            self.intake.wait(min(max(wake, 0.0), CHECK_QUIET))
            stop.wait(max(0.0, last_pass + BATCH - time.monotonic()))  # what came meanwhile, in one pass
            last_pass = time.monotonic()
            try:
                self._take()
                if last_pass >= next_quiet_check:
                    self._read_quiet_sources()
                    self._follow_sources()
                    next_quiet_check = last_pass + CHECK_QUIET
                with self._lock:
                    transitions = self.engine.step()
                    wanted, self.engine.reads_wanted = self.engine.reads_wanted, set()
                for name in wanted:
                    if name.lower() not in self._reading:
                        self._read_later(name.lower(), name)
                if transitions:
                    self._publish(transitions, summaries=False)
                    summaries_due = min(summaries_due, last_pass + SUMMARY_PERIOD)
                if time.monotonic() >= summaries_due:
                    summaries_due = math.inf
                    self._publish_summaries()
            except Exception as exc:  # noqa: BLE001 - a bug must show in the status, not end the alarms
                if stop.is_set():
                    return  # an Init replaced this loop while it pushed: the device is the new loop's
                self.set_state(DevState.FAULT)
                self.set_status(f"the alarm loop failed: {type(exc).__name__}: {exc}; it goes on")
                self.error_stream(self.get_status())
                stop.wait(1.0)

    def _follow_sources(self) -> None:
        """Subscribe the sources of rules added since; forget those of rules removed."""
        with self._lock:
            wanted = {key: source.name for key, source in self.engine.sources.items()}
        for key in set(self.feeds) - set(wanted):
            self.intake.remove(self.feeds.pop(key))
        for key, name in wanted.items():
            if key not in self.feeds:
                self.feeds[key] = self.intake.add(name, now=False)
                self._heard[key] = time.monotonic()
                self._read_later(key, name, unit_too=True)

    def _take(self) -> None:
        with self._lock:
            for key, feed in list(self.feeds.items()):
                events = feed.take()
                if not events:
                    continue
                self._heard[key] = time.monotonic()
                for event in events:
                    if is_loss(event):
                        continue  # the next value tells the present
                    if event.err:
                        self.engine.fail(feed.name, error_text(event.errors), event_time(event))
                    else:
                        value = event.attr_value
                        self.engine.hear(feed.name, _plain(value.value), value.quality.name.removeprefix("ATTR_"),
                                         value.time.totime())
            while True:
                try:
                    key, outcome = self._readings.get_nowait()
                except queue.Empty:
                    break
                self._reading.discard(key)
                source = self.engine.sources.get(key)
                if source is None:
                    continue
                if isinstance(outcome, str):  # the unit
                    source.unit = outcome
                elif isinstance(outcome, tango.DevFailed):
                    self.engine.fail(source.name, error_text(outcome.args))
                elif source.stamp is None or outcome.time.totime() > source.stamp:
                    self.engine.hear(source.name, _plain(outcome.value), outcome.quality.name.removeprefix("ATTR_"),
                                     outcome.time.totime())

    def _read_quiet_sources(self) -> None:
        now = time.monotonic()
        for key, feed in list(self.feeds.items()):
            if now - self._heard.get(key, now) >= self.QuietRead and key not in self._reading:
                self._heard[key] = now
                self._read_later(key, feed.name)

    def _read_later(self, key: str, name: str, unit_too: bool = False) -> None:
        self._reading.add(key)

        def read() -> None:
            device, attr = _attribute_of(name)
            try:
                proxy = tango.DeviceProxy(device)
                proxy.set_timeout_millis(READ_TIMEOUT_MS)
                if unit_too:
                    unit = proxy.get_attribute_config(attr).unit
                    self._readings.put((key, "" if unit in ("", "No unit") else unit))
                reading = proxy.read_attribute(attr)
            except tango.DevFailed as exc:
                reading = exc
            self._readings.put((key, reading))

        try:
            self._readers.submit(read)
        except RuntimeError:  # shut down meanwhile
            pass

    # -- publishing ---------------------------------------------------------------------------

    def _publish(self, transitions: list[Transition], summaries: bool = True) -> None:
        """Change events of the rules that moved (and of the summaries), then the log and the hooks;
        from whichever thread made them, with no lock held."""
        for transition in transitions:
            with self._lock:
                alarm = self.engine.alarms.get(transition.rule)
                quality = _quality(alarm) if alarm is not None else AttrQuality.ATTR_VALID
            if alarm is not None:
                self.push_change_event(transition.rule, int(transition.new), transition.time, quality)
                self.push_archive_event(transition.rule, int(transition.new), transition.time, quality)
            self.notifier.tell(transition)
        if summaries:
            self._publish_summaries()

    def _publish_summaries(self) -> None:
        """The summaries of every alarm: from the loop, at most every SUMMARY_PERIOD (a flood of
        transitions is one update of them, not one each)."""
        table = self._table()
        self.push_change_event("summary", self._summary())
        self.push_change_event("alarmTable", json.dumps(table))
        self.push_change_event("activeAlarms", _active_lines(table))
        self._report()

    def _log_transition(self, transition: Transition) -> None:
        if not self.LogDevice:
            return
        if self._log_proxy is None:
            self._log_proxy = tango.DeviceProxy(self.LogDevice)
        level = LOG_LEVEL[transition.severity] if transition.new in (AlarmState.UNACK, AlarmState.ERROR) else "INFO"
        self._log_proxy.Message([level, self.get_name(), transition.text()])

    def _table(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = [
                {"name": name, "state": alarm.state.name, "severity": alarm.rule.severity, "since": alarm.since,
                 "message": alarm.message, "values": self.engine.values_of(alarm.rule), "expression": alarm.rule.expression,
                 "shelved_until": alarm.shelved_until}
                for name, alarm in self.engine.alarms.items()
            ]
        order = {state: n for n, state in enumerate(("UNACK", "ACKED", "ERROR", "RTNUN", "SHLVD", "DSUPR", "OOSRV", "NORM"))}
        return sorted(rows, key=lambda row: (order[row["state"]], -SEVERITIES.index(row["severity"]), row["name"]))


    def _summary(self) -> str:
        with self._lock:
            states = [alarm.state for alarm in self.engine.alarms.values()]
        count = states.count
        return (f"{sum(s in ACTIVE for s in states)} active, {count(AlarmState.UNACK) + count(AlarmState.RTNUN)} "
                f"unacknowledged, {count(AlarmState.SHLVD)} shelved, {count(AlarmState.DSUPR)} suppressed, "
                f"{count(AlarmState.OOSRV)} out of service, {count(AlarmState.ERROR)} in error")

    def _figures(self) -> Figures:
        """The review's figures, computed at most once a second (five attributes read them)."""
        now = time.monotonic()
        if self._figured is None or now - self._figured[0] >= FIGURES_PERIOD:
            with self._lock:
                transitions = list(self.engine.transitions)
            self._figured = (now, figures(transitions, time.time()))
        return self._figured[1]

    def _report(self) -> None:
        with self._lock:
            active = [a for a in self.engine.alarms.values() if a.state in ACTIVE]
            rules = len(self.engine.alarms)
        refused = f"; {len(self.refused)} refused (refusedRules): {self.refused[0]}" if self.refused else ""
        self.set_state(DevState.ALARM if active else DevState.ON)
        self.set_status(f"{rules} rules: {self._summary()}{refused}")


def _active_lines(table: list[dict[str, Any]]) -> list[str]:
    return [f"{row['name']} {row['state']} {row['severity']}: {row['message']}" for row in table
            if row["state"] in ("UNACK", "ACKED")]


def _quality(alarm: Alarm) -> AttrQuality:
    if alarm.state in ACTIVE:
        return ALARM_QUALITY[alarm.rule.severity]
    if alarm.state is AlarmState.ERROR:
        return AttrQuality.ATTR_WARNING
    return AttrQuality.ATTR_VALID


def main() -> None:
    serve(AlarmHandler)


if __name__ == "__main__":
    main()
