"""The web monitor as a service of a real lab (supervisor, database, cryocon simulator and server,
archiver, relay), one lab for the module: first in a real browser (Debian's chromium, headless,
driven by Selenium through Debian's chromedriver; screenshots of each page go to `screenshots/`
under pytest's basetemp, to look at), then through its HTTP API as scripts use it: the README's
curl lines as written, logins and their refusals, one subscription per attribute whatever the
number of browsers."""

from __future__ import annotations

import base64
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import tango
from fastapi.testclient import TestClient
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tangolab.scripting import wait_until
from tangolab.web.app import create_app
from tangolab.web.settings import WebSettings
from tests.conftest import run_lab
from tests.integration.web_lab import PASSWORD, SETPOINT_ALARM, USER, add_user, address, call, web_lab

README = Path(__file__).resolve().parents[2] / "README.md"
CRYOCON = "lab/cryocon/1"
CAMERA, AFM = "lab/camera/1", "lab/afm/1"
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


def test_an_alarm_shows_on_the_dashboard_and_is_acknowledged_on_the_alarms_page_with_a_reason(lab, browser, web,
                                                                                                 shots):
    cryocon = lab.proxy(CRYOCON)  # the browser is logged in (the test before)
    before = cryocon.read_attribute("setpoint1").value
    row = f'tr[data-alarm="{SETPOINT_ALARM}"]'
    browser.get(f"{web}/alarms")
    wait_until(lambda: "NORM" in text_of(browser, row), 60, what="the alarm listed, NORM")
    cryocon.write_attribute("setpoint1", 330.0)
    try:
        wait_until(lambda: "UNACK" in text_of(browser, row), 30, what="the alarm UNACK on the page")
        assert "loop 1 set-point above 320 K" in text_of(browser, row)
        browser.find_element(By.CSS_SELECTOR, f'{row} button[data-action="acknowledge"]').click()
        wait_until(lambda: "say why" in text_of(browser, "#alarm-outcome"), 30, what="an acknowledgement without why refused")
        assert "UNACK" in text_of(browser, row)
        browser.find_element(By.CSS_SELECTOR, '#why input[name="why"]').send_keys("warming on purpose")
        browser.find_element(By.CSS_SELECTOR, f'{row} button[data-action="acknowledge"]').click()
        wait_until(lambda: "ACKED" in text_of(browser, row), 30, what="the alarm ACKED on the page")
        browser.save_screenshot(shots / "alarms.png")
        browser.get(f"{web}/")
        wait_until(lambda: SETPOINT_ALARM in text_of(browser, "#rule-alarms"), 30, what="the alarm on the dashboard")
        assert "ACKED critical" in text_of(browser, "#rule-alarms")
        browser.save_screenshot(shots / "dashboard-alarm.png")
    finally:
        cryocon.write_attribute("setpoint1", before)
    wait_until(lambda: _alarm_state(web, SETPOINT_ALARM) == "NORM", 60, what="the alarm NORM again")
    wait_until(lambda: not text_of(browser, "#rule-alarms"), 30, what="the alarm gone from the dashboard")
    status, said = call("GET", f"{web}/api/messages?source=web:{USER}&since=1h")
    assert status == 200 and any(f"acknowledge alarm {SETPOINT_ALARM}: warming on purpose" in m["text"]
                                 for m in said), said


