"""The Notify lines of the AlarmHandler: a command or e-mail per severity, a bad line refused with why.
(The hooks run for real, a command and mail to a local SMTP server, in test_alarm_handler_device.)"""

from __future__ import annotations

import pytest

from device_servers.alarms.notify import Hook, parse_hooks


def test_notify_lines_give_a_command_or_mail_per_severity() -> None:
    assert parse_hooks(["# who hears what", "critical: mailto:night@lab.example, head@lab.example",
                        "warning: notify-send 'lab alarm'", ""]) == [
        Hook("critical", mail_to=("night@lab.example", "head@lab.example")),
        Hook("warning", command=("notify-send", "lab alarm")),
    ]


@pytest.mark.parametrize(("line", "reason"), [
    ("loud: beep", "with a severity of info, warning, alarm, critical"),
    ("alarm", "write SEVERITY: COMMAND or SEVERITY: mailto:ADDRESS"),
    ("alarm: mailto:nobody", "names no e-mail address"),
])
def test_a_bad_notify_line_is_refused_with_its_number_and_what_is_allowed(line: str, reason: str) -> None:
    with pytest.raises(ValueError, match=f"Notify line 2.*{reason}"):
        parse_hooks(["info: true", line])
