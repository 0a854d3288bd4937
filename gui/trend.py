"""`LabTrend`: Taurus's trend, with the archive's history before the window opened, never behind.

    trend = LabTrend(["tango://host:10000/lab/cryocon/1/temperatureA"], archive=archive_of_lab(host))

What it changes in taurus_pyqtgraph's TaurusTrend (5.4.1 / 0.9.9), measured there:
- Each event was handled twice (PyQt's cooperative __init__ runs TaurusBaseComponent.__init__ a
  second time, connecting taurusEvent twice) and the Config event sent on subscription carries
  the same reading as the Change after it: a point is stored once here (a reading whose time is
  not after the last one is dropped).
- Every event was decoded by Taurus (a TaurusAttrValue with units) and redrew its curve on the
  GUI thread (a core at 1 kHz, seconds of freeze at 3 kHz): here the trend subscribes through the
  window's event intake (`gui_intake`), whose callback only appends each event to a deque, and a
  timer takes them in and redraws at most 10 times a second, whatever the rate. Taurus still
  holds the model (names, labels, tools).
- A value that does not change came as one point, drawn as nothing until it changed: the last
  value is drawn held up to now.
- History comes from the lab's archive (tangolab's store, SQLite or PostgreSQL), read in a
  thread, and more of it as the view is scrolled back past what is loaded. Taurus's own
  archiving hook wants a global pyhdbpp reader, queries on the GUI thread and asks with modal
  dialogs; it is not used.
- Legends read the attribute's label (or name), not `temperatureA[0]`, and sit above the plot in
  as many columns as fit, not over the curves.
"""

from __future__ import annotations

import collections
import math
import threading
import time

import numpy as np
from taurus.core import TaurusEventType
from taurus.external.qt import Qt
from taurus.qt.qtgui.base import TaurusBaseComponent
from taurus_pyqtgraph import TaurusTrend
from taurus_pyqtgraph.taurustrendset import TaurusTrendSet

from gui.trend_history import archive_of_lab, archived_name, read_history
from tangolab.events import Feed, Intake, event_time, is_loss

__all__ = ["LabTrend", "LabTrendSet", "archive_of_lab", "gui_intake", "responsive_interpreter"]

REDRAW_PERIOD = 0.1  # s: at most 10 redraws a second, whatever the event rate
HOLD_REDRAW_PERIOD = 1.0  # s: how often a held (unchanged) value's line is stretched to now
HISTORY = 3600.0  # s of archive shown before the window opened
BUFFER_SIZE = 65536  # points kept per curve (Taurus's default)
SCROLL_SETTLE = 0.3  # s after the last scroll before more history is read
LEGEND_INDENT, LEGEND_GAP = 40, 24  # px: the legend starts over the value axis' end; room between its columns


GIL_SWITCH_INTERVAL = 0.0005  # s; Python's default is 0.005


def responsive_interpreter() -> None:
    """Interpreter settings for a GUI process that takes events on Tango's threads: call once the
    window is built. Measured with benchmarks/gui.py (50 curves, 500 events/s): with Python's
    defaults the event loop stalls up to 0.3-0.5 s, the GUI thread idle meanwhile: it gives up the
    GIL at each of its many calls into Qt and waits a whole 5 ms switch interval to get it back,
    and full garbage collections of the whole heap (Taurus, pyqtgraph) take 60-180 ms on whichever
    thread starts them. A 0.5 ms switch interval and gc.freeze() of what exists once the window is
    up: no stall over 100 ms."""
    import gc
    import sys

    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    gc.collect()
    gc.freeze()


def _plain(rvalue) -> np.ndarray:
    """A reading's number(s) as float64, without its unit (a curve has one unit)."""
    return np.asarray(getattr(rvalue, "magnitude", rvalue), dtype=np.float64).ravel()


POLL_PERIOD = 3.0  # s, as Taurus polls what pushes no events
_intake: Intake | None = None


def gui_intake() -> Intake:
    """The window's one event intake, taking events by callback: the GUI process takes events one
    way only, Taurus's (pytango 10.3.1 deadlocks a process that waits in get_events while the
    keep-alive thread calls a Python callback, and the GUI froze for good). Each callback only
    appends the event to a deque; the redraw timer takes them. Subscribing, reading what pushes no
    events (every POLL_PERIOD s), subscribing again after a restart: on the intake's threads."""
    global _intake
    if _intake is None:
        _intake = Intake(by_callback=True)
    return _intake


