"""Subscribe again at once when a server restarts.

A Tango client re-subscribes to the events of a restarted server only at its event keep-alive
check, every 10 s (cppTango's EVENT_HEARTBEAT_PERIOD): for up to 10 s after a restart it hears
nothing. The lab's supervisors push a change event of `startedDevices` (the devices of the
server that just began answering) each time a server comes up; `RestartListener` hands those
names to a subscriber, which subscribes again to them right away. The archiver and `tangolab
watch` use it; any client can.
"""

from __future__ import annotations

from collections.abc import Callable

import tango

SUPERVISOR_CLASS = "Supervisor"
STARTED = "startedDevices"


class RestartListener:
    """Calls `restarted(devices)` (lower-case names) when a supervisor of the lab says their server came up."""

    def __init__(self, restarted: Callable[[list[str]], None], tango_host: str | None = None) -> None:
        self.restarted = restarted
        self.tango_host = tango_host  # HOST:PORT of the lab's database; None: $TANGO_HOST
        self._subscriptions: list[tuple[tango.DeviceProxy, int]] = []

    def start(self) -> None:
        """Listen to every supervisor the database knows (none: nothing to listen to)."""
        if self.tango_host:
            host, _, port = self.tango_host.rpartition(":")
            database = tango.Database(host, int(port))
        else:
            database = tango.Database()
        prefix = f"tango://{database.get_db_host()}:{database.get_db_port()}/"
        for name in database.get_device_exported_for_class(SUPERVISOR_CLASS).value_string:
            proxy = tango.DeviceProxy(prefix + name)
            event_id = proxy.subscribe_event(STARTED, tango.EventType.CHANGE_EVENT, self._listener(),
                                             sub_mode=tango.EventSubMode.Stateless)
            self._subscriptions.append((proxy, event_id))

    def stop(self) -> None:
        for proxy, event_id in self._subscriptions:
            try:
                proxy.unsubscribe_event(event_id)
            except tango.DevFailed:
                pass  # the supervisor is gone: nothing to undo
        self._subscriptions.clear()

    def _listener(self) -> Callable[[tango.EventData], None]:
        """The callback of one supervisor: the first value after (re)subscribing is the one it
        already had, not news, and is skipped."""
        fresh = [True]

        def heard(event: tango.EventData) -> None:
            if event.err or event.attr_value is None:
                fresh[0] = True
                return
            if fresh[0]:
                fresh[0] = False
                return
            if devices := [str(name).lower() for name in (event.attr_value.value or ())]:
                self.restarted(devices)

        return heard


def device_of(name: str) -> str:
    """`domain/family/member` of a device or attribute name, with or without tango://host:port/."""
    path = name.split("://", 1)[-1]
    parts = path.split("/")
    if "://" in name:
        parts = parts[1:]  # the host:port
    return "/".join(parts[:3]).lower()