def test_the_camera_preview_and_the_force_curve_are_drawn(lab, browser, web, shots):
    camera, afm = lab.proxy(CAMERA), lab.proxy(AFM)
    wait_until(lambda: camera.state() in (tango.DevState.ON, tango.DevState.OFF), 60, what="the camera connected")
    if camera.state() == tango.DevState.OFF:
        camera.PowerOn()
        wait_until(lambda: camera.state() == tango.DevState.ON, 30, what="the camera ON")
    browser.get(f"{web}/devices/{CAMERA}")
    camera.exposureTime = 0.2
    camera.Expose()
    info = f'[data-info="{CAMERA}/preview"]'
    wait_until(lambda: "pixels" in text_of(browser, info), 60, what="the preview drawn")
    assert "image: not on the page" in browser.find_element(By.CSS_SELECTOR, "table.attributes").text  # the frame
    greys = browser.execute_script(
        "const c = document.querySelector('canvas.image'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "const g = new Set(); for (let i = 0; i < d.length; i += 4) g.add(d[i]); return g.size;")
    assert greys > 10, f"a flat picture: {greys} grey levels"  # a dark frame's noise spans the grey scale
    browser.save_screenshot(shots / "camera.png")

    wait_until(lambda: afm.state() == tango.DevState.ON, 60, what="the force spectrometer ON")
    browser.get(f"{web}/devices/{AFM}")
    afm.pullDistance = 300.0
    for command in ("Approach", "Pull"):
        afm.command_inout(command)
        wait_until(lambda: afm.operation == "", 60, what=f"{command} ended")
    script = "return document.getElementById('force-curve').dataset.points || '0'"
    wait_until(lambda: int(browser.execute_script(script)) > 100, 30, what="the force curve drawn")
    browser.save_screenshot(shots / "force-curve.png")


def test_a_killed_server_greys_and_returns(lab, browser, web, shots):
    browser.get(f"{web}/")
    row = f'tr.device[data-device="{CRYOCON}"]'
    wait_until(lambda: text_of(browser, f'[data-device-state="{CRYOCON}"]') == "ON", 30, what="cryocon ON")
    killed = time.monotonic()
    lab.kill(SERVER, signal.SIGKILL)
    wait_until(lambda: "away" in browser.find_element(By.CSS_SELECTOR, row).get_attribute("class"), 30,
               interval=0.05, what="the killed server's device greyed")
    print(f"greyed {time.monotonic() - killed:.2f} s after the kill")  # the issue asks for 2 s: -s shows it
    assert "does not answer" in text_of(browser, f'[data-answer="{CRYOCON}"]')
    assert CRYOCON in text_of(browser, "#alarms")
    status, answer = call("GET", f"{web}/api/devices/{CRYOCON}/attributes?names=temperatureA")
    assert status == 503 and "does not answer" in answer["message"], answer
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


# -- the HTTP API ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def token(web) -> str:
    status, answer = call("POST", f"{web}/api/token", headers={"Authorization": _basic(USER, PASSWORD)})
    assert status == 200, answer
    return answer["token"]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_the_supervisor_runs_the_web_monitor_and_status_prints_its_address(lab, web):
    assert {p["name"]: p["phase"] for p in lab.programs()}["web"] == "running"
    status = subprocess.run([str(Path(sys.executable).parent / "tangolab"), "status",
                             "--run-dir", str(lab.run_dir)], capture_output=True, text=True, timeout=60, check=False)
    assert f"export TANGO_HOST={lab.tango_host}\nweb monitor: {web}/" in status.stdout, status.stdout + status.stderr
    assert web.startswith("http://localhost:")  # a loopback lab: a loopback monitor


def test_reads_give_value_quality_time_and_unit(web):
    status, readings = call("GET", f"{web}/api/devices/{CRYOCON}/attributes?names=temperatureA,loopType1")
    assert status == 200, readings
    temperature, loop = readings
    assert (temperature["attribute"], temperature["quality"], temperature["unit"]) == (
        f"{CRYOCON}/temperatureA", "VALID", "K")
    assert 1.0 < temperature["value"] < 400.0 and temperature["time"] > 1.7e9
    assert loop["value"] in ("OFF", "MAN", "PID", "TABLE", "RAMPP", "RAMPT")  # an enumeration by its label
    status, described = call("GET", f"{web}/api/devices/{CRYOCON}")
    setpoint = next(a for a in described["attributes"] if a["name"] == "setpoint1")
    assert (setpoint["writable"], setpoint["min_value"], setpoint["max_value"]) == (True, "0.0", "1000.0")
    assert "StartControl" in [c["name"] for c in described["commands"]]


def test_errors_carry_the_status_a_client_expects(web, token):
    status, answer = call("GET", f"{web}/api/devices/lab/nothing/9/attributes?names=x")
    assert (status, answer["reason"]) == (404, "NoSuchDevice")
    status, answer = call("GET", f"{web}/api/devices/{CRYOCON}/attributes?names=nothing")
    assert status == 404 and "temperatureA" in answer["message"]  # says what it has
    status, answer = call("PUT", f"{web}/api/devices/{CRYOCON}/attributes/temperatureA", {"value": 3}, _bearer(token))
    assert (status, answer["reason"]) == (409, "ReadOnly")
    status, answer = call("POST", f"{web}/api/devices/{CRYOCON}/commands/Explode", {}, _bearer(token))
    assert status == 404 and "StartControl" in answer["message"]
    status, answer = call("PUT", f"{web}/api/devices/{CRYOCON}/attributes/loopType1", {"value": "warp"}, _bearer(token))
    assert status == 422 and "PID" in answer["message"]  # says what is allowed


def test_a_value_out_of_range_is_refused_with_the_range_and_nothing_changes(lab, web, token):
    before = lab.proxy(CRYOCON).read_attribute("setpoint2").value
    status, answer = call("PUT", f"{web}/api/devices/{CRYOCON}/attributes/setpoint2", {"value": 5000},
                          _bearer(token))
    assert status == 422, answer
    assert "1000" in answer["message"] and answer["reason"] == "API_WAttrOutsideLimit"
    assert lab.proxy(CRYOCON).read_attribute("setpoint2").value == before


def test_a_write_without_login_or_with_a_forged_csrf_token_is_refused_and_changes_nothing(lab, web):
    before = lab.proxy(CRYOCON).read_attribute("setpoint2").value
    target = f"{web}/api/devices/{CRYOCON}/attributes/setpoint2"
    status, answer = call("PUT", target, {"value": before + 1})
    assert (status, answer["reason"]) == (401, "LoginNeeded")
    status, answer = call("PUT", target, {"value": before + 1}, _bearer("forged"))
    assert (status, answer["reason"]) == (401, "BadToken")
    cookie = _login(web)
    status, answer = call("PUT", target, {"value": before + 1}, {"Cookie": cookie, "X-CSRF-Token": "forged"})
    assert (status, answer["reason"]) == (403, "BadCsrfToken")
    status, answer = call("PUT", target, {"value": before + 1}, {"Cookie": cookie})
    assert (status, answer["reason"]) == (403, "BadCsrfToken")
    assert lab.proxy(CRYOCON).read_attribute("setpoint2").value == before
    status, answer = call("POST", f"{web}/api/devices/{CRYOCON}/commands/StartControl", {})
    assert status == 401


def test_a_page_session_writes_with_its_csrf_token_and_the_lab_log_names_the_user(lab, web):
    cookie = _login(web)
    with urllib.request.urlopen(urllib.request.Request(f"{web}/devices/{CRYOCON}", headers={"Cookie": cookie}),
                                timeout=30) as page:
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.read().decode())[1]
    status, reading = call("PUT", f"{web}/api/devices/{CRYOCON}/attributes/setpoint2", {"value": 42.5},
                           {"Cookie": cookie, "X-CSRF-Token": csrf})
    assert (status, reading["value"]) == (200, 42.5)  # read back
    assert lab.proxy(CRYOCON).read_attribute("setpoint2").value == 42.5
    log = (lab.run_dir / "log" / "lab.log").read_text()
    assert f"web: {USER}: wrote 42.5 to {CRYOCON}/setpoint2" in log


