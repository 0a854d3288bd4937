"""The force spectrometer's live view: the force–distance curve of the current pull as it grows,
and the raw channels, both from the device's decimated views (`<channel>View`, min/max pairs per
pixel, at most ten a second), so the window keeps up at any sample rate; the file a recorder
writes holds every sample.

The curve is built from successive views: each covers the last `ViewSeconds` in `ViewPixels`
pixels, so an update adds the pixels newer than the last one taken (the time since it, over a
pixel's duration), from the moment the pull started. Force and distance come from the device's
calibration properties; the distance is counted from where the piezo was nearest the surface.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from taurus.external.qt import Qt

from .models import CommandButton
from .panels import DevicesPanel
from .watch import DeviceInfo

#: What makes a device a force spectrometer here: the views of its deflection and piezo height.
VIEWS = ("deflectionView", "heightView")
COMMANDS = ("Approach", "Pull", "Rest", "Stop")
PROPERTIES = ("Sensitivity", "Stiffness", "PiezoSensitivity", "ViewSeconds", "ViewPixels")
DEFAULTS = {"Sensitivity": 50.0, "Stiffness": 50.0, "PiezoSensitivity": 200.0, "ViewSeconds": 1.0, "ViewPixels": 500}


def pixel_means(view: np.ndarray) -> np.ndarray:
    """The middle of each pixel's [min, max] of a view `[min0, max0, min1, max1, ...]`."""
    pairs = np.asarray(view, dtype=float).reshape(-1, 2)
    return pairs.mean(axis=1)


class PullCurve:
    """The force–distance points of one pull, gathered from successive views from `started`
    (monotonic s); the distance is measured from where the piezo was nearest the surface."""

    def __init__(self, calibration: dict[str, float], started: float) -> None:
        self.calibration = calibration
        self.force = np.empty(0)
        self._heights = np.empty(0)
        self._last = started

    @property
    def distance(self) -> np.ndarray:
        if not self._heights.size:
            return self._heights
        return (self._heights.max() - self._heights) * self.calibration["PiezoSensitivity"]

    def add(self, deflection_view: np.ndarray, height_view: np.ndarray, now: float) -> None:
        deflection, height = pixel_means(deflection_view), pixel_means(height_view)
        count = min(deflection.size, height.size)
        pixel_s = self.calibration["ViewSeconds"] / max(1, self.calibration["ViewPixels"])
        new = min(count, round((now - self._last) / pixel_s))
        if new <= 0:
            return
        self._last = now
        cal = self.calibration
        self.force = np.concatenate((self.force, deflection[-new:] * cal["Sensitivity"] * cal["Stiffness"]))
        self._heights = np.concatenate((self._heights, height[-new:]))


class ViewListener(Qt.QObject):
    """Turns the Taurus events of one attribute into a Qt signal on the GUI thread."""

    value = Qt.pyqtSignal(str, object)

    def __init__(self, name: str, then: Callable[[str, object], None]) -> None:
        super().__init__()
        self.name = name
        self.value.connect(then, Qt.Qt.QueuedConnection)

    def eventReceived(self, src, evt_type, evt_value) -> None:
        rvalue = getattr(evt_value, "rvalue", None)
        if rvalue is not None:
            self.value.emit(self.name, rvalue)


class ForceCurvesPanel(DevicesPanel):
    """Each force spectrometer: the force–distance curve of the current pull, the raw channels,
    its state, force and operation, and Approach / Pull / Rest / Stop."""

    def __init__(self, window, parent=None) -> None:
        super().__init__(window, parent)
        self.boxes: dict[str, Qt.QGroupBox] = {}
        self.layout_ = Qt.QVBoxLayout(self)
        self.layout_.addWidget(self.message)
        self.start()

    def wants(self, info: DeviceInfo) -> bool:
        return all(info.attribute(name) is not None for name in VIEWS) and any(
            command.cmd_name == "Pull" for command in info.commands)

    def models(self, info: DeviceInfo) -> list[str]:
        model = self.full(info.name)
        return [f"{model}/{name}" for name in ("State", "force", "operation", *self._views(info))]

    @staticmethod
    def _views(info: DeviceInfo) -> list[str]:
        return [attribute.name for attribute in info.attributes if attribute.name.endswith("View")]

    def add(self, info: DeviceInfo) -> list[Qt.QWidget]:
        import pyqtgraph
        from taurus.qt.qtgui.display import TaurusLabel

        model = self.full(info.name)
        box = Qt.QGroupBox(info.name)
        layout = Qt.QVBoxLayout(box)
        row = Qt.QHBoxLayout()
        for name in ("State", "force", "operation"):
            label = TaurusLabel()
            label.setModel(f"{model}/{name}")
            label.setMinimumWidth(120)
            row.addWidget(Qt.QLabel(name))
            row.addWidget(label)
        commands = {command.cmd_name: command for command in info.commands}
        box.buttons = {}
        for name in COMMANDS:
            if name in commands:
                button = CommandButton(model, commands[name], self.background)
                button.result.connect(lambda text, ok, device=info.name: self.say(f"{device}: {text}", ok))
                row.addWidget(button)
                box.buttons[name] = button
        layout.addLayout(row)
        plots = Qt.QHBoxLayout()
        box.curve_plot = pyqtgraph.PlotWidget(title="force–distance, current pull")
        box.curve_plot.setLabel("bottom", "distance", "nm")
        box.curve_plot.setLabel("left", "force", "pN")
        box.curve = box.curve_plot.plot(pen="y")
        box.raw_plot = pyqtgraph.PlotWidget(title="raw channels (min/max per pixel)")
        box.raw_plot.setLabel("left", "V")
        box.raw_plot.addLegend()
        box.raw = {}
        for index, name in enumerate(self._views(info)):
            box.raw[name] = box.raw_plot.plot(pen=pyqtgraph.intColor(index), name=name.removesuffix("View"))
        plots.addWidget(box.curve_plot, 1)
        plots.addWidget(box.raw_plot, 1)
        layout.addLayout(plots, 1)
        self.layout_.insertWidget(self.layout_.count() - 1, box, 1)
        self.boxes[info.name] = box
        box.values, box.operation, box.pull = {}, "", None
        box.calibration = dict(DEFAULTS)
        self.background.run(lambda: self._calibration(model), lambda found, error: found and box.calibration.update(found))
        box.listeners = [ViewListener(name, lambda name, value, box=box: self._update(box, name, value))
                         for name in ("operation", *self._views(info))]
        for listener in box.listeners:
            self.keeper.attributes[f"{model}/{listener.name}".lower()].addListener(listener)
        return [box]

    @staticmethod
    def _calibration(model: str) -> dict[str, float]:
        import tango

        found = tango.DeviceProxy(model).get_property(list(PROPERTIES))
        return {name: float(values[0]) for name, values in found.items() if len(values)}

    def _update(self, box, name: str, value) -> None:
        if name == "operation":
            if value == "Pull" and box.operation != "Pull":
                box.pull = PullCurve(box.calibration, time.monotonic())
                box.curve.setData([], [])
            box.operation = value
            return
        box.values[name] = np.asarray(getattr(value, "magnitude", value), dtype=float)  # Taurus gives a Quantity
        pairs = box.values[name].reshape(-1, 2)
        steps = np.repeat(np.arange(pairs.shape[0]), 2)
        box.raw[name].setData(steps, pairs.ravel(), connect="pairs")
        if name == "heightView" and box.pull is not None and box.operation == "Pull" and "deflectionView" in box.values:
            box.pull.add(box.values["deflectionView"], box.values["heightView"], time.monotonic())
            box.curve.setData(box.pull.distance, box.pull.force)
