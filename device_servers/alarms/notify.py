"""Telling people: every transition to the lab log, and a hook per severity (a command, e-mail).

Hooks are the AlarmHandler's `Notify` property, one a line:

    critical: mailto:night-shift@lab.example, head@lab.example
    alarm: /usr/local/bin/page-operator --loud
    warning: mailto:lab@lab.example

A hook runs when an alarm of its severity is annunciated (it enters UNACK) or cannot be
evaluated (ERROR). A command runs with the transition in its environment (`ALARM_RULE`,
`ALARM_STATE`, `ALARM_SEVERITY`, `ALARM_MESSAGE`, `ALARM_TEXT`), never waited for; e-mail goes
through the SMTP server `SmtpServer` (host:port). All of it on a thread of its own, so that a
slow mail server or lab log never delays an alarm.
"""

from __future__ import annotations

import logging
import os
import queue
import shlex
import smtplib
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from tangolab.alarms.engine import AlarmState, Transition
from tangolab.alarms.rules import SEVERITIES

NOTIFIED = frozenset({AlarmState.UNACK, AlarmState.ERROR})
SMTP_TIMEOUT = 10.0  # s
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hook:
    severity: str
    command: tuple[str, ...] = ()
    mail_to: tuple[str, ...] = ()


def parse_hooks(lines: list[str]) -> list[Hook]:
    """The hooks of the `Notify` lines; ValueError names the line and what is wrong."""
    hooks = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        severity, colon, action = (part.strip() for part in line.partition(":"))
        if not colon or severity.lower() not in SEVERITIES or not action:
            raise ValueError(f"Notify line {number} {line!r}: write SEVERITY: COMMAND or SEVERITY: mailto:ADDRESS, "
                             f"with a severity of {', '.join(SEVERITIES)}")
        if action.startswith("mailto:"):
            addresses = tuple(a.strip() for a in action.removeprefix("mailto:").split(",") if a.strip())
            if not addresses or not all("@" in a for a in addresses):
                raise ValueError(f"Notify line {number}: {action!r} names no e-mail address (mailto:name@host)")
            hooks.append(Hook(severity.lower(), mail_to=addresses))
        else:
            hooks.append(Hook(severity.lower(), command=tuple(shlex.split(action))))
    return hooks


class Notifier:
    """One thread that logs each transition and runs the hooks, in the order they came."""

    def __init__(self, hooks: list[Hook], smtp_server: str, sender: str,
                 log_message: Callable[[Transition], None]) -> None:
        self.hooks, self.sender, self.log_message = hooks, sender, log_message
        host, _, port = smtp_server.rpartition(":")
        self.smtp = (host or smtp_server, int(port) if port.isdigit() else 25)
        self.failures = 0  # hooks and log entries that failed (each also in the server's log)
        self._queue: queue.SimpleQueue[Transition | None] = queue.SimpleQueue()
        self._children: list[subprocess.Popen] = []
        self._thread = threading.Thread(target=self._run, name="alarm notifier", daemon=True)
        self._thread.start()

    def tell(self, transition: Transition) -> None:
        self._queue.put(transition)

    def close(self) -> None:
        """What was told is still sent; the caller does not wait for a slow mail server."""
        self._queue.put(None)
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while (transition := self._queue.get()) is not None:
            self._children = [child for child in self._children if child.poll() is None]
            self._attempt("the lab log", self.log_message, transition)
            if transition.new not in NOTIFIED:
                continue
            for hook in self.hooks:
                if hook.severity != transition.severity:
                    continue
                if hook.command:
                    self._attempt(" ".join(hook.command), self._run_command, hook, transition)
                else:
                    self._attempt(f"mail to {', '.join(hook.mail_to)}", self._mail, hook, transition)

    def _attempt(self, what: str, action: Callable, *args: object) -> None:
        try:
            action(*args)
        except Exception as exc:  # noqa: BLE001 - a failed hook must not stop the next
            self.failures += 1
            log.warning("alarm notification through %s failed: %s", what, exc)

    def _run_command(self, hook: Hook, transition: Transition) -> None:
        environment = os.environ | {
            "ALARM_RULE": transition.rule, "ALARM_STATE": transition.new.name, "ALARM_SEVERITY": transition.severity,
            "ALARM_MESSAGE": transition.message, "ALARM_TEXT": transition.text(),
        }
        self._children.append(subprocess.Popen(hook.command, env=environment, stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def _mail(self, hook: Hook, transition: Transition) -> None:
        mail = EmailMessage()
        mail["From"], mail["To"] = self.sender, ", ".join(hook.mail_to)
        mail["Subject"] = f"[{transition.severity.upper()}] {transition.rule} {transition.new.name}: {transition.message}"
        mail.set_content(transition.text() + "\n")
        with smtplib.SMTP(*self.smtp, timeout=SMTP_TIMEOUT) as server:
            server.send_message(mail)
