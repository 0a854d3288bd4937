"""The web monitor in a real browser: Debian's chromium, headless, driven by Selenium through
Debian's chromedriver, against a real lab. Screenshots of each page go to the test's folder
(`screenshots/` under pytest's basetemp), to look at."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import tango
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tangolab.scripting import wait_until
from tests.conftest import run_lab
from tests.integration.web_lab import PASSWORD, USER, add_user, address, web_lab

CRYOCON = "lab/cryocon/1"
SERVER = "TemperatureController/lab"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"  # Debian's, of one release


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    with run_lab(web_lab(), tmp_path_factory.mktemp("web")) as lab:
        add_user(lab.run_dir)
        wait_until(lambda: lab.proxy(CRYOCON).state() in (tango.DevState.ON, tango.DevState.RUNNING), 60,
                   what="cryocon up")
        yield lab


@pytest.fixture(scope="module")
def web(lab) -> str:
    return address(lab)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        assert shutil.which(path), f"no {path}: `apt-get install {package}` (./dev.sh installs it as root)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def text_of(browser: webdriver.Chrome, selector: str) -> str:
    try:
        return browser.find_element(By.CSS_SELECTOR, selector).text
    except WebDriverException:
        return ""


def test_the_dashboard_lists_the_devices_with_their_states(browser, web, shots):
    browser.get(f"{web}/")
    for device in (CRYOCON, "lab/archiver/1", "lab/relay/1"):
        wait_until(lambda d=device: text_of(browser, f'[data-device-state="{d}"]') == "ON", 30,
                   what=f"{device} ON on the dashboard")
    assert "TEMPERATURECONTROLLER" in browser.find_element(By.CSS_SELECTOR, "section.kinds").text  # by class
    browser.save_screenshot(shots / "dashboard.png")


def test_a_value_changes_live_on_the_device_page(browser, web, shots):
    browser.get(f"{web}/devices/{CRYOCON}")
    cell = f'[data-attr="{CRYOCON}/temperaturea"]'
    wait_until(lambda: text_of(browser, cell) not in ("", "…"), 30, what="a first temperature")
    first = text_of(browser, cell)
    assert float(first) and "." in first  # the device's format, %7.3f
    wait_until(lambda: text_of(browser, cell) != first, 30, what="the temperature to change on the page")
    assert text_of(browser, f'[data-attr="{CRYOCON}/status"]')
    browser.save_screenshot(shots / "device.png")


def test_a_command_without_login_is_refused(lab, browser, web):
    browser.get(f"{web}/devices/{CRYOCON}")
    browser.find_element(By.CSS_SELECTOR, 'form.call[data-command="StartControl"] button').click()
    outcome = 'form.call[data-command="StartControl"] .outcome'
    wait_until(lambda: "needs a login" in text_of(browser, outcome), 30, what="the refusal")
    assert lab.proxy(CRYOCON).state() != tango.DevState.RUNNING


def test_a_setpoint_written_from_the_device_page_reaches_the_device(lab, browser, web, shots):
    browser.get(f"{web}/login?next=/devices/{CRYOCON}")
    browser.find_element(By.NAME, "name").send_keys(USER)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    wait_until(lambda: browser.current_url.endswith(f"/devices/{CRYOCON}"), 30, what="back on the device page")
    field = browser.find_element(By.CSS_SELECTOR, 'form.write[data-attribute="setpoint2"] input[name="value"]')
    field.send_keys("33.5")
    browser.find_element(By.CSS_SELECTOR, 'form.write[data-attribute="setpoint2"] button').click()
    wait_until(lambda: "read back 33.5" in text_of(browser, 'form.write[data-attribute="setpoint2"] .outcome'), 30,
               what="the write's read-back on the page")
    assert lab.proxy(CRYOCON).read_attribute("setpoint2").value == 33.5
    wait_until(lambda: text_of(browser, f'[data-attr="{CRYOCON}/setpoint2"]') == "33.500", 30,
               what="the new set-point live on the page")
    browser.save_screenshot(shots / "device-written.png")


def test_a_killed_server_greys_and_returns(lab, browser, web, shots):
    browser.get(f"{web}/")
    row = f'tr.device[data-device="{CRYOCON}"]'
    wait_until(lambda: text_of(browser, f'[data-device-state="{CRYOCON}"]') == "ON", 30, what="cryocon ON")
    lab.kill(SERVER, signal.SIGKILL)
    wait_until(lambda: "away" in browser.find_element(By.CSS_SELECTOR, row).get_attribute("class"), 30,
               what="the killed server's device greyed")
    assert "does not answer" in text_of(browser, f'[data-answer="{CRYOCON}"]')
    assert CRYOCON in text_of(browser, "#alarms")
    browser.save_screenshot(shots / "dashboard-server-killed.png")
    lab.start_program(SERVER)
    wait_until(lambda: "away" not in browser.find_element(By.CSS_SELECTOR, row).get_attribute("class")
               and text_of(browser, f'[data-device-state="{CRYOCON}"]') == "ON", 60, what="the device back")


def test_plots_open_with_history_and_messages_are_text(lab, browser, web, shots):
    archiver = lab.proxy("lab/archiver/1")
    archiver.command_inout("Message", ["warning", "test", "<b>door</b> open"])
    browser.get(f"{web}/plots")
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".plot canvas"), 30, what="a plot drawn")
    browser.save_screenshot(shots / "plots.png")
    browser.get(f"{web}/messages")
    wait_until(lambda: "<b>door</b> open" in text_of(browser, "#messages"), 30, what="the message, as text")
    assert not browser.find_elements(By.CSS_SELECTOR, "#messages b")
    browser.save_screenshot(shots / "messages.png")