def test_a_wrong_password_gets_no_token(web):
    status, answer = call("POST", f"{web}/api/token", headers={"Authorization": _basic(USER, "guess")})
    assert (status, answer["reason"]) == (401, "BadLogin")


def test_the_command_line_page_shows_device_strings_as_text(web):
    cookie = _login(web)
    with urllib.request.urlopen(urllib.request.Request(f"{web}/console", headers={"Cookie": cookie}),
                                timeout=30) as page:
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.read().decode())[1]
    body = urllib.parse.urlencode({"line": "<b>bold</b>"}).encode()  # no verb: answered at once, the line echoed
    request = urllib.request.Request(f"{web}/console", body, headers={"Cookie": cookie, "X-CSRF-Token": csrf})
    with urllib.request.urlopen(request, timeout=60) as reply:
        html = reply.read().decode()
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>" not in html


def test_every_curl_line_of_the_readme_works_as_written(lab, web):
    lines = _readme_api_lines()
    assert len(lines) >= 12
    script = []
    for line in lines:  # run as written, in one shell; each call's output, HTTP status and exit status marked
        if line.startswith("WEB="):
            script.append(f"WEB={web}")
        elif line.startswith("TOKEN="):
            script.append(line)
        elif "/api/stream" in line:
            script.append(f"{line.replace('curl -sN', 'curl -sN --max-time 3')}; s=$?; echo; echo \"@@ $s\"")
        else:
            script.append(f"{line} -w '\\n%{{http_code}}'; s=$?; echo; echo \"@@ $s\"")
    done = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True, timeout=120, check=False)
    calls = [line for line in lines if line.startswith("curl")]
    parts = re.split(r"^@@ (\d+)$", done.stdout, flags=re.MULTILINE)  # output, exit status, output, ...
    assert len(parts) == 2 * len(calls) + 1, done.stdout + done.stderr
    for line, body, exit_status in zip(calls, parts[0::2], map(int, parts[1::2])):
        body = body.strip()
        if "/api/stream" in line:
            assert exit_status == 28, done.stderr  # curl's time-out: the stream went on until then
            updates = [u for x in body.splitlines() if x.startswith("data: ") for u in json.loads(x[len("data: "):])]
            assert {u["name"] for u in updates} >= {f"{CRYOCON}/temperaturea", f"{CRYOCON}/state"}, body
            continue
        answer, _, code = body.rpartition("\n")
        assert (exit_status, code) == (0, "200"), f"{line}: {code} {answer} {done.stderr}"
        json.loads(answer)
    assert lab.proxy(CRYOCON).read_attribute("setpoint1").value == 80.0
    assert lab.proxy("lab/relay/1").read_attribute("beam_f1").value == 3.5


