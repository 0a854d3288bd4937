"""`tangolab gui`: one Taurus window for the lab — a live form of every device, a panel of the
stages, and trends.

The form lists each device's State and attributes (writable ones get an input field that
respects the attribute's limits); the stage panel gives each motion stage one row: state,
position, a target field, velocity, switches, homed, and Stop / Home / Abort; the trends plot the attributes named in
the lab file's `tangolab.gui.trends` (title → attribute names). Everything comes from the lab's
JSON file and the devices themselves, nothing is hard-coded.
"""

from __future__ import annotations

import os
import sys

import tango

from tangolab.lab_config import LabConfig

HIDDEN = {"Status"}
#: What makes a device a stage: the motor vocabulary every tangolab stage shares.
STAGE_ATTRIBUTES = ("Position", "Velocity", "Limit_switches", "Homed")
STAGE_COMMANDS = ("Stop", "Home", "Abort")
#: What makes a device a CCD head: a health and its reason.
HEAD_ATTRIBUTES = ("health", "reason")
HEAD_DETAILS = ("temperature", "target", "pressure", "flow", "peltierRunning", "interlockTripped")
#: Health colours: Taurus paints WARNING and ALARM qualities in the same orange.
HEALTH_COLOURS = {"OK": "#3c3", "WARNING": "#fd0", "ERROR": "#e22"}


def attribute_names(device: str, tango_host: str) -> list[str]:
    """The device's attributes in declaration order; just Status when its server is down."""
    try:
        proxy = tango.DeviceProxy(f"tango://{tango_host}/{device}")
        return [name for name in proxy.get_attribute_list() if name not in HIDDEN and name != "State"]
    except tango.DevFailed:  # its server is down: the form shows it unreachable, the rest works
        return ["Status"]


def form_models(device: str, tango_host: str, names: list[str] | None = None) -> list[str]:
    """State first, then the attributes, as full Taurus names."""
    names = attribute_names(device, tango_host) if names is None else names
    return [f"tango://{tango_host}/{device}/{name}" for name in ["State", *names]]


def is_stage(names: list[str]) -> bool:
    return all(name in names for name in STAGE_ATTRIBUTES)


def stage_row(grid, row: int, device: str, tango_host: str) -> dict:
    """One stage on one row of the stage panel: state, position, a target field that moves it,
    velocity, its home / upper / lower switches, homed, and Stop / Home / Abort."""
    from taurus.external.qt import Qt
    from taurus.qt.qtgui.button import TaurusCommandButton
    from taurus.qt.qtgui.display import TaurusLabel, TaurusLed
    from taurus.qt.qtgui.input import TaurusValueLineEdit

    model = f"tango://{tango_host}/{device}"
    widgets: dict = {"state": TaurusLed(), "position": TaurusLabel(), "target": TaurusValueLineEdit(),
                     "velocity": TaurusLabel(), "homed": TaurusLed()}
    widgets["state"].setModel(f"{model}/State")
    widgets["position"].setModel(f"{model}/Position")
    widgets["target"].setModel(f"{model}/Position")
    widgets["velocity"].setModel(f"{model}/Velocity")
    widgets["homed"].setModel(f"{model}/Homed")
    for key in ("position", "target", "velocity"):
        widgets[key].setMinimumWidth(130)
    switches = Qt.QHBoxLayout()
    for index, name in enumerate(("home", "upper", "lower")):
        led = TaurusLed()
        led.setModel(f"{model}/Limit_switches")
        led.setModelIndex(index)
        led.setOnColor("orange" if index else "green")
        led.setToolTip(f"{name} switch")
        switches.addWidget(led)
        widgets[f"{name} switch"] = led
    grid.addWidget(Qt.QLabel(device), row, 0)
    for column, key in enumerate(("state", "position", "target", "velocity"), start=1):
        grid.addWidget(widgets[key], row, column)
    grid.addLayout(switches, row, 5)
    grid.addWidget(widgets["homed"], row, 6)
    for column, command in enumerate(STAGE_COMMANDS, start=7):
        button = TaurusCommandButton(command=command, text=command)
        button.setModel(model)
        grid.addWidget(button, row, column)
        widgets[command] = button
    return widgets


def is_head(names: list[str]) -> bool:
    return all(name in names for name in HEAD_ATTRIBUTES)


