"""The lab's main window (see gui/main_window.py for `tangolab gui`): the device tree in a dock,
tabs of panels, the open tabs and the layout kept in QSettings."""

from __future__ import annotations

import os
from pathlib import Path

from taurus.external.qt import Qt

from tangolab.lab_config import LabConfig

from . import look
from .alarms import AlarmsPanel
from .device_panel import DevicePanel
from .device_tree import DeviceTree
from .force_view import ForceCurvesPanel
from .messages import MessagesPanel
from .panels import (
    CamerasPanel,
    HeadsPanel,
    MonochromatorsPanel,
    RelayPanel,
    StagesPanel,
    TemperaturesPanel,
    TrendsPanel,
)
from .watch import Background, LabWatch

SETTINGS_ENV = "TANGOLAB_GUI_SETTINGS"
PANELS = {
    "Temperatures": TemperaturesPanel,
    "Stages": StagesPanel,
    "CCD heads": HeadsPanel,
    "Monochromators": MonochromatorsPanel,
    "Cameras": CamerasPanel,
    "Relay": RelayPanel,
    "Messages": MessagesPanel,
    "Trends": TrendsPanel,
    "Force curves": ForceCurvesPanel,
    "Alarms": AlarmsPanel,
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



