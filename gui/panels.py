"""The lab's dedicated panels, where a device's form is not enough.

Each finds its devices by what they declare (a stage by the motor vocabulary, a CCD head by its
health and reason, a temperature by its unit), as the watch describes them, so a device added to
the database later joins its panel. Models are prepared off the GUI thread before widgets take
them, and every device's widgets are greyed while it is down.
"""

from __future__ import annotations

from collections.abc import Callable

from taurus.external.qt import Qt

from .device_panel import down_text, grey
from .form import GradualForm
from .models import CommandButton, Keeper
from .watch import DeviceInfo, Health

#: What makes a device a stage: the motor vocabulary every tangolab stage shares.
STAGE_ATTRIBUTES = ("Position", "Velocity", "Limit_switches", "Homed")
STAGE_COMMANDS = ("Stop", "Home", "Abort")
#: What makes a device a CCD head: a health and its reason.
HEAD_ATTRIBUTES = ("health", "reason")
HEAD_DETAILS = ("temperature", "target", "pressure", "flow", "peltierRunning", "interlockTripped")
#: What makes a device a monochromator, and what its panel shows besides: the long operation.
MONOCHROMATOR_ATTRIBUTES = ("wavelength", "grating", "filter", "shutterOpen")
MONOCHROMATOR_DETAILS = ("gratingLines", "gratingLabel", "operation", "progress", "timeLeft", "outcome")
#: Health colours, the same as the look's WARNING and ALARM qualities.
HEALTH_COLOURS = {"OK": "#3c3", "WARNING": "#fd0", "ERROR": "#e22"}
TEMPERATURE_UNITS = {"k", "degc", "°c", "c", "deg c"}


#: Part B's LabTrend (history from the archive, then live). Its first version drained events with
#: DeviceProxy.get_events on the GUI thread, which deadlocked with the client library's keep-alive
#: thread (pytango holds the GIL there); it now takes events by callback. False: TaurusTrend.
USE_LAB_TREND = True


def make_trend(models: list[str], archive: str | None = None, parent=None):
    """The window's trend widget: part B's LabTrend (history from the archive, then live) when
    USE_LAB_TREND, else taurus_pyqtgraph's TaurusTrend."""
    if USE_LAB_TREND:
        from .trend import LabTrend

        return LabTrend(models, archive, parent)
    from taurus_pyqtgraph import TaurusTrend

    trend = TaurusTrend(parent)
    trend.setModel(models)
    return trend


def archive_for(tango_host: str) -> str | None:
    """The lab's archive store, for trends and messages (may ask the database: not on the GUI thread)."""
    try:
        from .trend import archive_of_lab
    except ImportError:
        return None
    return archive_of_lab(tango_host)


