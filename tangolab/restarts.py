"""Subscribe again at once when a server restarts.

A Tango client re-subscribes to the events of a restarted server only at its event keep-alive
check, every 10 s (cppTango's EVENT_HEARTBEAT_PERIOD): for up to 10 s after a restart it hears
nothing. The lab's supervisors push a change event of `startedDevices` (the devices of the
server that just began answering) each time a server comes up; `RestartListener` hands those
names to a subscriber, which subscribes again to them right away. The archiver and the spy
(`tangolab spy`, `watch`) use it; any client can.
"""

from __future__ import annotations

import tango

SUPERVISOR_CLASS = "Supervisor"
STARTED = "startedDevices"


class RestartListener:
    """The devices (lower-case names) whose server a supervisor of the lab says came up again.

    Events are queued by Tango and taken by `restarted()`, never handed to a Python callback: a
    process that also takes events with `get_events` (the archiver, the spy) would deadlock when
    Tango's keep-alive thread calls back into Python while `get_events` waits for the lock that
    thread holds (pytango 10.3.1).
    """

    def __init__(self, tango_host: str | None = None, queue_size: int = 100) -> None:
        self.tango_host = tango_host  # HOST:PORT of the lab's database; None: $TANGO_HOST
        self.queue_size = queue_size
        self._subscriptions: list[tuple[tango.DeviceProxy, int]] = []
        self._fresh: dict[int, bool] = {}  # per subscription: the next value is the one it already had

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
            event_id = proxy.subscribe_event(STARTED, tango.EventType.CHANGE_EVENT, self.queue_size,
                                             sub_mode=tango.EventSubMode.Stateless)
            self._subscriptions.append((proxy, event_id))
            self._fresh[event_id] = True

    def restarted(self) -> list[str]:
        """The devices announced since the last call; the first value after (re)subscribing is the
        one the supervisor already had, not news, and is skipped."""
        devices: list[str] = []
        for proxy, event_id in self._subscriptions:
            try:
                events = proxy.get_events(event_id)
            except tango.DevFailed:
                continue
            for event in events:
                if event.err or event.attr_value is None:
                    self._fresh[event_id] = True
                elif self._fresh[event_id]:
                    self._fresh[event_id] = False
                else:
                    devices += [str(name).lower() for name in (event.attr_value.value or ())]
        return devices

    def stop(self) -> None:
        for proxy, event_id in self._subscriptions:
            try:
                proxy.unsubscribe_event(event_id)
            except tango.DevFailed:
                pass  # the supervisor is gone: nothing to undo
        self._subscriptions.clear()


def device_of(name: str) -> str:
    """`domain/family/member` of a device or attribute name, with or without tango://host:port/."""
    path = name.split("://", 1)[-1]
    parts = path.split("/")
    if "://" in name:
        parts = parts[1:]  # the host:port
    return "/".join(parts[:3]).lower()
