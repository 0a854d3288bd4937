"""`tangolab gui`: one Taurus window for the whole lab.

On the left, every device of the Tango database grouped by class, with state LEDs (gui/device_tree.py);
on the right, tabs: the lab's dedicated panels (temperatures, stages, CCD heads, relay variables,
lab messages, the lab file's trends) and a panel per device opened from the tree
(gui/device_panel.py). Nothing reads, writes or runs a command on the GUI thread where it could
block (gui/models.py), and a device whose server dies or hangs is greyed with the reason within
a second or two (gui/watch.py). The open tabs, the current one and the window's layout are
remembered between runs (QSettings: $TANGOLAB_GUI_SETTINGS, else the user's Qt settings).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from taurus.external.qt import Qt

from tangolab.lab_config import LabConfig

from . import look
from .device_panel import DevicePanel
from .device_tree import DeviceTree
from .messages import MessagesPanel
from .panels import HeadsPanel, RelayPanel, StagesPanel, TemperaturesPanel, TrendsPanel
from .watch import Background, LabWatch

SETTINGS_ENV = "TANGOLAB_GUI_SETTINGS"
PANELS = {
    "Temperatures": TemperaturesPanel,
    "Stages": StagesPanel,
    "CCD heads": HeadsPanel,
    "Relay": RelayPanel,
    "Messages": MessagesPanel,
    "Trends": TrendsPanel,
}
DEFAULT_OPEN = ["panel:Temperatures", "panel:Stages", "panel:CCD heads", "panel:Messages"]


def settings_for(path: str | Path | None) -> Qt.QSettings:
    path = path or os.environ.get(SETTINGS_ENV)
    if path:
        return Qt.QSettings(str(path), Qt.QSettings.IniFormat)
    return Qt.QSettings("tangolab", "gui")


class MainWindow(Qt.QMainWindow):
    def __init__(self, config: LabConfig, tango_host: str, settings_path: str | Path | None = None) -> None:
        look.apply()
        super().__init__()
        self.config, self.tango_host = config, tango_host
        self.setWindowTitle(f"tangolab — {tango_host}")
        self.setObjectName("tangolab")
        self.settings = settings_for(settings_path)
        self.watch = LabWatch(tango_host, parent=self)
        self.background = Background(parent=self)
        self.panels: dict[str, Qt.QWidget] = {}  # "panel:<title>" or "device:<name>" -> open tab
        self.tabs = Qt.QTabWidget()
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(True)
        self.tabs.tabCloseRequested.connect(self._close_tab)
        self.setCentralWidget(self.tabs)
        lab_order = [(device.name, device.tango_class) for device in config.devices]
        self.tree = DeviceTree(self.watch, lab_order, list(PANELS))
        self.tree.open_device.connect(self.open_device)
        self.tree.open_panel.connect(self.open_panel)
        dock = Qt.QDockWidget("Devices", self)
        dock.setObjectName("devices")
        dock.setWidget(self.tree)
        self.addDockWidget(Qt.Qt.LeftDockWidgetArea, dock)
        self.statusBar()
        self.resize(1300, 900)
        self._restore()
        self.watch.start()

    # -- panels ---------------------------------------------------------------------------

    def open_device(self, device: str) -> Qt.QWidget:
        return self._open(f"device:{device.lower()}", device.lower(), lambda: DevicePanel(
            device.lower(), self.watch, self.background))

    def open_panel(self, title: str) -> Qt.QWidget:
        return self._open(f"panel:{title}", title, lambda: PANELS[title](self))

    def _open(self, key: str, title: str, make) -> Qt.QWidget:
        if key not in self.panels:
            self.panels[key] = make()
            self.tabs.addTab(self.panels[key], title)
        self.tabs.setCurrentWidget(self.panels[key])
        return self.panels[key]

    def close_panel(self, key: str) -> None:
        """Close an open tab by its key ("device:lab/x/1", "panel:Stages")."""
        if (widget := self.panels.pop(key, None)) is not None:
            self.tabs.removeTab(self.tabs.indexOf(widget))
            widget.deleteLater()

    def _close_tab(self, index: int) -> None:
        widget = self.tabs.widget(index)
        self.close_panel(next(key for key, panel in self.panels.items() if panel is widget))

    # -- remembered between runs ------------------------------------------------------------

    def open_keys(self) -> list[str]:
        order = {self.tabs.widget(index): index for index in range(self.tabs.count())}
        return sorted(self.panels, key=lambda key: order.get(self.panels[key], 0))

    def save_settings(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("state", self.saveState())
        self.settings.setValue("open", self.open_keys())
        current = self.tabs.currentWidget()
        self.settings.setValue("current", next((k for k, p in self.panels.items() if p is current), ""))
        self.settings.sync()

    def _restore(self) -> None:
        if (geometry := self.settings.value("geometry")) is not None:
            self.restoreGeometry(geometry)
        if (state := self.settings.value("state")) is not None:
            self.restoreState(state)
        opened = self.settings.value("open")
        opened = DEFAULT_OPEN if opened is None else ([opened] if isinstance(opened, str) else list(opened))
        for key in opened:
            kind, _, name = key.partition(":")
            if kind == "panel" and name in PANELS:
                self.open_panel(name)
            elif kind == "device" and name:
                self.open_device(name)
        current = self.settings.value("current") or ""
        if current in self.panels:
            self.tabs.setCurrentWidget(self.panels[current])
        elif self.tabs.count():
            self.tabs.setCurrentIndex(0)

    def closeEvent(self, event) -> None:
        self.save_settings()
        self.shut_down()
        super().closeEvent(event)

    def shut_down(self) -> None:
        """Stop the watch threads and the workers (the window stays as it is)."""
        self.watch.stop()
        self.background.close()



def build_window(config: LabConfig, tango_host: str, settings_path: str | Path | None = None) -> MainWindow:
    """The lab's main window; needs a running QApplication (Taurus's)."""
    return MainWindow(config, tango_host, settings_path)


def display_problem(environ: dict[str, str] | None = None) -> str | None:
    """Why Qt could not open a window here, in one line; None if it can."""
    environ = dict(os.environ if environ is None else environ)
    platform = environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None  # offscreen, wayland, vnc...: the user chose
    if not sys.platform.startswith("linux"):
        return None
    if not environ.get("DISPLAY"):
        if environ.get("WAYLAND_DISPLAY"):
            return None
        return ("no display: DISPLAY is not set (run it on a desktop, through ssh -X, or under xvfb-run; "
                "QT_QPA_PLATFORM=offscreen renders without showing anything)")
    probe = subprocess.run(  # Qt aborts the whole process when its xcb plugin cannot start: ask a child
        [sys.executable, "-c", "from PyQt5.QtWidgets import QApplication; QApplication([])"],
        check=False, capture_output=True, text=True, timeout=30, env=environ,
    )
    if probe.returncode == 0:
        return None
    lines = [line.strip() for line in probe.stderr.splitlines() if line.strip()]
    hint = next((line for line in lines if "xcb" in line.lower() or "display" in line.lower()), lines[0] if lines else "")
    missing = "" if "could not connect" in hint.lower() else (
        " (Qt's xcb plugin needs libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 "
        "libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0: ./dev.sh installs them)")
    return f"cannot open the display {environ['DISPLAY']}: {hint}{missing}"


def run(config: LabConfig, tango_host: str | None = None, settings_path: str | Path | None = None) -> int:
    if problem := display_problem():
        print(f"tangolab gui: {problem}", file=sys.stderr)
        return 2
    from taurus.qt.qtgui.application import TaurusApplication

    tango_host = tango_host or os.environ.get("TANGO_HOST", "localhost:10000")
    app = TaurusApplication(sys.argv[:1], cmd_line_parser=None, app_name="tangolab")
    window = build_window(config, tango_host, settings_path)
    window.show()
    return app.exec_()
