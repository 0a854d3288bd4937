"""Who may change the lab: users in an htpasswd file (bcrypt), sessions with a CSRF token for
pages, tokens for scripts. Failed logins are slowed (each failure for a name or an address
doubles the wait before the next answer, up to `MAX_DELAY`), so guessing a password is slow.

Sessions live in the service's memory (a restart logs pages out); tokens are kept hashed in the
run folder's `web.tokens`, so a script's token outlives restarts until its user is removed.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt

NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MAX_DELAY = 8.0  # s a failed login waits at most
SESSION_COOKIE = "tangolab_session"
CSRF_HEADER = "X-CSRF-Token"


class Users:
    """The htpasswd file: `name:$2b$...` lines, read on each check so that `adduser` takes effect at once."""

    def __init__(self, path: Path, rounds: int = 12) -> None:
        self.path = path
        self.rounds = rounds  # bcrypt's cost: 2**rounds; 12 takes ~0.3 s here, what a guess costs too

    def _entries(self) -> dict[str, bytes]:
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return {}
        return {name: hashed.encode() for name, _, hashed in (line.partition(":") for line in lines if ":" in line)}

    def check(self, name: str, password: str) -> bool:
        hashed = self._entries().get(name)
        if hashed is None:
            bcrypt.checkpw(b"x", _dummy(self.rounds))  # as long as for a known name: the time tells nothing
            return False
        return bcrypt.checkpw(password.encode(), hashed.replace(b"$2y$", b"$2b$", 1))

    def exists(self, name: str) -> bool:
        return name in self._entries()

    def set(self, name: str, password: str) -> None:
        """Add a user or change a password (htpasswd -B writes the same lines)."""
        if not NAME.fullmatch(name):
            raise ValueError(f"a user name is 1 to 64 letters, digits, or _.@-, not {name!r}")
        entries = self._entries()
        entries[name] = bcrypt.hashpw(password.encode(), bcrypt.gensalt(self.rounds))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(f"{user}:{hashed.decode()}\n" for user, hashed in sorted(entries.items()))
        partial = self.path.with_suffix(".partial")
        partial.write_text(text)
        partial.chmod(0o600)
        partial.replace(self.path)


@functools.cache
def _dummy(rounds: int) -> bytes:
    return bcrypt.hashpw(b"dummy", bcrypt.gensalt(rounds))


@dataclass
class Session:
    user: str
    csrf: str
    created: float


class Guard:
    """Sessions, tokens and the slowing of failed logins."""

    def __init__(self, users: Users, tokens_file: Path) -> None:
        self.users = users
        self.tokens_file = tokens_file
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, tuple[int, float]] = {}  # name or address -> failures, time of the last
        self._lock = threading.Lock()

    # -- logins ------------------------------------------------------------------------------------

    def delay(self, *keys: str) -> float:
        """How long to wait before answering a login for these keys (name, address)."""
        with self._lock:
            failures = max((self._failures.get(key, (0, 0.0))[0] for key in keys), default=0)
        return 0.0 if failures == 0 else min(MAX_DELAY, 0.25 * 2 ** failures)

    def login(self, name: str, password: str, address: str) -> str | None:
        """A new session's key, or None (and the failure counted)."""
        if not self.users.check(name, password):
            with self._lock:
                for key in (f"user:{name}", f"from:{address}"):
                    count, _ = self._failures.get(key, (0, 0.0))
                    self._failures[key] = (count + 1, time.time())
            return None
        with self._lock:
            self._failures.pop(f"user:{name}", None)
            self._failures.pop(f"from:{address}", None)
            key = secrets.token_urlsafe(32)
            self._sessions[key] = Session(name, secrets.token_urlsafe(32), time.time())
        return key

    def logout(self, key: str) -> None:
        with self._lock:
            self._sessions.pop(key, None)

    def session(self, key: str | None) -> Session | None:
        if not key:
            return None
        session = self._sessions.get(key)
        return session if session is not None and self.users.exists(session.user) else None

    @staticmethod
    def csrf_ok(session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(session.csrf, token)

    # -- tokens for scripts ------------------------------------------------------------------------

    def new_token(self, user: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            tokens = self._tokens()
            tokens[_digest(token)] = user
            self.tokens_file.write_text(json.dumps(tokens))
            self.tokens_file.chmod(0o600)
        return token

    def token_user(self, token: str) -> str | None:
        user = self._tokens().get(_digest(token))
        return user if user is not None and self.users.exists(user) else None

    def _tokens(self) -> dict[str, str]:
        try:
            return json.loads(self.tokens_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