class DevicesPanel(Qt.QWidget):
    """A panel of per-device sections: `wants(info)` picks the devices, `add(info)` builds a
    section from prepared models, `section_widgets[device]` are greyed while the device is down."""

    def __init__(self, window, parent=None) -> None:
        super().__init__(parent)
        self.window_ = window
        self.watch, self.background = window.watch, window.background
        self.keeper = Keeper(self.background, self)
        self.keeper.failed.connect(lambda text: self.say(text, False))
        self.section_widgets: dict[str, list[Qt.QWidget]] = {}
        self._pending: set[str] = set()
        self._down: set[str] = set()
        self.message = Qt.QLabel()
        self.message.setWordWrap(True)

    def scrolled_grid(self) -> Qt.QGridLayout:
        """The panel's body: a grid in a scroll area, above the message line."""
        inner = Qt.QWidget()
        grid = Qt.QGridLayout(inner)
        scroll = Qt.QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        layout = Qt.QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.message)
        return grid

    def start(self) -> None:
        """Take the devices the watch already knows, then follow it."""
        self.watch.described.connect(self._described)
        self.watch.health.connect(self._health)
        for device, info in list(self.watch.infos.items()):
            self._described(device, info)

    def full(self, device: str) -> str:
        return self.watch.full(device)

    def rank(self, device: str) -> tuple[int, str]:
        """Lab-file order first, then by name: where a device's section goes."""
        order = [spec.name.lower() for spec in self.window_.config.devices]
        return (order.index(device) if device in order else len(order), device)

    def place(self, device: str, placed: dict) -> int:
        """Index among the sections already placed at which a new device's section goes."""
        return sum(1 for other in placed if self.rank(other) < self.rank(device))

    def wants(self, info: DeviceInfo) -> bool:
        raise NotImplementedError

    def models(self, info: DeviceInfo) -> list[str]:
        raise NotImplementedError

    def add(self, info: DeviceInfo) -> list[Qt.QWidget]:
        raise NotImplementedError

    def _described(self, device: str, info: DeviceInfo) -> None:
        if device in self.section_widgets or device in self._pending or not self.wants(info):
            return
        self._pending.add(device)

        def ready(_models: list[str]) -> None:
            self._pending.discard(device)
            self.section_widgets[device] = self.add(info)
            if (health := self.watch.healths.get(device)) is not None:
                self._health(device, health)

        self.keeper.prepare_then(self.models(info), ready)

    def _health(self, device: str, health: Health) -> None:
        if device not in self.section_widgets:
            return
        down, was_down = not health.alive, device in self._down
        if down == was_down:
            return
        for widget in self.section_widgets[device]:
            grey(widget, down)
            widget.setToolTip(down_text(device, health) if down else "")
        if down:
            self._down.add(device)
            self.say(down_text(device, health), False)
        else:
            self._down.discard(device)
            self.say(f"{device} answers again")
            self.keeper.revive()

    def say(self, text: str, ok: bool = True) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("" if ok else "color: #c00; font-weight: bold")


class StagesPanel(DevicesPanel):
    """Every stage on a row: state, position, target and Move, velocity, home / upper / lower
    switches, homed, and Stop / Home / Abort."""

    COLUMNS = ("stage", "state", "position", "target", "", "velocity", "switches", "homed")

    def __init__(self, window, parent=None) -> None:
        super().__init__(window, parent)
        self.rows: dict[str, dict] = {}
        self.grid = self.scrolled_grid()
        for column, title in enumerate(self.COLUMNS):
            self.grid.addWidget(Qt.QLabel(f"<b>{title}</b>"), 0, column)
        self.grid.setRowStretch(1000, 1)
        self.start()

    def wants(self, info: DeviceInfo) -> bool:
        return all(info.attribute(name) is not None for name in STAGE_ATTRIBUTES)

    def models(self, info: DeviceInfo) -> list[str]:
        return [f"{self.full(info.name)}/{name}" for name in ("State", *STAGE_ATTRIBUTES)]

    def add(self, info: DeviceInfo) -> list[Qt.QWidget]:
        from taurus.qt.qtgui.display import TaurusLabel, TaurusLed
        from taurus.qt.qtgui.input import TaurusValueLineEdit

        model = self.full(info.name)
        known = len(self.window_.config.devices)
        row = 1 + self.rank(info.name)[0] if self.rank(info.name)[0] < known else 1 + known + len(self.rows)
        widgets: dict = {"state": TaurusLabel(), "position": TaurusLabel(), "target": TaurusValueLineEdit(),
                         "velocity": TaurusLabel(), "homed": TaurusLed()}
        widgets["state"].setModel(f"{model}/State")
        widgets["position"].setModel(f"{model}/Position")
        widgets["target"].setModel(f"{model}/Position")
        widgets["velocity"].setModel(f"{model}/Velocity")
        widgets["homed"].setModel(f"{model}/Homed")
        widgets["position"].setMinimumWidth(110)
        widgets["velocity"].setMinimumWidth(140)
        widgets["target"].setMinimumWidth(80)
        for key in ("position", "velocity"):
            widgets[key].setAutoTrim(False)  # a number never becomes "..."
        widgets["state"].setMinimumWidth(70)
        widgets["move"] = Qt.QPushButton("Move")
        widgets["move"].setMaximumWidth(52)
        widgets["move"].setToolTip("move to the target (or press Enter in the target field)")
        widgets["move"].clicked.connect(lambda: widgets["target"].writeValue(forceApply=True))
        switches = Qt.QWidget()
        switch_layout = Qt.QHBoxLayout(switches)
        switch_layout.setContentsMargins(0, 0, 0, 0)
        for index, name in enumerate(("home", "upper", "lower")):
            led = TaurusLed()
            led.setModel(f"{model}/Limit_switches")
            led.setModelIndex(index)
            led.setOnColor("orange" if index else "green")
            led.setToolTip(f"{name} switch")
            switch_layout.addWidget(led)
            widgets[f"{name} switch"] = led
        widgets["switches"] = switches
        widgets["name"] = Qt.QLabel(info.name)
        for column, key in enumerate(("name", "state", "position", "target", "move", "velocity", "switches", "homed")):
            self.grid.addWidget(widgets[key], row, column)
        commands = {command.cmd_name: command for command in info.commands}
        buttons = Qt.QWidget()  # one cell: the row fits the window beside the device tree
        button_layout = Qt.QHBoxLayout(buttons)
        button_layout.setContentsMargins(0, 0, 0, 0)
        button_layout.setSpacing(2)
        for name in STAGE_COMMANDS:
            if name in commands:
                button = CommandButton(model, commands[name], self.background)
                button.setMaximumWidth(56)
                button.result.connect(lambda text, ok, device=info.name: self.say(f"{device}: {text}", ok))
                button_layout.addWidget(button)
                widgets[name] = button
        self.grid.addWidget(buttons, row, len(self.COLUMNS))
        self.rows[info.name] = widgets
        return [widget for key, widget in widgets.items() if "switch " not in key]


