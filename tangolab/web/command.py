"""`tangolab web serve` (what the supervisor runs) and `tangolab web adduser NAME`."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from ..lab_config import LabConfig
from .auth import Users
from .settings import USERS_FILE, WebSettings


def add_web_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    web = subparsers.add_parser("web", help="the lab's web monitor: serve it, or add a user who may change the lab")
    verbs = web.add_subparsers(dest="web_command", required=True)
    serve = verbs.add_parser("serve", help="serve the lab's pages and API (the supervisor runs it)")
    serve.add_argument("--config", help="the lab file (default: lab.config.json in the run folder)")
    serve.add_argument("--tango-host", default=None, help="the lab's HOST:PORT (default: $TANGO_HOST)")
    adduser = verbs.add_parser("adduser", help="add a user, or change a password, in the lab's htpasswd file")
    adduser.add_argument("name", metavar="NAME")
    adduser.add_argument("--users", help=f"the htpasswd file (default: the run folder's {USERS_FILE})")
    adduser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    adduser.add_argument("--cost", type=int, default=12, choices=range(4, 18), metavar="4..17",
                         help="bcrypt's cost, as htpasswd -C (default: %(default)s; each step doubles a check's time)")
    for verb in (serve, adduser):
        verb.add_argument("--run-dir", default="var", help="the lab's run folder (default: %(default)s)")
    web.set_defaults(run=run_web)
    return web


def run_web(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir).resolve()
    if args.web_command == "adduser":
        return _adduser(args, run_dir)
    tango_host = args.tango_host or os.environ.get("TANGO_HOST")
    if not tango_host:
        print("tangolab web: no TANGO_HOST: give --tango-host HOST:PORT or export TANGO_HOST", file=sys.stderr)
        return 2
    config = LabConfig.load(args.config or run_dir / "lab.config.json")
    settings = WebSettings.of(config, run_dir, tango_host) or WebSettings(run_dir, tango_host)
    os.environ["TANGO_HOST"] = tango_host
    import uvicorn

    from .app import create_app

    print(f"serving {settings.address} for the lab of TANGO_HOST {tango_host}", flush=True)
    uvicorn.run(create_app(settings), host=settings.bind_host, port=settings.port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=2)
    return 0


def _adduser(args: argparse.Namespace, run_dir: Path) -> int:
    path = Path(args.users) if args.users else run_dir / USERS_FILE
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("tangolab web adduser: the two passwords differ; nothing changed", file=sys.stderr)
            return 2
    if len(password) < 8:
        print("tangolab web adduser: a password has at least 8 characters; nothing changed", file=sys.stderr)
        return 2
    users = Users(path, rounds=args.cost)
    existed = users.exists(args.name)
    try:
        users.set(args.name, password)
    except ValueError as error:
        print(f"tangolab web adduser: {error}", file=sys.stderr)
        return 2
    print(f"{'changed the password of' if existed else 'added'} {args.name} in {path}")
    return 0
