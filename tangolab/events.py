"""One event intake for every client that subscribes: the archiver, the spy, scripts, CCD heads, trends.

    intake = Intake()
    feed = intake.add("tango://host:10000/lab/cryocon/1/temperatureA")
    while True:
        for event in feed.take():
            print(event_time(event), event.errors[0].reason if event.err else event.attr_value.value)
        time.sleep(0.02)
    intake.close()

What it takes care of, so that no client has to:

- **Queues, not callbacks.** Events wait in Tango's own queue of each subscription and are taken
  in batches (`take`): a Python callback per event costs a thread switch and the GIL each time.
  A process takes events one way only (pytango 10.3.1 deadlocks a process that waits in
  `get_events` while the keep-alive thread calls a Python callback): the GUI, whose Taurus
  takes events by callback, makes its intake with `by_callback=True`, and the callback only
  appends to a deque that `take` empties.
- **ZeroMQ's late joiner.** An event pushed while a new subscription is still on its way to the
  server's publisher is lost. Until a subscription has heard a live event (one after the value
  read at subscription), or a newer subscription to the same device has, the attribute is read
  again a few times (`REREAD_AFTER`); a reading that differs from the last value taken, and that
  no event overtook, is handed over as an event would have been.
- **Restarts and deaths.** The lab's supervisors announce the devices of a server that ended
  (`endedDevices`, stamped when the supervisor saw the end) and of one that answers again
  (`startedDevices`). An end is handed to each of its subscriptions as an error event at that
  time (reason `SERVER_ENDED`); a restart makes the intake subscribe again at once rather than
  at Tango's 10 s keep-alive (and, when no end was heard, hands over a `SERVER_RESTARTED` error
  just after the last value taken, so that an outage never reads as valid data). The intake
  looks for supervisors every `SUPERVISOR_CHECK` s, so that one its watchdog restarted (or one
  started since) is heard at once too.
- **Loss said, never silent.** Tango's `API_MissedEvents`, and a queue found full when drained
  (`QUEUE_FULL`, just before the events it kept), come as error events; each feed counts what
  it `received`, its `losses` and its `failures`.
- **Devices away.** A subscription that fails because the device does not answer is tried again
  with back-off (at once when its server is announced up); an attribute that offers no events
  is read every `poll_period` when one is given.

Events are Tango's `EventData`; what the intake makes itself is a `Notice` of the same shape
(`err`, `errors`, `attr_value`, `reception_date`), so a client handles both in one place.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import tango

SUPERVISOR_CLASS = "Supervisor"
STARTED = "startedDevices"  # the supervisor's news: the devices of a server that answers again
ENDED = "endedDevices"  # ... and of one whose process ended, stamped when the supervisor saw it

SERVER_ENDED = "TangoLab_ServerEnded"
SERVER_RESTARTED = "TangoLab_ServerRestarted"
QUEUE_FULL = "TangoLab_EventQueueFull"
LOSS_REASONS = frozenset({"API_MissedEvents", QUEUE_FULL})
#: What subscribe_event says when an attribute offers no such events (neither pushed nor polled)
NOT_OFFERED = frozenset({"API_AttributePollingNotStarted", "API_EventPropertiesNotSet",
                         "API_AttributeNotDataReadyEnabled"})

DEFAULT_QUEUE = 100_000  # events held per subscription between two takes (0: no limit)
UPKEEP_PERIOD = 0.02  # s between two looks at the supervisors' news and at what is due
REREAD_AFTER = (0.1, 0.3, 1.0, 3.0, 10.0)  # s after subscribing, while no live event has come
OVERTAKE_MARGIN = 0.05  # s a re-read reading waits, in case an event pushed before it is still on its way
RETRY_FIRST, RETRY_MAX = 0.25, 5.0  # s between tries to subscribe to a device that does not answer
PULL_PAUSE = 0.01  # s `wait` pauses when taking from queues
WORKERS = 4  # threads that subscribe and read, so that one hung device delays nobody else
SUPERVISOR_CHECK = 1.0  # s between two looks for a supervisor that is new or was restarted (its watchdog)


def event_time(event: tango.EventData | Notice) -> float:
    """When the value was read (the source's time stamp), else when the event came."""
    if not event.err and event.attr_value is not None:
        return event.attr_value.time.totime()
    return event.reception_date.totime()


def is_loss(event: tango.EventData | Notice) -> bool:
    """Whether an error event says events were lost, rather than that the attribute failed."""
    return event.err and event.errors[0].reason in LOSS_REASONS


def error_text(errors: Iterable[tango.DevError]) -> str:
    """`REASON: description` of the first error, on one line."""
    first = next(iter(errors))
    return f"{first.reason}: {' '.join(str(first.desc).split())}"


def device_of(name: str) -> str:
    """`domain/family/member` (lower case) of a device or attribute name, with or without tango://host:port/."""
    path = name.split("#", 1)[0].split("://", 1)[-1]
    parts = path.split("/")
    if "://" in name:
        parts = parts[1:]  # the host:port
    return "/".join(parts[:3]).lower()


def attribute_name(device: str, attribute: str) -> str:
    """A device's name or TRL (`...#dbase=no` too) with an attribute."""
    path, hash_, option = device.partition("#")
    return f"{path}/{attribute}{hash_}{option}"


def lab_of(name: str) -> str | None:
    """The database of a name: `host:port` (lower case), "" for $TANGO_HOST's, None for a device without one."""
    if "#dbase=no" in name:
        return None
    if name.startswith("tango://"):
        return name[len("tango://"):].split("/", 1)[0].lower()
    return ""


@dataclass(frozen=True, eq=False)
class Notice:
    """An event the intake makes itself (a reading, a server's end, a loss), shaped as EventData."""

    attr_name: str
    err: bool
    errors: tuple = ()
    attr_value: tango.DeviceAttribute | None = None
    reception_date: tango.TimeVal = field(default_factory=tango.TimeVal.now)

    @classmethod
    def reading(cls, name: str, reading: tango.DeviceAttribute) -> Notice:
        return cls(name, False, (), reading)

    @classmethod
    def error(cls, name: str, reason: str, desc: str, when: float | None = None) -> Notice:
        error = tango.DevError()
        error.reason, error.desc, error.origin, error.severity = reason, desc, "tangolab.events", tango.ErrSeverity.ERR
        stamp = tango.TimeVal.now() if when is None else tango.TimeVal.fromtimestamp(when)
        return cls(name, True, (error,), None, stamp)

    @classmethod
    def failed(cls, name: str, exc: tango.DevFailed) -> Notice:
        return cls(name, True, tuple(exc.args))


class Feed:
    """One attribute's events, as the intake subscribed them: take them with `take()`.

    `kind` is the event type subscribed (None while waiting for the device, or when the attribute
    offers none: `polled` then says whether the intake reads it instead).
    """

    def __init__(self, intake: Intake, name: str, kinds: tuple[tango.EventType, ...], poll_period: float | None):
        self.intake = intake
        self.name = name  # as given: a full attribute name or TRL (#dbase=no kept)
        text, hash_, option = name.partition("#")
        device, _, self.attribute = text.rpartition("/")
        self.device = device + hash_ + option  # what DeviceProxy takes
        self.bare_device = device_of(name)
        self.lab = lab_of(name)
        self.kinds = kinds
        self.poll_period = poll_period
        self.proxy: tango.DeviceProxy | None = None
        self.kind: tango.EventType | None = None
        self.polled = False
        self.event_id: int | None = None
        self.since = 0.0  # epoch time the current subscription began: what it reads first may be older news
        self.received = 0  # events Tango delivered
        self.losses = 0  # reports of lost events (Tango's missed events, a full queue)
        self.failures = 0  # error events (the device away, a read failing, a server's end)
        self.closed = False
        self._arrived: deque | None = None  # by callback: what the callback appended
        self._notices: deque[Notice] = deque()
        self._held: tuple[tango.DeviceAttribute, int, float] | None = None  # a re-read waiting to be handed over
        self._since = 0  # events taken since the current subscription began
        self._seq = 0  # order of the current subscription among the intake's
        self._last: tango.EventData | Notice | None = None  # the last event taken
        self._end_heard = False  # a server's end handed over since the current subscription began
        self._subscribed_at = 0.0  # monotonic
        self._rereads = 0
        self._due = 0.0  # monotonic time of the next subscription try, re-read or poll
        self._retry = 0.0
        self._busy = False  # a worker subscribes or reads it now
        self._resubscribe = False

    @property
    def live(self) -> bool:
        """Whether an event after the first has come: the subscription surely reaches the server."""
        return self._since >= 2

    def take(self) -> list:
        """The events since the last take, oldest first (Tango's EventData and the intake's Notices)."""
        events: list = []
        event_id = self.event_id
        if event_id is not None:
            if self._arrived is not None:
                arrived = self._arrived
                try:
                    while True:
                        events.append(arrived.popleft())
                except IndexError:
                    pass
            else:
                try:
                    events = self.proxy.get_events(event_id)
                except (tango.DevFailed, ValueError):  # unsubscribed meanwhile (a restart, a removal)
                    events = []
            if events:
                self._count(events)
        if self._notices or self._held is not None:
            events = self._with_notices(events)
        return events

    def _count(self, events: list) -> None:
        count = len(events)
        self.received += count
        self._since += count
        if self._arrived is None and 0 < self.intake.queue_size <= count:  # Tango's queue overwrote older ones
            self.losses += 1
            self._notices.appendleft(Notice.error(
                self.name, QUEUE_FULL,
                f"the queue of {self.intake.queue_size} events was full when taken: events before these were dropped",
                event_time(events[0]),
            ))
        for event in events:
            if event.err:
                if event.errors[0].reason in LOSS_REASONS:
                    self.losses += 1
                else:
                    self.failures += 1
        self._last = events[-1]

    def _with_notices(self, events: list) -> list:
        """Tango's events with the intake's own: losses before them, other news after them."""
        before, after = [], []
        while self._notices:
            notice = self._notices.popleft()
            (before if notice.err and notice.errors[0].reason == QUEUE_FULL else after).append(notice)
        held = self._held
        if held is not None:
            reading, since, read_at = held
            if self._since != since:
                self._held = None  # an event came after the read began: the events tell it
            elif time.monotonic() - read_at >= OVERTAKE_MARGIN:
                self._held = None
                after.append(Notice.reading(self.name, reading))
        if after:
            self._last = after[-1]
            self.failures += sum(notice.err for notice in after)
        return before + events + after if before or after else events

    def _notify(self, notice: Notice) -> None:
        """Hand over an event the intake made (from its own threads)."""
        self._notices.append(notice)
        self.intake._came.set()

    def __repr__(self) -> str:
        return f"Feed({self.name!r}, kind={self.kind}, polled={self.polled})"


class Intake:
    """Subscriptions of one client, kept alive and taken in batches; `close()` when done."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE, by_callback: bool = False) -> None:
        self.queue_size = queue_size
        self.by_callback = by_callback  # the GUI's way; every other process pulls from queues
        self._feeds: list[Feed] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._proxies: dict[str, tango.DeviceProxy] = {}
        self._news: list[Feed] = []  # the supervisors' startedDevices and endedDevices, one lab at a time
        self._labs: set[str | None] = set()  # the labs whose supervisors are listened to
        #: supervisor (full name) -> the IOR its news subscriptions reach, and when it was last seen there
        self._heard: dict[str, tuple[str, float]] = {}
        self._listening = threading.Lock()  # one look at the supervisors at a time
        self._next_look = time.monotonic() + SUPERVISOR_CHECK
        self._stop = threading.Event()
        self._came = threading.Event()  # by callback: an event or notice came since the last wait
        self._workers = ThreadPoolExecutor(WORKERS, thread_name_prefix="intake")
        self._thread = threading.Thread(target=self._upkeep, name="intake upkeep", daemon=True)
        self._thread.start()

    # -- what clients call ------------------------------------------------------------------------

    def add(
        self,
        name: str,
        kinds: Iterable[tango.EventType] = (tango.EventType.CHANGE_EVENT,),
        *,
        poll_period: float | None = None,
        now: bool = True,
    ) -> Feed:
        """Subscribe an attribute (full name or TRL) to the first of `kinds` it offers.

        `now`: subscribe in the caller's thread, and raise DevFailed if the device does not answer
        or (without `poll_period`) the attribute offers none of `kinds`; otherwise the intake
        subscribes in the background, keeps trying while the device is away (handing the failure
        over once as an error event) and, with `poll_period`, reads an attribute that offers no
        events that often.
        """
        feed = Feed(self, name, tuple(kinds), poll_period)
        if now:
            self._subscribe(feed, raising=True)
        with self._lock:
            self._feeds.append(feed)
            listen = feed.lab not in self._labs
            self._labs.add(feed.lab)
        if listen and now:  # the supervisors are heard before the caller goes on
            self._listen(feed.lab)
        elif listen:
            self._workers.submit(self._listen, feed.lab)
        return feed

    def remove(self, feed: Feed) -> None:
        """Stop a feed; its subscription is undone in the background (never blocks the caller)."""
        feed.closed = True
        with self._lock:
            if feed in self._feeds:
                self._feeds.remove(feed)
        try:
            self._workers.submit(self._unsubscribe, feed)
        except RuntimeError:  # the intake is closed: nothing waits any more
            self._unsubscribe(feed)

    def wait(self, timeout: float) -> None:
        """Until something may have come, at most `timeout` s: by callback, until an event or a
        notice came; pulling from queues, which cannot tell, a short pause."""
        if self.by_callback:
            self._came.wait(timeout)
            self._came.clear()
        else:
            self._stop.wait(min(timeout, PULL_PAUSE))

    @property
    def feeds(self) -> list[Feed]:
        with self._lock:
            return list(self._feeds)

    def close(self) -> None:
        """Unsubscribe everything and end the intake's threads."""
        self._stop.set()
        self._thread.join(timeout=5)
        for feed in self.feeds:
            feed.closed = True  # what waits for a worker now is skipped; removals still run
        self._workers.shutdown(wait=True)
        with self._lock:
            feeds, self._feeds = self._feeds + self._news, []
            self._news = []
        for feed in feeds:
            self._unsubscribe(feed)

    # -- subscribing ------------------------------------------------------------------------------

    def _proxy(self, device: str) -> tango.DeviceProxy:
        proxy = self._proxies.get(device)
        if proxy is None:
            proxy = self._proxies[device] = tango.DeviceProxy(device)
        return proxy

    def _subscribe(self, feed: Feed, raising: bool = False) -> None:
        """Subscribe to the first kind offered; else poll it (given a period) or say it offers none."""
        try:
            feed.proxy = feed.proxy or self._proxy(feed.device)
            for kind in feed.kinds:
                try:
                    self._subscribe_kind(feed, kind)
                    return
                except tango.DevFailed as exc:
                    if not NOT_OFFERED & {error.reason for error in exc.args}:
                        raise
                    refusal = exc
            if feed.poll_period is None:
                if raising:
                    raise refusal
                feed.kind, feed.polled, feed._due = None, False, float("inf")
                feed._notify(Notice.failed(feed.name, refusal))
                return
            feed.kind, feed.polled, feed._due = None, True, time.monotonic()
        except tango.DevFailed as exc:
            if raising:
                raise
            if feed._retry == 0.0:  # the first try of this outage: said once
                feed._notify(Notice.failed(feed.name, exc))
            feed._retry = min(max(feed._retry * 2, RETRY_FIRST), RETRY_MAX)
            feed._due = time.monotonic() + feed._retry

    def _subscribe_kind(self, feed: Feed, kind: tango.EventType, stateless: bool = False) -> None:
        mode = tango.EventSubMode.Stateless if stateless else tango.EventSubMode.SyncRead
        if self.by_callback:
            arrived: deque | None = deque()

            def on_event(event: tango.EventData, arrived: deque = arrived, came: threading.Event = self._came) -> None:
                arrived.append(event)  # on Tango's thread: as little as possible
                came.set()

            event_id = feed.proxy.subscribe_event(feed.attribute, kind, on_event, sub_mode=mode)
        else:
            arrived = None
            event_id = feed.proxy.subscribe_event(feed.attribute, kind, self.queue_size, sub_mode=mode)
        with self._lock:
            self._seq += 1
            feed._seq = self._seq
        feed._since, feed._end_heard, feed._rereads, feed._retry = 0, False, 0, 0.0
        feed._arrived, feed.event_id, feed.kind, feed.polled = arrived, event_id, kind, False
        feed._subscribed_at, feed.since = time.monotonic(), time.time()
        feed._due = feed._subscribed_at + REREAD_AFTER[0]

    def _unsubscribe(self, feed: Feed) -> None:
        event_id, feed.event_id = feed.event_id, None
        if event_id is not None and feed.proxy is not None:
            try:
                feed.proxy.unsubscribe_event(event_id)
            except (tango.DevFailed, KeyError, ValueError):
                pass  # its server is gone: nothing left to undo

    # -- the upkeep thread: news, retries, re-reads, polls ----------------------------------------

    def _upkeep(self) -> None:
        while not self._stop.wait(UPKEEP_PERIOD):
            try:
                self._take_news()
                self._schedule()
                self._look_at_supervisors()
            except Exception:  # the intake must outlive a bug in one pass; the next tries again
                logging.getLogger(__name__).exception("event intake upkeep")

    def _schedule(self) -> None:
        now = time.monotonic()
        feeds = self.feeds
        live_seq: dict[str, int] = {}  # device -> newest subscription that heard a live event
        for feed in feeds:
            if feed.live and feed._seq > live_seq.get(feed.device, 0):
                live_seq[feed.device] = feed._seq
        for feed in feeds:
            if feed._held is not None and time.monotonic() - feed._held[2] >= OVERTAKE_MARGIN:
                self._came.set()  # a re-read reading is ready to be taken
            if feed._busy or feed.closed:
                continue
            if feed._resubscribe:
                feed._resubscribe = False
                self._work(feed, self._subscribe_again)
            elif now < feed._due:
                continue
            elif feed.polled:
                feed._due = now + feed.poll_period
                self._work(feed, self._poll)
            elif feed.event_id is None:
                self._work(feed, self._subscribe)
            elif feed._seq <= live_seq.get(feed.device, 0) or feed._rereads >= len(REREAD_AFTER):
                feed._due = float("inf")  # heard live (or long enough): no more re-reads
            else:
                feed._rereads += 1
                after = REREAD_AFTER[feed._rereads] if feed._rereads < len(REREAD_AFTER) else float("inf")
                feed._due = feed._subscribed_at + after
                self._work(feed, self._reread)

    def _work(self, feed: Feed, job) -> None:
        feed._busy = True

        def run() -> None:
            try:
                if not feed.closed:
                    job(feed)
            finally:
                feed._busy = False

        try:
            self._workers.submit(run)
        except RuntimeError:  # shut down meanwhile
            feed._busy = False

    def _reread(self, feed: Feed) -> None:
        """Read once: a value no event brought (pushed before the subscription was in place) is handed over."""
        since = feed._since
        try:
            reading = feed.proxy.read_attribute(feed.attribute)
        except tango.DevFailed:
            return  # the events will say
        if not _same_reading(feed._last, reading) and feed._since == since and not feed.closed:
            feed._held = (reading, since, time.monotonic())

    def _poll(self, feed: Feed) -> None:
        try:
            feed._notify(Notice.reading(feed.name, feed.proxy.read_attribute(feed.attribute)))
        except tango.DevFailed as exc:
            feed._notify(Notice.failed(feed.name, exc))

    def _subscribe_again(self, feed: Feed) -> None:
        """Its server answers again: a new subscription now, not at Tango's next keep-alive."""
        if feed.event_id is not None and not feed._end_heard and feed._last is not None:
            last = event_time(feed._last)
            feed._notify(Notice.error(
                feed.name, SERVER_RESTARTED,
                f"{feed.bare_device} restarted: its values are missing since it stopped", last + 1e-6,
            ))
        self._unsubscribe(feed)
        feed._retry = 0.0
        if not feed.closed:
            self._subscribe(feed)

    # -- the supervisors' news ----------------------------------------------------------------------

    def _look_at_supervisors(self) -> None:
        """Now and then, in the background: a supervisor restarted (by its watchdog) or started
        since would otherwise be heard only at Tango's next 10 s keep-alive, or never."""
        if time.monotonic() < self._next_look or self._listening.locked():
            return
        self._next_look = time.monotonic() + SUPERVISOR_CHECK
        with self._lock:
            labs = list(self._labs)
        try:
            for lab in labs:
                self._workers.submit(self._listen, lab)
        except RuntimeError:  # closed meanwhile
            pass

    def _listen(self, lab: str | None) -> None:
        """Subscribe to the news of every supervisor of a lab's database that is new, or whose
        process changed since (none, or no database: nothing to hear)."""
        if lab is None:
            return
        with self._listening:
            try:
                if lab:
                    host, _, port = lab.rpartition(":")
                    database = tango.Database(host, int(port))
                else:
                    database = tango.Database()
                prefix = f"tango://{database.get_db_host()}:{database.get_db_port()}/"
                supervisors = {
                    prefix + name: database.import_device(name).ior
                    for name in database.get_device_exported_for_class(SUPERVISOR_CLASS).value_string
                }
            except (tango.DevFailed, ValueError):
                return  # no database to ask: the next look
            for supervisor, ior in supervisors.items():
                heard, seen = self._heard.get(supervisor, (None, None))
                if heard != ior and not self._stop.is_set():
                    self._hear(supervisor, lab, news_after=seen)
                self._heard[supervisor] = (ior, time.time())

    def _hear(self, supervisor: str, lab: str, news_after: float | None) -> None:
        """Subscribe (again) to one supervisor's news. The value read as it subscribes is old news,
        unless the supervisor is a new process (`news_after`: when its predecessor was last seen)
        and stamped it since: an end it saw before this client looked again."""
        with self._lock:
            old = [feed for feed in self._news if feed.device == supervisor]
            self._news = [feed for feed in self._news if feed.device != supervisor]
        for feed in old:
            self._unsubscribe(feed)
        for attribute in (ENDED, STARTED):
            feed = Feed(self, f"{supervisor}/{attribute}", (tango.EventType.CHANGE_EVENT,), None)
            feed.lab = lab  # the news is about the devices of the lab as its clients name it
            feed._fresh, feed._news_after = True, news_after
            try:
                feed.proxy = self._proxy(feed.device)
                self._subscribe_kind(feed, tango.EventType.CHANGE_EVENT, stateless=True)
            except tango.DevFailed:
                continue  # an older supervisor, without endedDevices
            with self._lock:
                self._news.append(feed)

    def _take_news(self) -> None:
        """The ends and restarts the supervisors announced, in the order they happened."""
        with self._lock:
            news = list(self._news)
        happened = []
        for feed in news:
            for event in feed.take():
                if event.err or event.attr_value is None:
                    feed._fresh = True  # the supervisor went away: its next value is again the one it had
                elif feed._fresh and (feed._news_after is None or event.attr_value.time.totime() <= feed._news_after):
                    feed._fresh = feed._news_after = None  # the value it had when (re)subscribed: old news
                else:
                    feed._fresh = feed._news_after = None
                    devices = {str(name).lower() for name in (event.attr_value.value or ())}
                    happened.append((event.attr_value.time.totime(), feed.attribute, feed.lab, devices))
        for when, what, lab, devices in sorted(happened, key=lambda news: news[0]):
            for feed in self.feeds:
                if feed.lab != lab or feed.bare_device not in devices:
                    continue
                if what != ENDED:
                    feed._resubscribe = True
                elif feed.event_id is not None and not feed._end_heard:
                    feed._end_heard = True
                    seen = time.strftime("%H:%M:%S", time.localtime(when)) + f"{when % 1:.3f}"[1:]
                    feed._notify(Notice.error(
                        feed.name, SERVER_ENDED,
                        f"the server of {feed.bare_device} ended (its supervisor saw it at {seen}): "
                        "no values until it answers again", when,
                    ))


def _same_reading(event: tango.EventData | Notice | None, reading: tango.DeviceAttribute) -> bool:
    """Whether a reading says what the last event said (value and quality)."""
    if event is None or event.err or event.attr_value is None:
        return False
    last = event.attr_value
    if last.quality != reading.quality:
        return False
    old, new = last.value, reading.value
    if isinstance(old, np.ndarray) or isinstance(new, np.ndarray):
        try:
            return np.array_equal(np.asarray(old), np.asarray(new), equal_nan=True)
        except TypeError:
            return np.array_equal(np.asarray(old), np.asarray(new))
    if isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new):
        return True
    return old == new