def health_label():
    """A Taurus label of a health (OK / WARNING / ERROR) painted by what it says, as it updates."""
    from taurus.qt.qtgui.display import TaurusLabel

    class HealthLabel(TaurusLabel):
        def setText_(self, text: str) -> None:
            super().setText_(text)
            colour = HEALTH_COLOURS.get(text.strip(), "#bbb")
            self.setStyleSheet(f"background: {colour}; font-size: 16pt; font-weight: bold")

    return HealthLabel()


class HeadsPanel(DevicesPanel):
    """Each CCD head: its health in colour, the reason in words, then what it watches."""

    def __init__(self, window, parent=None) -> None:
        super().__init__(window, parent)
        self.heads: dict[str, Qt.QGroupBox] = {}
        self.row = Qt.QHBoxLayout()
        layout = Qt.QVBoxLayout(self)
        layout.addLayout(self.row, 1)
        layout.addWidget(self.message)
        self.start()

    def wants(self, info: DeviceInfo) -> bool:
        return all(info.attribute(name) is not None for name in HEAD_ATTRIBUTES)

    def models(self, info: DeviceInfo) -> list[str]:
        names = [*HEAD_ATTRIBUTES, *(name for name in HEAD_DETAILS if info.attribute(name) is not None)]
        return [f"{self.full(info.name)}/{name}" for name in names]

    def add(self, info: DeviceInfo) -> list[Qt.QWidget]:
        from taurus.qt.qtgui.display import TaurusLabel

        model = self.full(info.name)
        box = Qt.QGroupBox(info.name)
        layout = Qt.QVBoxLayout(box)
        box.health, box.reason = health_label(), TaurusLabel()
        box.health.setBgRole("none")
        box.health.setModel(f"{model}/health")
        box.health.setAlignment(Qt.Qt.AlignCenter)
        box.health.setMinimumHeight(40)
        box.reason.setModel(f"{model}/reason")
        box.reason.setWordWrap(True)
        box.reason.setBgRole("none")
        box.form = GradualForm()
        box.form.add_models(self.models(info)[len(HEAD_ATTRIBUTES):])
        for widget in (box.health, box.reason, box.form):
            layout.addWidget(widget)
        self.row.insertWidget(self.place(info.name, self.heads), box)
        self.heads[info.name] = box
        return [box]