def test_one_subscription_per_attribute_whatever_the_number_of_browsers(web):
    attribute = f"{CRYOCON}/temperaturec"
    before = call("GET", f"{web}/api/health")[1]["subscriptions"]
    streams = [_Stream(f"{web}/api/stream?attributes={attribute},{CRYOCON}/heaterpower1") for _ in range(5)]
    try:
        for stream in streams:
            wait_until(lambda s=stream: attribute in s.names, 30, what="every browser's first value")
        assert call("GET", f"{web}/api/health")[1]["subscriptions"] == before + 2  # not 10
    finally:
        for stream in streams:
            stream.close()
    wait_until(lambda: call("GET", f"{web}/api/health")[1]["subscriptions"] == before, 30,
               what="nobody watching: the subscriptions end")


def test_alarm_actions_need_a_login_a_known_alarm_and_a_reason(web, token):
    url = f"{web}/api/alarms/{SETPOINT_ALARM}"
    wait_until(lambda: _alarm_state(web, SETPOINT_ALARM) == "NORM", 60, what="the alarm NORM")  # as the lab starts
    status, alarms = call("GET", f"{web}/api/alarms")
    assert status == 200 and SETPOINT_ALARM in [a["name"] for a in alarms], alarms
    assert call("POST", f"{url}/shelve", {"why": "night", "seconds": 600})[0] == 401
    status, answer = call("POST", f"{web}/api/alarms/no_such_alarm/acknowledge", {"why": "x"}, _bearer(token))
    assert (status, answer["reason"]) == (404, "NoSuchRule") and SETPOINT_ALARM in answer["message"], answer
    status, answer = call("POST", f"{url}/shelve", {"why": "night"}, _bearer(token))
    assert (status, answer["reason"]) == (422, "BadAlarmRequest"), answer
    status, answer = call("POST", f"{url}/shelve", {"why": "", "seconds": 600}, _bearer(token))
    assert (status, answer["reason"]) == (422, "BadAlarmRequest") and "say why" in answer["message"], answer
    status, answer = call("POST", f"{url}/shelve", {"why": "a night's work on the loop", "seconds": 600}, _bearer(token))
    assert status == 200, answer
    try:
        assert _alarm_state(web, SETPOINT_ALARM) == "SHLVD"
    finally:
        assert call("POST", f"{url}/unshelve", {"why": "done"}, _bearer(token))[0] == 200
    assert _alarm_state(web, SETPOINT_ALARM) == "NORM"


