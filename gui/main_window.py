"""`tangolab gui`: one Taurus window for the lab — a live form of every device, a panel of the
stages, and trends.

The form lists each device's State and attributes (writable ones get an input field that
respects the attribute's limits); the stage panel puts each motion stage's position, target,
switches and Stop / Home / Abort buttons side by side; the trends plot the attributes named in
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


def stage_panel(device: str, tango_host: str):
    """A stage at a glance: state, position with its target field, velocity, switches, homed,
    and the buttons that stop or home it."""
    from taurus.external.qt import Qt
    from taurus.qt.qtgui.button import TaurusCommandButton
    from taurus.qt.qtgui.panel import TaurusForm

    box = Qt.QGroupBox(device)
    layout = Qt.QVBoxLayout(box)
    form = TaurusForm()
    form.setWithButtons(False)
    form.setModel(form_models(device, tango_host, ["Status", *STAGE_ATTRIBUTES]))
    layout.addWidget(form)
    buttons = Qt.QHBoxLayout()
    box.buttons = {}
    for command in STAGE_COMMANDS:
        button = TaurusCommandButton(command=command, text=command)
        button.setModel(f"tango://{tango_host}/{device}")
        buttons.addWidget(button)
        box.buttons[command] = button
    layout.addLayout(buttons)
    box.form = form
    return box


def build_window(config: LabConfig, tango_host: str):
    """The lab's main window; needs a running QApplication (Taurus's)."""
    from taurus.external.qt import Qt
    from taurus.qt.qtgui.panel import TaurusForm
    from taurus_pyqtgraph import TaurusTrend

    window = Qt.QMainWindow()
    window.setWindowTitle(f"tangolab — {tango_host}")
    tabs = Qt.QTabWidget()
    window.forms, window.stages = {}, {}
    stages = Qt.QWidget()
    stage_layout = Qt.QGridLayout(stages)
    for device in config.devices:
        names = attribute_names(device.name, tango_host)
        if is_stage(names):
            panel = stage_panel(device.name, tango_host)
            stage_layout.addWidget(panel, len(window.stages) // 2, len(window.stages) % 2)
            window.stages[device.name] = panel
        form = TaurusForm()
        form.setWithButtons(False)
        form.setModel(form_models(device.name, tango_host, names))
        window.forms[device.name] = form
        tabs.addTab(form, device.name)
    if window.stages:
        scroll = Qt.QScrollArea()
        scroll.setWidget(stages)
        scroll.setWidgetResizable(True)
        tabs.insertTab(0, scroll, "Stages")

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