class MonochromatorsPanel(DevicesPanel):
    """Each monochromator: wavelength, grating, filter and shutter (writable: a write starts the
    motion), what runs and how far it got, and Stop."""

    def __init__(self, window, parent=None) -> None:
        super().__init__(window, parent)
        self.boxes: dict[str, Qt.QGroupBox] = {}
        self.row = Qt.QHBoxLayout()
        layout = Qt.QVBoxLayout(self)
        layout.addLayout(self.row, 1)
        layout.addWidget(self.message)
        self.start()

    def wants(self, info: DeviceInfo) -> bool:
        return all(info.attribute(name) is not None for name in MONOCHROMATOR_ATTRIBUTES)

    def models(self, info: DeviceInfo) -> list[str]:
        names = ["State", *MONOCHROMATOR_ATTRIBUTES, *(n for n in MONOCHROMATOR_DETAILS if info.attribute(n) is not None)]
        return [f"{self.full(info.name)}/{name}" for name in names]

    def add(self, info: DeviceInfo) -> list[Qt.QWidget]:
        model = self.full(info.name)
        box = Qt.QGroupBox(info.name)
        layout = Qt.QVBoxLayout(box)
        box.form = GradualForm()
        box.form.add_models(self.models(info))
        layout.addWidget(box.form)
        commands = {command.cmd_name: command for command in info.commands}
        if "Stop" in commands:
            box.stop = CommandButton(model, commands["Stop"], self.background)
            box.stop.result.connect(lambda text, ok, device=info.name: self.say(f"{device}: {text}", ok))
            layout.addWidget(box.stop)
        self.row.insertWidget(self.place(info.name, self.boxes), box)
        self.boxes[info.name] = box
        return [box]


def is_temperature(info) -> bool:
    """An attribute in kelvin or degrees Celsius (a temperature, a set-point or a target)."""
    unit = (info.unit or "").strip().lower()
    return unit in TEMPERATURE_UNITS and info.data_format == 0  # scalars (tango.AttrDataFormat.SCALAR)