def health_label():
    """A Taurus label of a health (OK / WARNING / ERROR) painted by what it says, as it updates."""
    from taurus.qt.qtgui.display import TaurusLabel

    class HealthLabel(TaurusLabel):
        def setText_(self, text: str) -> None:
            super().setText_(text)
            colour = HEALTH_COLOURS.get(text.strip(), "#bbb")
            self.setStyleSheet(f"background: {colour}; font-size: 16pt; font-weight: bold")

    return HealthLabel()


def head_panel(device: str, tango_host: str):
    """A CCD head: its health in colour, the reason in words, then what it watches."""
    from taurus.external.qt import Qt
    from taurus.qt.qtgui.display import TaurusLabel
    from taurus.qt.qtgui.panel import TaurusForm

    box = Qt.QGroupBox(device)
    layout = Qt.QVBoxLayout(box)
    box.health, box.reason = health_label(), TaurusLabel()
    box.health.setBgRole("none")
    box.health.setModel(f"tango://{tango_host}/{device}/health")
    box.health.setAlignment(Qt.Qt.AlignCenter)
    box.health.setMinimumHeight(40)
    box.reason.setModel(f"tango://{tango_host}/{device}/reason")
    box.reason.setWordWrap(True)
    box.reason.setBgRole("none")
    form = TaurusForm()
    form.setWithButtons(False)
    form.setModel(form_models(device, tango_host, list(HEAD_DETAILS)))
    for widget in (box.health, box.reason, form):
        layout.addWidget(widget)
    return box


def build_window(config: LabConfig, tango_host: str):
    """The lab's main window; needs a running QApplication (Taurus's)."""
    from taurus.external.qt import Qt
    from taurus.qt.qtgui.panel import TaurusForm
    from taurus_pyqtgraph import TaurusTrend

    window = Qt.QMainWindow()
    window.setWindowTitle(f"tangolab — {tango_host}")
    tabs = Qt.QTabWidget()
    window.forms, window.stages, window.heads = {}, {}, {}
    heads = Qt.QWidget()
    head_layout = Qt.QHBoxLayout(heads)
    stages = Qt.QWidget()
    stage_grid = Qt.QGridLayout(stages)
    for column, title in enumerate(
        ("stage", "state", "position (mm)", "target", "velocity", "home  upper  lower", "homed"), start=0
    ):
        stage_grid.addWidget(Qt.QLabel(f"<b>{title}</b>"), 0, column)
    for device in config.devices:
        names = attribute_names(device.name, tango_host)
        if is_stage(names):
            window.stages[device.name] = stage_row(stage_grid, len(window.stages) + 1, device.name, tango_host)
        if is_head(names):
            window.heads[device.name] = head_panel(device.name, tango_host)
            head_layout.addWidget(window.heads[device.name])
        form = TaurusForm()
        form.setWithButtons(False)
        form.setModel(form_models(device.name, tango_host, names))
        window.forms[device.name] = form
        tabs.addTab(form, device.name)
    if window.stages:
        stage_grid.setRowStretch(len(window.stages) + 1, 1)
        scroll = Qt.QScrollArea()
        scroll.setWidget(stages)
        scroll.setWidgetResizable(True)
        tabs.insertTab(0, scroll, "Stages")
    if window.heads:
        tabs.insertTab(0, heads, "CCD heads")
    tabs.setCurrentIndex(0)

    trend_tabs = Qt.QTabWidget()
    window.trends = {}
    for title, names in config.data.get("tangolab", {}).get("gui", {}).get("trends", {}).items():
        trend = TaurusTrend()
        trend.setModel([f"tango://{tango_host}/{name}" for name in names])
        window.trends[title] = trend
        trend_tabs.addTab(trend, title)

    splitter = Qt.QSplitter(Qt.Qt.Vertical)
    splitter.addWidget(tabs)
    splitter.addWidget(trend_tabs)
    splitter.setSizes([550, 350])
    window.setCentralWidget(splitter)
    window.resize(1000, 900)
    return window


def run(config: LabConfig, tango_host: str | None = None) -> int:
    from taurus.qt.qtgui.application import TaurusApplication

    tango_host = tango_host or os.environ.get("TANGO_HOST", "localhost:10000")
    app = TaurusApplication(sys.argv[:1], cmd_line_parser=None, app_name="tangolab")
    window = build_window(config, tango_host)
    window.show()
    return app.exec_()
