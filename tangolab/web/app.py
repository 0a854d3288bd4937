"""The web monitor and HTTP API of one lab: pages from templates, JSON under /api, live values
as server-sent events. Reading may be open (the lab file's `open_reading`); every change needs a
login: a session cookie with its CSRF token (pages), or a bearer token (scripts). Every accepted
change goes to the lab log with the user's name."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ..processes import lab_logger
from .access import ApiError, LabAccess
from .auth import CSRF_HEADER, SESSION_COOKIE, Guard, Users
from .live import Hub
from .settings import WebSettings

HERE = Path(__file__).parent
KEEPALIVE = 15.0  # s between two comments on a quiet event stream (proxies close silent ones)
VERBS = ("get", "set", "call", "put", "message", "devices", "history")  # what the command line page runs
#: What a person does to an alarm on the page or through the API, and the AlarmHandler's command for it
ALARM_ACTIONS = {"acknowledge": "Acknowledge", "shelve": "Shelve", "unshelve": "Unshelve",
                 "disable": "OutOfService", "enable": "InService"}


class Service:
    """What the routes share: the settings, the lab's devices, the hub, the guard, the lab log."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.access = LabAccess(settings.tango_host, settings.run_dir)
        self.hub = Hub(settings.tango_host)
        self.guard = Guard(Users(settings.users_file), settings.tokens_file)
        self.log = lab_logger(settings.run_dir, "web")

    def changed(self, user: str, what: str) -> None:
        """An accepted change, in the lab log with who made it (and in the archive's messages)."""
        self.log.info("%s: %s", user, what)
        try:
            self.access.message("info", f"web:{user}", what)
        except ApiError:  # no archiver in this lab, or it is down: the lab log has it
            pass

    def one_of(self, tango_class: str, devices: list[dict] | None = None) -> str | None:
        """The lab's device of a class it has one of (its Supervisor, its AlarmHandler), if any;
        among `devices` when the caller already listed them."""
        devices = self.access.devices() if devices is None else devices
        return next((d["device"] for d in devices if d["class"] == tango_class), None)