def readings(events: list) -> list[tuple[float, object]]:
    """(time, value) of each event, None where there was no reading (INVALID, an error, a server's end)."""
    taken = []
    for event in events:
        if event.err:
            if not is_loss(event):
                taken.append((event_time(event), None))
        elif event.attr_value is not None:
            taken.append((event.attr_value.time.totime(), event.attr_value.value))
    return taken


class LabTrendSet(TaurusTrendSet):
    """A TaurusTrendSet whose readings wait in a queue until the trend's timer draws them."""

    def __init__(self, *args, **kwargs):
        model = kwargs.pop("yModel", None)
        super().__init__(*args, **kwargs)
        # PyQt already ran TaurusBaseComponent.__init__ once from QGraphicsObject's: one connection, not two
        self.taurusEvent.disconnect()
        self.taurusEvent.connect(self.filterEvent)
        self._incoming: collections.deque = collections.deque()
        self._held = False  # whether the last reading is valid, so drawn held up to now
        self._last_drawn = 0.0
        self._stale = False  # the buffers hold what the curves do not show yet
        if model is not None:
            self.setModel(model)

    def setModel(self, name):
        """Taurus knows the model (names, configuration, tools); readings come from our own subscription."""
        TaurusBaseComponent.setModel(self, name)

    def _attach(self, **kwargs):
        """The model's Taurus attribute, without listening to it: Taurus would decode every event
        on Tango's thread, holding the GIL the GUI thread needs (a stall whenever the OS pauses
        that thread on a busy machine). Readings come from the window's event intake (gui_intake)."""
        import taurus

        key = self._checkModelKey(kwargs["key"]) if "key" in kwargs else self.modelKeys[0]
        name = self._modelName[key]
        try:
            self._modelObj[key] = taurus.Attribute(name) if name else None
        except Exception as error:  # noqa: BLE001 - as Taurus's own attach: say why, keep the window
            self.warning("cannot use %r: %s", name, error)
            self._modelObj[key] = None
            return False
        self._attached[key] = False
        if name:
            self._feed: Feed | None = gui_intake().add(
                archived_name(self.getFullModelName() or name), poll_period=POLL_PERIOD, now=False
            )
        return False

    def _detach(self, **kwargs):
        if getattr(self, "_feed", None) is not None:
            gui_intake().remove(self._feed)
            self._feed = None
        return super()._detach(**kwargs)

    # -- intake from Taurus (forced reads) ------------------------------------------------------------

    def eventReceived(self, evt_src, evt_type, evt_value):
        if self._timer.isActive() and evt_src is not self:
            return  # forced reading on: only its own readings, as Taurus does
        if evt_type == TaurusEventType.Error:
            self._incoming.append((time.time(), None))  # a gap, and nothing held
        elif evt_type in (TaurusEventType.Change, TaurusEventType.Periodic):
            rvalue = getattr(evt_value, "rvalue", None)
            if rvalue is not None:
                try:
                    self._incoming.append((evt_value.time.totime(), _plain(rvalue)))
                except (TypeError, ValueError):
                    pass  # not a number: nothing to draw
        # Config events repeat the reading of the Change that follows them

    def handleEvent(self, evt_src, evt_type, evt_value):
        """Readings fired on the GUI thread (forced reads) join the same queue."""
        self.eventReceived(evt_src, evt_type, evt_value)

    # -- drawing, on the GUI thread --------------------------------------------------------------

    def _initCurves(self, ntrends):
        """TaurusTrendSet's, naming a scalar's curve by its label alone (not `label[0]`), with
        clipping and downsampling so that a long buffer draws as fast as a short one."""
        from taurus.core.util.containers import LoopList
        from taurus_pyqtgraph.curveproperties import CURVE_COLORS
        from taurus_pyqtgraph.taurustrendset import TrendCurve

        self._updateViewBox(None)
        if self._curveColors is None:
            self._curveColors = LoopList(CURVE_COLORS)
            self._curveColors.setCurrentIndex(-1)
        base_name = self.base_name() or self.getModelObj().getSimpleName()
        self._curves = []
        for index in range(ntrends):
            options = dict(self._kwargs, name=base_name if ntrends == 1 else f"{base_name}[{index}]")
            curve = TrendCurve(*self._args, **options)
            curve._trendset = self
            if "pen" not in options:
                curve.setPen(next(self._curveColors))
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
            self._curves.append(curve)
        self._updateViewBox(self.getViewBox())

    def _ensure_buffers(self, ntrends: int) -> None:
        if self._xBuffer is None or self._yBuffer.contents().shape[1] != ntrends:
            self._initBuffers(ntrends)
            self._initCurves(ntrends)

    def take_in(self, now: float, draw: bool = True) -> bool:
        """Move queued readings into the buffers and, if `draw`, redraw what changed; whether any came."""
        if getattr(self, "_feed", None) is not None:
            for t, value in readings(self._feed.take()):
                if value is None:
                    self._incoming.append((t, None))
                    continue
                try:
                    self._incoming.append((t, np.asarray(value, dtype=np.float64).ravel()))
                except (TypeError, ValueError):
                    pass  # not a number: nothing to draw
        points = []
        while self._incoming:
            points.append(self._incoming.popleft())
        if points:
            self._append(points)
            self._stale = True
        elif self._held and now - self._last_drawn >= HOLD_REDRAW_PERIOD:
            self._stale = True
        if draw and self._stale:
            self._draw(now)
        return bool(points)

    def _append(self, points: list) -> None:
        size = next((len(v) for _, v in reversed(points) if v is not None), None)
        if size is None:
            size = 1 if self._xBuffer is None else self._yBuffer.contents().shape[1]
        self._ensure_buffers(size)
        last = self._xBuffer.contents()[-1] if len(self._xBuffer) else -math.inf
        times, values = [], []
        for t, value in points:
            if value is None:
                self._held = False
                value = np.full(size, math.nan)
                t = max(t, last + 1e-6)
            elif len(value) != size:
                continue
            else:
                self._held = True
            if t <= last:
                continue  # the same reading again (or an older one): stored once
            times.append(t)
            values.append(value)
            last = t
        if times:
            self._xBuffer.extend(np.array(times))
            self._yBuffer.extend(np.array(values).reshape(len(times), size))

    def _draw(self, now: float) -> None:
        if self._xBuffer is None:
            return
        x, y = self._xBuffer.contents(), self._yBuffer.contents()
        if self._held and len(x) and x[-1] < now:
            x, y = np.append(x, now), np.vstack([y, y[-1:]])  # the last value holds until it changes
        self._addData(x, y)
        self._last_drawn = now
        self._stale = False

    def _update(self):
        self._draw(time.time())

    def add_history(self, times: np.ndarray, values: np.ndarray) -> int:
        """Put archived points before those held; how many were taken."""
        self._ensure_buffers(1 if self._xBuffer is None else self._yBuffer.contents().shape[1])
        if self._yBuffer.contents().shape[1] != 1:
            return 0  # a spectrum: its history is not drawn
        if len(self._xBuffer):
            keep = times < self._xBuffer.contents()[0]
            times, values = times[keep], values[keep]
        room = self._maxBufferSize - len(self._xBuffer) - 1
        times, values = times[len(times) - max(room, 0) :], values[len(values) - max(room, 0) :]
        if len(times):
            self._xBuffer.extendLeft(np.asarray(times, np.float64))
            self._yBuffer.extendLeft(np.asarray(values, np.float64).reshape(-1, 1))
            self._draw(time.time())
        return len(times)

    def point_count(self) -> int:
        """Points stored (the held-to-now point is drawn, not stored)."""
        return 0 if self._xBuffer is None else len(self._xBuffer)