def _alarm_state(web: str, name: str) -> str:
    return next(alarm["state"] for alarm in call("GET", f"{web}/api/alarms")[1] if alarm["name"] == name)


def test_supervisor_actions_need_a_login_and_name_a_program(lab, web, token):
    status, answer = call("POST", f"{web}/api/supervisor/restart", {"program": "Relay/lab"})
    assert status == 401
    status, answer = call("POST", f"{web}/api/supervisor/start", {"program": "Nothing/here"}, _bearer(token))
    assert status == 404 and "Relay/lab" in answer["message"]  # the programs it has
    status, answer = call("POST", f"{web}/api/supervisor/start", {"program": "Relay/lab"}, _bearer(token))
    assert (status, answer) == (200, {"program": "Relay/lab", "action": "start"})  # running: nothing to do
    assert f"web: {USER}: start Relay/lab" in (lab.run_dir / "log" / "lab.log").read_text()
    status, programs = call("GET", f"{web}/api/supervisor")
    assert {p["name"]: p["phase"] for p in programs}["Relay/lab"] == "running"


def test_with_reading_closed_every_page_and_call_needs_a_login(lab, token):
    closed = WebSettings.of(lab.config, lab.run_dir, lab.tango_host)
    closed = WebSettings(closed.run_dir, closed.tango_host, open_reading=False)
    with TestClient(create_app(closed), follow_redirects=False) as client:
        assert client.get("/api/devices").status_code == 401
        assert client.get(f"/devices/{CRYOCON}").headers["location"] == f"/login?next=/devices/{CRYOCON}"
        assert client.get("/api/devices", headers=_bearer(token)).status_code == 200
        assert client.get("/api/health").status_code == 200  # the supervisor's probe


class _Stream:
    """One browser's event stream, read in a thread."""

    def __init__(self, url: str) -> None:
        self.names: set[str] = set()
        self.reply = urllib.request.urlopen(url, timeout=30)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with self.reply:
            for line in self.reply:  # a temperature changes every 0.5 s: the loop goes round
                if line.startswith(b"data: "):
                    self.names.update(update["name"] for update in json.loads(line[6:]))
                if self.stop.is_set():
                    return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


def _login(web: str) -> str:
    """A page session's cookie, from the login form."""
    body = urllib.parse.urlencode({"name": USER, "password": PASSWORD, "next": "/"}).encode()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(urllib.request.Request(f"{web}/login", body), timeout=30)
    except urllib.error.HTTPError as reply:
        assert reply.code == 303
        return reply.headers["set-cookie"].split(";")[0]
    raise AssertionError("the login did not redirect")


def _readme_api_lines() -> list[str]:
    """The shell lines of the README's HTTP API section, without their comments."""
    section = README.read_text().split("### The HTTP API", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [re.sub(r"\s+# .*$", "", line).strip() for line in block.splitlines() if line.strip()]