def create_app(settings: WebSettings) -> FastAPI:
    lab = Service(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        lab.hub.close()

    # FastAPI's /docs and /redoc load their scripts from a CDN: the API page is ours (`/api`)
    app = FastAPI(title="tangolab", summary="The lab's devices, archive and relay over HTTP",
                  description="Reads may be open; every change needs `Authorization: Bearer TOKEN` "
                  "(POST /api/token with HTTP basic credentials gives one) or a page's session and CSRF token.",
                  docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.lab = lab
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    pages = Jinja2Templates(directory=HERE / "templates")  # autoescape on: device strings stay text

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"status": error.status, "reason": error.reason, "message": error.message},
                            status_code=error.status)

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        session = _session(request)
        if session is None and not settings.open_reading:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return pages.TemplateResponse(request, name, {
            "user": session.user if session else None, "csrf": session.csrf if session else "",
            "plots": settings.plots, "tango_host": settings.tango_host, **context})

    # -- pages -------------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard(request: Request):
        devices = lab.access.devices()
        return page(request, "dashboard.html", groups=_grouped(devices), handler=lab.one_of("AlarmHandler", devices),
                    title="Dashboard")

    @app.get("/alarms", response_class=HTMLResponse, include_in_schema=False)
    def alarms_page(request: Request):
        return page(request, "alarms.html", handler=lab.one_of("AlarmHandler"), title="Alarms")

    @app.get("/devices/{domain}/{family}/{member}", response_class=HTMLResponse, include_in_schema=False)
    def device_page(request: Request, domain: str, family: str, member: str):
        device = lab.access.device(f"{domain}/{family}/{member}")
        try:
            attributes, commands = lab.access.describe(device)
            down = ""
        except ApiError as error:
            attributes, commands, down = {}, {}, error.message
        return page(request, "device.html", device=device, attributes=list(attributes.values()),
                    commands=list(commands.values()), down=down, title=device)

    @app.get("/plots", response_class=HTMLResponse, include_in_schema=False)
    def plots_page(request: Request, attribute: Annotated[list[str], Query()] = [], log_y: bool = False,  # noqa: B006
                   window: str = "10m"):
        return page(request, "plots.html", adhoc=[a.lower() for a in attribute], adhoc_log_y=log_y,
                    adhoc_window=window, title="Plots")

    @app.get("/messages", response_class=HTMLResponse, include_in_schema=False)
    def messages_page(request: Request):
        return page(request, "messages.html", title="Messages")

    @app.get("/console", response_class=HTMLResponse, include_in_schema=False)
    def console_page(request: Request):
        return page(request, "console.html", verbs=VERBS, title="Command line")

    @app.get("/supervisor", response_class=HTMLResponse, include_in_schema=False)
    def supervisor_page(request: Request):
        return page(request, "supervisor.html", title="Supervisor")

    @app.get("/api", response_class=HTMLResponse, include_in_schema=False)
    def api_page(request: Request):
        calls = [(method.upper(), path, spec.get("summary", ""), spec.get("description", ""))
                 for path, methods in app.openapi()["paths"].items() for method, spec in methods.items()]
        return page(request, "api.html", calls=calls, title="API")

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/", failed: bool = False):
        return pages.TemplateResponse(request, "login.html", {"next": next, "failed": failed, "user": None,
                                                              "csrf": "", "title": "Log in", "plots": settings.plots,
                                                              "tango_host": settings.tango_host})

    @app.post("/login", include_in_schema=False)
    async def login(request: Request, name: Annotated[str, Form()], password: Annotated[str, Form()],
                    next: Annotated[str, Form()] = "/"):
        address = request.client.host if request.client else "?"
        await asyncio.sleep(lab.guard.delay(f"user:{name}", f"from:{address}"))
        key = await run_in_threadpool(lab.guard.login, name, password, address)
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        if key is None:
            lab.log.warning("failed web login for %r from %s", name, address)
            return RedirectResponse(f"/login?failed=1&next={target}", status_code=303)
        reply = RedirectResponse(target, status_code=303)
        reply.set_cookie(SESSION_COOKIE, key, httponly=True, samesite="strict")
        return reply

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, user: Writer):
        lab.guard.logout(request.cookies.get(SESSION_COOKIE, ""))
        reply = RedirectResponse("/", status_code=303)
        reply.delete_cookie(SESSION_COOKIE)
        return reply

    @app.post("/console", response_class=HTMLResponse, include_in_schema=False)
    async def console(request: Request, user: Writer, line: Annotated[str, Form()]):
        try:
            words = shlex.split(line)  # quotes as a shell takes them: message info "door 'B' open"
        except ValueError as error:
            words, line = [], f"{line}  ({error})"
        if not words or words[0] not in VERBS:
            output, status = f"give one of {', '.join(VERBS)}, as `tangolab` takes them (e.g. get cryocon/temperatureA)", 2
        else:
            output, status = await run_in_threadpool(_run_verb, words, settings)
            if words[0] in ("set", "call", "put", "message") and status == 0:
                lab.changed(user, f"ran `tangolab {line}`")
        return pages.TemplateResponse(request, "console_output.html", {"line": line, "output": output,
                                                                       "status": status})

    # -- the API: reads ----------------------------------------------------------------------------

    @app.get("/api/health", tags=["service"])
    def health() -> dict:
        """Answers while the service runs (the supervisor's probe)."""
        return {"ok": True, "tango_host": settings.tango_host, "subscriptions": lab.hub.subscriptions}

    @app.get("/api/devices", tags=["devices"])
    def devices(user: Reader) -> list[dict]:
        """Every device of the lab: name, class, server, whether its server has registered."""
        return lab.access.devices()

    @app.get("/api/devices/{domain}/{family}/{member}", tags=["devices"])
    def describe(domain: str, family: str, member: str, user: Reader) -> dict:
        """A device's attributes (type, unit, format, limits, writable) and commands (argument types)."""
        device = lab.access.device(f"{domain}/{family}/{member}")
        attributes, commands = lab.access.describe(device)
        return {"device": device, "attributes": [a.public() for a in attributes.values()],
                "commands": [c.public() for c in commands.values()]}

    @app.get("/api/devices/{domain}/{family}/{member}/attributes", tags=["devices"])
    def read(domain: str, family: str, member: str, user: Reader,
             names: Annotated[str, Query(description="attributes, comma-separated")]) -> list[dict]:
        """Read attributes: value, quality, time (epoch s), unit; a failed one carries its error."""
        device = lab.access.device(f"{domain}/{family}/{member}")
        return lab.access.read(device, [n.strip() for n in names.split(",") if n.strip()])

    @app.get("/api/history", tags=["archive"])
    def history(user: Reader, attribute: str, since: str = "1h", until: str | None = None) -> dict:
        """An attribute's archived values (time, value, quality) between since and until (1h, ISO, epoch)."""
        return lab.access.history(attribute, since, until)

    @app.get("/api/messages", tags=["archive"])
    def messages(user: Reader, source: str | None = None, level: str | None = None, since: str = "1d",
                 until: str | None = None) -> list[dict]:
        """The lab's messages from the archive, by source, level and time."""
        return lab.access.messages(source, level, since, until)

    @app.get("/api/state_at", tags=["archive"])
    def state_at(user: Reader, time: str) -> dict:
        """The lab at a time: every archived attribute's last value then."""
        return lab.access.state_at(time)

    @app.get("/api/alarms", tags=["alarms"])
    def alarms(user: Reader) -> list[dict]:
        """Every alarm of the lab's AlarmHandler, active ones first: name, state (ISA-18.2), severity,
        since, message, values, expression, shelved_until."""
        reading = lab.access.read(_alarm_handler(lab), ["alarmTable"])[0]
        if reading.get("error"):
            raise ApiError(503, "AlarmHandlerDown", f"the alarm handler does not answer: {reading['error']}")
        return json.loads(reading["value"])

    @app.get("/api/supervisor", tags=["service"])
    def supervisor(user: Reader) -> list[dict]:
        """Every program of the lab: name, level, phase, pid, uptime (s), restarts."""
        return _programs(lab)

    @app.get("/api/stream", tags=["devices"])
    async def stream(request: Request, user: Reader,
                     attributes: Annotated[str, Query(description="full attribute names, comma-separated")]):
        """Server-sent events: each `data:` line a JSON array of updates ({name, value, quality, time, error}),
        the latest value of each attribute at once. A slow reader skips values, never delays others."""
        names = [name.strip() for name in attributes.split(",") if name.strip()]
        for name in names:
            if name.count("/") != 3:
                raise ApiError(422, "BadAttributeName", f"{name!r} is not domain/family/member/attribute")
        return StreamingResponse(_events(request, lab.hub, names), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    # -- the API: changes --------------------------------------------------------------------------

    @app.post("/api/token", tags=["service"])
    async def token(request: Request) -> dict:
        """A token for scripts, for HTTP basic credentials (`curl -u NAME:PASSWORD`)."""
        try:
            scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
            name, _, password = base64.b64decode(encoded).decode().partition(":")
            assert scheme.lower() == "basic"
        except (ValueError, AssertionError):
            raise ApiError(401, "LoginNeeded", "send your name and password as HTTP basic credentials") from None
        address = request.client.host if request.client else "?"
        await asyncio.sleep(lab.guard.delay(f"user:{name}", f"from:{address}"))
        if await run_in_threadpool(lab.guard.login, name, password, address) is None:
            lab.log.warning("failed web login for %r from %s", name, address)
            raise ApiError(401, "BadLogin", "wrong name or password")
        return {"token": lab.guard.new_token(name), "user": name}

    @app.put("/api/devices/{domain}/{family}/{member}/attributes/{attribute}", tags=["devices"])
    def write(domain: str, family: str, member: str, attribute: str, user: Writer,
              value: Annotated[Any, Body(embed=True)]) -> dict:
        """Write an attribute in its type and read it back (422 for a value out of range or of the wrong type)."""
        device = lab.access.device(f"{domain}/{family}/{member}")
        reading = lab.access.write(device, attribute, value)
        lab.changed(user, f"wrote {json.dumps(value)} to {reading['attribute']}")
        return reading

    @app.post("/api/devices/{domain}/{family}/{member}/commands/{command}", tags=["devices"])
    def call(domain: str, family: str, member: str, command: str, user: Writer,
             argument: Annotated[Any, Body(embed=True)] = None) -> dict:
        """Run a command. A long operation returns at once: follow the device's State (`follow`)."""
        device = lab.access.device(f"{domain}/{family}/{member}")
        result = lab.access.call(device, command, argument)
        lab.changed(user, f"ran {device} {result['command']}" + (f" {json.dumps(argument)}" if argument is not None
                                                                 else ""))
        return result

    @app.post("/api/publish", tags=["relay"])
    def publish(user: Writer, name: Annotated[str, Body()], value: Annotated[Any, Body()]) -> dict:
        """Publish a relay variable (`beam_f1`: name_type-letter-count), created on first put."""
        result = lab.access.publish(name, value)
        lab.changed(user, f"published {name} = {json.dumps(value)}")
        return result

    @app.post("/api/messages", tags=["archive"])
    def message(user: Writer, text: Annotated[str, Body()], level: Annotated[str, Body()] = "info") -> dict:
        """A message in the lab log, from the user."""
        lab.access.message(level, f"web:{user}", text)
        lab.log.info("%s: message %s: %s", user, level, text)
        return {"level": level, "source": f"web:{user}", "text": text}

    @app.post("/api/alarms/{rule}/{action}", tags=["alarms"])
    def alarm_action(rule: str, action: str, user: Writer, why: Annotated[str, Body()],
                     seconds: Annotated[float | None, Body()] = None) -> dict:
        """Acknowledge, shelve (for `seconds`), unshelve, disable (out of service) or enable an
        alarm; `why` is required, the user is the one logged in."""
        command = ALARM_ACTIONS.get(action.lower())
        if command is None:
            raise ApiError(404, "NoSuchAction", f"{action!r}: give {', '.join(ALARM_ACTIONS)}")
        if not why.strip():
            raise ApiError(422, "BadAlarmRequest", f"{action.lower()}: say why (the lab log keeps it with your name)")
        if command == "Shelve" and seconds is None:
            raise ApiError(422, "BadAlarmRequest", "shelve: give seconds (the alarm returns by itself after them)")
        argument = [rule, *([] if command != "Shelve" else [repr(seconds)]), user, why]
        lab.access.call(_alarm_handler(lab), command, argument)
        lab.changed(user, f"{action.lower()} alarm {rule}" + (f" for {seconds:g} s" if command == "Shelve" else "")
                    + f": {why}")
        return {"alarm": rule, "action": action.lower(), "user": user}

    @app.post("/api/supervisor/{action}", tags=["service"])
    def supervise(action: str, user: Writer, program: Annotated[str, Body(embed=True)]) -> dict:
        """Start, Stop or Restart a program of the lab."""
        if action.lower() not in ("start", "stop", "restart"):
            raise ApiError(404, "NoSuchAction", f"{action!r}: give start, stop or restart")
        supervisor = _supervisor(lab)
        lab.access.call(supervisor, action.capitalize(), program)
        lab.changed(user, f"{action.lower()} {program}")
        return {"program": program, "action": action.lower()}

    return app


# -- who asks --------------------------------------------------------------------------------------

def _session(request: Request):
    return request.app.state.lab.guard.session(request.cookies.get(SESSION_COOKIE))


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def reader(request: Request) -> str | None:
    """Reads: open (the lab file's `open_reading`), or for those logged in."""
    lab: Service = request.app.state.lab
    token = _bearer(request)
    session = _session(request)
    user = lab.guard.token_user(token) if token else session.user if session else None
    if user is None and not lab.settings.open_reading:
        raise ApiError(401, "LoginNeeded", "reading this lab needs a login (`open_reading` is off)")
    return user


def writer(request: Request) -> str:
    """Changes: a token, or a session with its CSRF token in the X-CSRF-Token header."""
    lab: Service = request.app.state.lab
    if (token := _bearer(request)) is not None:
        if (user := lab.guard.token_user(token)) is None:
            raise ApiError(401, "BadToken", "the token is unknown or its user was removed: POST /api/token")
        return user
    session = _session(request)
    if session is None:
        raise ApiError(401, "LoginNeeded", "changing the lab needs a login: log in on the page, or send "
                       "Authorization: Bearer TOKEN (POST /api/token gives one)")
    if not lab.guard.csrf_ok(session, request.headers.get(CSRF_HEADER)):
        raise ApiError(403, "BadCsrfToken", f"the {CSRF_HEADER} header is missing or wrong: reload the page")
    return session.user


Reader = Annotated[str | None, Depends(reader)]
Writer = Annotated[str, Depends(writer)]


async def _events(request: Request, hub: Hub, names: list[str]) -> AsyncIterator[str]:
    watcher = hub.watch(names, asyncio.get_running_loop())
    try:
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            updates = await watcher.next(KEEPALIVE)
            yield f"data: [{','.join(updates)}]\n\n" if updates else ": quiet\n\n"
    finally:
        watcher.close()


def _grouped(devices: list[dict]) -> list[tuple[str, list[dict]]]:
    """Devices by kind (the family part of the name: cryocon, stage, ...), services last."""
    groups: dict[str, list[dict]] = {}
    for device in devices:
        groups.setdefault(device["class"], []).append(device)
    return sorted(groups.items(), key=lambda item: (item[0] in ("Supervisor", "Archiver", "Relay"), item[0]))


def _alarm_handler(lab: Service) -> str:
    if (handler := lab.one_of("AlarmHandler")) is None:
        raise ApiError(404, "NoAlarmHandler", "this lab has no AlarmHandler")
    return handler


def _supervisor(lab: Service) -> str:
    if (supervisor := lab.one_of("Supervisor")) is None:
        raise ApiError(404, "NoSupervisor", "this lab has no supervisor")
    return supervisor


def _programs(lab: Service) -> list[dict]:
    supervisor = _supervisor(lab)
    columns = ("names", "levels", "phases", "pids", "uptimes", "restartCounts")
    readings = {r["attribute"].rsplit("/", 1)[1]: r["value"] or [] for r in lab.access.read(supervisor, list(columns))}
    return [dict(zip(("name", "level", "phase", "pid", "uptime", "restarts"), row))
            for row in zip(*(readings[c] for c in columns))]


def _run_verb(words: list[str], settings: WebSettings) -> tuple[str, int]:
    """A `tangolab` verb as the shell runs it, in a process of its own (its output and exit status)."""
    env = dict(os.environ, TANGO_HOST=settings.tango_host, TANGOLAB_ARCHIVE=str(settings.run_dir / "archive.db"))
    try:
        done = subprocess.run([sys.executable, "-m", "tangolab", *words], check=False, capture_output=True,
                              text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "no answer within 30 s", 4
    return (done.stdout + done.stderr).strip(), done.returncode
