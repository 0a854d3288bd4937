"""The Taurus window of the lab, rendered offscreen against the running demo lab."""

from __future__ import annotations

import re

import pytest
import tango

from gui.main_window import build_window
from tangolab.scripting import wait_until

NUMBER = re.compile(r"-?\d+\.\d+")


@pytest.fixture(scope="session")
def qapp_cls():
    from taurus.qt.qtgui.application import TaurusApplication

    return TaurusApplication


@pytest.fixture
def window(lab, qtbot):
    proxy = lab.proxy("lab/cryocon/1")
    wait_until(lambda: proxy.state() in (tango.DevState.ON, tango.DevState.RUNNING), 60, what="cryocon up")
    window = build_window(lab.config, lab.tango_host)
    qtbot.addWidget(window)
    window.show()
    return window


def value_widget(form, attribute: str):
    for item in form:
        if item.getModelName().lower().endswith(f"/{attribute.lower()}"):
            return item
    raise AssertionError(f"{attribute} is not on the form")


def test_form_shows_live_temperatures_and_state(window, qtbot, tmp_path):
    form = window.forms["lab/cryocon/1"]
    temperature = value_widget(form, "temperatureA").readWidget()
    qtbot.waitUntil(lambda: NUMBER.search(temperature.text()) is not None, timeout=60_000)
    first = float(NUMBER.search(temperature.text()).group())
    assert 1.0 < first < 400.0
    qtbot.waitUntil(lambda: float(NUMBER.search(temperature.text()).group()) != first, timeout=60_000)
    led = value_widget(form, "State").readWidget()  # a LED coloured by the state it shows
    qtbot.waitUntil(lambda: led.getModelValueObj().rvalue in (tango.DevState.ON, tango.DevState.RUNNING),
                    timeout=30_000)
    window.grab().save(str(tmp_path / "main_window.png"))


def test_setpoint_written_from_the_form_reaches_the_device(window, lab, qtbot):
    field = value_widget(window.forms["lab/cryocon/1"], "setpoint1").writeWidget()
    field.setValue(42.25)
    field.writeValue(forceApply=True)
    proxy = lab.proxy("lab/cryocon/1")
    qtbot.waitUntil(lambda: proxy.read_attribute("setpoint1").value == pytest.approx(42.25), timeout=20_000)


def test_trend_plots_the_temperatures(window, qtbot):
    from taurus_pyqtgraph.taurustrendset import TrendCurve

    def curves() -> list:
        return [item for item in window.trends["Temperatures"].getPlotItem().listDataItems() if isinstance(item, TrendCurve)]

    def fewest_points() -> int:
        return min((0 if c.xData is None else len(c.xData) for c in curves()), default=0)

    qtbot.waitUntil(lambda: len(curves()) == 4 and fewest_points() >= 3, timeout=60_000)


def test_the_stage_panel_shows_every_stage_and_its_buttons_drive_it(window, lab, qtbot):
    assert {"lab/stage/1", "lab/slide/1", "lab/arm/1", "lab/arm/2", "lab/arm/3"} <= set(window.stages)
    row = window.stages["lab/stage/1"]
    qtbot.waitUntil(lambda: NUMBER.search(row["position"].text()) is not None, timeout=60_000)
    stage = lab.proxy("lab/stage/1")
    row["Home"].click()
    qtbot.waitUntil(lambda: stage.read_attribute("Homed").value, timeout=60_000)
    qtbot.waitUntil(lambda: row["homed"].getModelValueObj().rvalue, timeout=30_000)


def test_each_ccd_head_shows_its_health_in_colour_and_words(window, qtbot):
    from gui.main_window import HEALTH_COLOURS

    assert {"lab/ccd/1", "lab/ccd/2"} <= set(window.heads)
    panel = window.heads["lab/ccd/1"]
    qtbot.waitUntil(lambda: panel.health.text().strip() in HEALTH_COLOURS, timeout=60_000)
    qtbot.waitUntil(lambda: HEALTH_COLOURS[panel.health.text().strip()] in panel.health.styleSheet(), timeout=10_000)
