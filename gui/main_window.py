"""`tangolab gui`: one Taurus window for the lab — a live form of every device and a temperature trend.

The form lists each device's State and attributes (writable ones get an input field that
respects the attribute's limits); the trend plots the attributes named in the lab file's
`tangolab.gui.trend` list. Everything comes from the lab's JSON file, nothing is hard-coded.
"""

from __future__ import annotations

import os
import sys

import tango

from tangolab.lab_config import LabConfig

HIDDEN = {"Status"}


def form_models(device: str, tango_host: str) -> list[str]:
    """State first, then the device's attributes in declaration order, as full Taurus names."""
    try:
        proxy = tango.DeviceProxy(f"tango://{tango_host}/{device}")
        names = [name for name in proxy.get_attribute_list() if name not in HIDDEN and name != "State"]
    except tango.DevFailed:  # its server is down: the form shows it unreachable, the rest works
        names = ["Status"]
    return [f"tango://{tango_host}/{device}/{name}" for name in ["State", *names]]


def build_window(config: LabConfig, tango_host: str):
    """The lab's main window; needs a running QApplication (Taurus's)."""
    from taurus.external.qt import Qt
    from taurus.qt.qtgui.panel import TaurusForm
    from taurus_pyqtgraph import TaurusTrend

    window = Qt.QMainWindow()
    window.setWindowTitle(f"tangolab — {tango_host}")
    tabs = Qt.QTabWidget()
    window.forms = {}
    for device in config.devices:
        form = TaurusForm()
        form.setWithButtons(False)
        form.setModel(form_models(device.name, tango_host))
        window.forms[device.name] = form
        tabs.addTab(form, device.name)

    trend = TaurusTrend()
    trended = config.data.get("tangolab", {}).get("gui", {}).get("trend", [])
    trend.setModel([f"tango://{tango_host}/{name}" for name in trended])
    window.trend = trend

    splitter = Qt.QSplitter(Qt.Qt.Vertical)
    splitter.addWidget(tabs)
    splitter.addWidget(trend)
    splitter.setSizes([500, 350])
    window.setCentralWidget(splitter)
    window.resize(900, 850)
    return window


def run(config: LabConfig, tango_host: str | None = None) -> int:
    from taurus.qt.qtgui.application import TaurusApplication

    tango_host = tango_host or os.environ.get("TANGO_HOST", "localhost:10000")
    app = TaurusApplication(sys.argv[:1], cmd_line_parser=None, app_name="tangolab")
    window = build_window(config, tango_host)
    window.show()
    return app.exec_()