class TemperaturesPanel(DevicesPanel):
    """A trend per device of every temperature it has, its set-points beside its readings."""

    def __init__(self, window, parent=None) -> None:
        super().__init__(window, parent)
        self.trends: dict[str, Qt.QWidget] = {}
        self.boxes: dict[str, Qt.QGroupBox] = {}
        self.archive: str | None = None
        self.grid = self.scrolled_grid()
        self.background.run(lambda: archive_for(window.tango_host), self._archive_known)

    def _archive_known(self, archive: str | None, _error) -> None:
        self.archive = archive
        self.start()

    def wants(self, info: DeviceInfo) -> bool:
        return bool(self._names(info))

    def _names(self, info: DeviceInfo) -> list[str]:
        return [attribute.name for attribute in info.attributes if is_temperature(attribute)]

    def models(self, info: DeviceInfo) -> list[str]:
        return [f"{self.full(info.name)}/{name}" for name in self._names(info)]

    def add(self, info: DeviceInfo) -> list[Qt.QWidget]:
        box = Qt.QGroupBox(info.name)
        box.setMinimumHeight(260)
        layout = Qt.QVBoxLayout(box)
        trend = make_trend(self.models(info), self.archive)
        layout.addWidget(trend)
        self.trends[info.name] = trend
        self.boxes[info.name] = box
        for index, device in enumerate(sorted(self.boxes, key=self.rank)):
            self.grid.addWidget(self.boxes[device], index // 2, index % 2)
        return [box]


class TrendsPanel(Qt.QTabWidget):
    """The trends the lab file names (`tangolab.gui.trends`: title -> attributes), a tab each."""

    def __init__(self, window, parent=None) -> None:
        super().__init__(parent)
        self.trends: dict[str, Qt.QWidget] = {}
        self.keeper = Keeper(window.background, self)
        groups = window.config.data.get("tangolab", {}).get("gui", {}).get("trends", {})
        self.groups = {title: [window.watch.full(name) for name in names] for title, names in groups.items()}
        window.background.run(
            lambda: (archive_for(window.tango_host), self.keeper.prepare([m for models in self.groups.values() for m in models])),
            self._ready,
        )

    def _ready(self, result, error) -> None:
        self.archive = result[0] if error is None else None
        self._waiting = list(self.groups)
        Qt.QTimer.singleShot(0, self._add_next)

    def _add_next(self) -> None:
        """One trend per turn of the event loop: a trend takes 50-150 ms to make."""
        if self._waiting:
            title = self._waiting.pop(0)
            self.trends[title] = make_trend(self.groups[title], self.archive)
            self.addTab(self.trends[title], title)
            Qt.QTimer.singleShot(0, self._add_next)


class RelayPanel(DevicesPanel):
    """The relay's variables in a form (new ones join as they are created), and a line to Put one."""

    def __init__(self, window, parent=None) -> None:
        super().__init__(window, parent)
        self.relays: dict[str, Qt.QWidget] = {}
        self.layout_ = Qt.QVBoxLayout(self)
        self.layout_.addWidget(self.message)
        self.start()

    def wants(self, info: DeviceInfo) -> bool:
        return info.tango_class == "Relay" or (info.attribute("Variables") is not None
                                               and any(c.cmd_name == "Put" for c in info.commands))

    def models(self, info: DeviceInfo) -> list[str]:
        return [f"{self.full(info.name)}/Variables"]

    def add(self, info: DeviceInfo) -> list[Qt.QWidget]:
        model = self.full(info.name)
        box = Qt.QGroupBox(info.name)
        layout = Qt.QVBoxLayout(box)
        box.form = GradualForm()
        layout.addWidget(box.form, 1)
        put = Qt.QHBoxLayout()
        box.name, box.value = Qt.QLineEdit(), Qt.QLineEdit()
        box.name.setPlaceholderText("variable, e.g. oven_f1")
        box.value.setPlaceholderText("value")
        button = Qt.QPushButton("Put")
        button.clicked.connect(lambda: self._put(model, box))
        box.value.returnPressed.connect(button.click)
        for widget in (Qt.QLabel("new or changed:"), box.name, box.value, button):
            put.addWidget(widget)
        layout.addLayout(put)
        self.layout_.insertWidget(self.layout_.count() - 1, box, 1)
        self.relays[info.name] = box
        box.listener = VariablesListener(lambda names: self._variables(model, box, names))
        self.keeper.attributes[f"{model}/Variables".lower()].addListener(box.listener)
        return [box]

    def _variables(self, model: str, box, names: list[str]) -> None:
        models = [f"{model}/{name}" for name in names]
        if models == getattr(box, "shown", None):
            return
        box.shown = models

        def show(ready: list[str]) -> None:
            if box.shown == models:
                box.form.set_models(ready)

        self.keeper.prepare_then(models, show)

    def _put(self, model: str, box) -> None:
        import tango

        name, value = box.name.text().strip(), box.value.text().strip()
        if not name:
            self.say("Put: give the variable's name (e.g. oven_f1: the suffix says its type)", False)
            return

        def job() -> list[str]:
            proxy = tango.DeviceProxy(model)
            proxy.set_timeout_millis(5000)
            proxy.command_inout("Put", [name, value])
            # the list read back, not only its event: the panel's Variables subscription may be too
            # new to have reached the relay, and an event pushed before then is lost (ZMQ's late joiner)
            return [str(variable) for variable in proxy.read_attribute("Variables").value or ()]

        def done(names: list[str] | None, error) -> None:
            if error is None:
                self.say(f"{name} ← {value}")
                self._variables(model, box, names)
            else:
                self.say(f"Put {name} refused: {error.args[0].desc.strip() if error.args else error}", False)

        self.background.run(job, done)


class VariablesListener(Qt.QObject):
    """Turns the Taurus events of a list attribute (the relay's Variables) into a Qt signal."""

    names = Qt.pyqtSignal(list)

    def __init__(self, then: Callable[[list[str]], None]) -> None:
        super().__init__()
        self.names.connect(then, Qt.Qt.QueuedConnection)

    def eventReceived(self, src, evt_type, evt_value) -> None:
        rvalue = getattr(evt_value, "rvalue", None)
        if rvalue is not None:
            self.names.emit([str(name) for name in rvalue])



#: What makes a device a camera: a preview image to draw and an exposure to start.
CAMERA_ATTRIBUTES = ("preview", "exposureTime", "frameCounter")
CAMERA_DETAILS = ("State", "operation", "progress", "timeLeft", "exposureTime", "frames", "frameCounter",
                  "ccdTemperature", "lastFile")
CAMERA_COMMANDS = ("PowerOn", "Expose", "Abort", "PowerOff")


class CamerasPanel(DevicesPanel):
    """Each camera: its latest frame's preview (levels and colour bar), how the exposure goes,
    and its commands. The preview is redrawn from its change events, on the GUI thread."""

    def __init__(self, window, parent=None) -> None:
        super().__init__(window, parent)
        self.cameras: dict[str, Qt.QGroupBox] = {}
        self.layout_ = Qt.QVBoxLayout(self)
        self.layout_.addWidget(self.message)
        self.start()

    def wants(self, info: DeviceInfo) -> bool:
        return all(info.attribute(name) is not None for name in CAMERA_ATTRIBUTES) and any(
            command.cmd_name == "Expose" for command in info.commands)

    def models(self, info: DeviceInfo) -> list[str]:
        names = ["preview", *(name for name in CAMERA_DETAILS if name == "State" or info.attribute(name) is not None)]
        if info.attribute("lastHeader") is not None:
            names.append("lastHeader")
        return [f"{self.full(info.name)}/{name}" for name in names]

    def add(self, info: DeviceInfo) -> list[Qt.QWidget]:
        import pyqtgraph

        model = self.full(info.name)
        box = Qt.QGroupBox(info.name)
        layout = Qt.QHBoxLayout(box)
        box.view = pyqtgraph.ImageView()  # its histogram sets the levels and is the colour bar
        box.view.ui.roiBtn.hide()
        box.view.ui.menuBtn.hide()
        box.view.setMinimumSize(420, 360)
        layout.addWidget(box.view, 3)
        side = Qt.QVBoxLayout()
        box.form = GradualForm()
        box.form.add_models([name for name in self.models(info)[1:] if not name.endswith("/lastHeader")])
        side.addWidget(box.form, 1)
        box.header = Qt.QPlainTextEdit()
        box.header.setReadOnly(True)
        box.header.setLineWrapMode(Qt.QPlainTextEdit.NoWrap)
        box.header.setFont(Qt.QFontDatabase.systemFont(Qt.QFontDatabase.FixedFont))
        box.header.setPlaceholderText("The FITS header of the last file shows here")
        box.header.setToolTip("The header of the last FITS file, as written")
        side.addWidget(box.header, 1)
        commands = {command.cmd_name: command for command in info.commands}
        buttons = Qt.QHBoxLayout()
        for name in CAMERA_COMMANDS:
            if name in commands:
                button = CommandButton(model, commands[name], self.background)
                button.result.connect(lambda text, ok, device=info.name: self.say(f"{device}: {text}", ok))
                buttons.addWidget(button)
        side.addLayout(buttons)
        layout.addLayout(side, 2)
        self.layout_.insertWidget(self.place(info.name, self.cameras), box, 1)
        self.cameras[info.name] = box
        box.frames = 0
        box.listeners = [ValueListener(lambda image: self._show(box, image))]
        self.keeper.attributes[f"{model}/preview".lower()].addListener(box.listeners[0])
        if (header := f"{model}/lastHeader".lower()) in self.keeper.attributes:
            box.listeners.append(ValueListener(lambda cards: box.header.setPlainText("\n".join(map(str, cards)))))
            self.keeper.attributes[header].addListener(box.listeners[1])
        return [box]

    @staticmethod
    def _show(box, image) -> None:
        import numpy

        image = numpy.asarray(image)
        if image.ndim != 2 or not image.size:
            return
        box.view.setImage(image.T, autoLevels=box.frames == 0, autoRange=box.frames == 0, autoHistogramRange=False)
        box.frames += 1


class ValueListener(Qt.QObject):
    """Turns the Taurus events of an attribute into a Qt signal carrying its value, handled on
    the GUI thread."""

    value = Qt.pyqtSignal(object)

    def __init__(self, then: Callable[[object], None]) -> None:
        super().__init__()
        self.value.connect(then, Qt.Qt.QueuedConnection)

    def eventReceived(self, src, evt_type, evt_value) -> None:
        rvalue = getattr(evt_value, "rvalue", None)
        if rvalue is not None:
            self.value.emit(getattr(rvalue, "magnitude", rvalue))