class LabTrend(TaurusTrend):
    """A Taurus trend of `models` (full attribute names) with their history from `archive`
    (a path or URL of a tangolab archive; None: live only), redrawn at most every `redraw_period` s."""

    historyRead = Qt.pyqtSignal(object, float)

    def __init__(
        self,
        models: list[str],
        archive: str | None = None,
        parent=None,
        *,
        history: float = HISTORY,
        redraw_period: float = REDRAW_PERIOD,
        buffer_size: int = BUFFER_SIZE,
    ) -> None:
        super().__init__(parent=parent, buffer_size=buffer_size)
        self._model_chooser_tool.itemClass = LabTrendSet
        self.archive = archive
        self.history = history
        self.history_error: str | None = None  # why the archive could not be read, if it could not
        self.longest_redraw = 0.0  # s: the longest intake and redraw (painting comes after, from Qt)
        self._loaded_from: float | None = None  # the archive is read from then on
        self._legend_shape = (0, 0)  # entries and width the legend was last folded for
        self._reading = False
        self.historyRead.connect(self._add_history)
        self._redraw = Qt.QTimer(self)
        self._redraw.timeout.connect(self.take_in)
        self._redraw.start(max(int(redraw_period * 1000), 1))
        self._settle = Qt.QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.timeout.connect(self._read_more_history)
        self.getPlotItem().sigXRangeChanged.connect(lambda *_: self._settle.start(int(SCROLL_SETTLE * 1000)))
        self.setModel(models)

    def setModel(self, names):
        """Models as full names; each curve named by its attribute's label, with its device where
        two would read the same."""
        import taurus

        names = [names] if isinstance(names, str) else list(names or [])
        labels = []
        for name in names:
            try:
                attribute = taurus.Attribute(name)
                labels.append(attribute.getLabel() or attribute.getSimpleName())
            except Exception:  # noqa: BLE001 - an unknown attribute keeps its name; Taurus says why
                labels.append(name.split("#")[0].rsplit("/", 1)[-1])
        repeated = {label for label in labels if labels.count(label) > 1}
        cnames = [
            f"{name.split('#')[0].rsplit('/', 2)[-2]}/{label}" if label in repeated else label
            for name, label in zip(names, labels)
        ]
        self._model_chooser_tool.updateModels([(None, name, cname) for name, cname in zip(names, cnames)])
        if self.archive and names:
            self._read_history(time.time() - self.history, None)

    def take_in(self) -> None:
        """Draw what arrived since the last time (the redraw timer calls it)."""
        if self.getPlotItem() is None:  # the widget is being deleted
            self._redraw.stop()
            return
        started, now = time.perf_counter(), time.time()
        visible = self.isVisible()  # a trend in a hidden tab keeps its points, draws when shown
        for trend_set in self.getTrendSets():
            if isinstance(trend_set, LabTrendSet):
                trend_set.take_in(now, visible)
        if visible:
            self._fold_legend()
        self.longest_redraw = max(self.longest_redraw, time.perf_counter() - started)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.take_in()

    def _fold_legend(self) -> None:
        """The legend above the plot, in as many columns as its width holds: never over the curves
        it names (pyqtgraph puts it inside the view, over them). Cheap when nothing changed."""
        plot = self.getPlotItem()
        legend = getattr(plot, "legend", None)
        if legend is None:
            return
        shape = (len(legend.items), round(plot.width()))
        if shape == self._legend_shape:
            return
        self._legend_shape = shape
        if legend.parentItem() is not plot:
            legend.setParentItem(plot)
            legend.anchor(itemPos=(0, 0), parentPos=(0, 0), offset=(LEGEND_INDENT, 0))
        entries, width = shape
        if not entries:
            plot.layout.setRowFixedHeight(0, 0)
            return
        widest = max(sample.boundingRect().width() + label.boundingRect().width() for sample, label in legend.items)
        legend.setColumnCount(max(1, min(entries, int((width - LEGEND_INDENT) // (widest + LEGEND_GAP)))))
        plot.layout.setRowFixedHeight(0, legend.boundingRect().height())

    # -- history ---------------------------------------------------------------------------------

    def _read_history(self, since: float, until: float | None) -> None:
        """Read the archive in a thread; historyRead brings the points to the GUI thread."""
        models = [ts.getFullModelName() for ts in self.getTrendSets() if isinstance(ts, LabTrendSet)]
        if self._reading or not models:
            return
        self._reading = True
        archive = self.archive

        def read() -> None:
            try:
                found = read_history(archive, models, since, time.time() if until is None else until)
            except Exception as error:  # noqa: BLE001 - any archive failure: live only, and say why
                found = f"{type(error).__name__}: {error}"
            self.historyRead.emit(found, since)

        threading.Thread(target=read, name="trend history", daemon=True).start()

    def _add_history(self, found, since: float) -> None:
        self._reading = False
        if isinstance(found, str):
            self.history_error = found
            self.warning("no history from %s: %s", self.archive, found)
            return
        self.history_error = None
        self._loaded_from = since if self._loaded_from is None else min(since, self._loaded_from)
        for trend_set in self.getTrendSets():
            series = found.get(trend_set.getFullModelName())
            if isinstance(trend_set, LabTrendSet) and series is not None:
                trend_set.add_history(series.times, series.values)

    def _read_more_history(self) -> None:
        """The view was scrolled back before what is loaded: read the archive back to its left edge."""
        if not self.archive or self._loaded_from is None:
            return
        left = self.getPlotItem().viewRange()[0][0]
        if left < self._loaded_from - 1.0:
            self._read_history(left, self._loaded_from)

    def loaded_from(self) -> float | None:
        """Since when the archive's points are in the curves (None: not read yet)."""
        return self._loaded_from
