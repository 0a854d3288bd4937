"""Logins of the web monitor: the htpasswd file (bcrypt, as `htpasswd -B` writes it), failed logins
slowed, CSRF tokens, and script tokens that outlive a restart but not their user."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import bcrypt

from tangolab.web.auth import MAX_DELAY, Guard, Users
from tangolab.web.command import add_web_command

FAST = 4  # bcrypt rounds: the production 12 cost ~0.3 s a check


def test_users_are_bcrypt_lines_of_an_htpasswd_file(tmp_path: Path):
    users = Users(tmp_path / "web.htpasswd", rounds=FAST)
    users.set("ada", "correct-horse")
    name, hashed = (tmp_path / "web.htpasswd").read_text().strip().split(":", 1)
    assert name == "ada" and hashed.startswith("$2b$")
    assert (tmp_path / "web.htpasswd").stat().st_mode & 0o077 == 0  # the hashes are nobody else's to read
    assert users.check("ada", "correct-horse")
    assert not users.check("ada", "correct-horsE")
    assert not users.check("bob", "correct-horse")


def test_a_file_written_by_apaches_htpasswd_is_read(tmp_path: Path):
    hashed = bcrypt.hashpw(b"s3cret-pass", bcrypt.gensalt(rounds=5)).decode().replace("$2b$", "$2y$", 1)
    (tmp_path / "web.htpasswd").write_text(f"grace:{hashed}\n")  # `htpasswd -B` writes $2y$
    assert Users(tmp_path / "web.htpasswd", rounds=FAST).check("grace", "s3cret-pass")


def test_a_bad_user_name_is_refused_and_the_file_unchanged(tmp_path: Path):
    users = Users(tmp_path / "web.htpasswd", rounds=FAST)
    users.set("ada", "correct-horse")
    before = (tmp_path / "web.htpasswd").read_text()
    try:
        users.set("ada:root", "whatever-long")
    except ValueError as error:
        assert "letters, digits" in str(error)
    else:
        raise AssertionError("a name with a colon was taken")
    assert (tmp_path / "web.htpasswd").read_text() == before


def test_failed_logins_are_slowed_per_name_and_address_until_one_succeeds(tmp_path: Path):
    users = Users(tmp_path / "web.htpasswd", rounds=FAST)
    users.set("ada", "correct-horse")
    guard = Guard(users, tmp_path / "web.tokens")
    assert guard.delay("user:ada", "from:10.0.0.9") == 0.0
    delays = []
    for _ in range(6):
        assert guard.login("ada", "wrong", "10.0.0.9") is None
        delays.append(guard.delay("user:ada", "from:10.0.0.9"))
    assert delays == sorted(delays) and delays[0] > 0 and delays[-1] == MAX_DELAY
    assert guard.delay("user:bob", "from:10.0.0.9") == MAX_DELAY  # the address guessing other names too
    assert guard.delay("user:eve", "from:10.0.0.7") == 0.0
    key = guard.login("ada", "correct-horse", "10.0.0.9")
    assert key and guard.delay("user:ada", "from:10.0.0.9") == 0.0


def test_a_session_checks_its_csrf_token(tmp_path: Path):
    users = Users(tmp_path / "web.htpasswd", rounds=FAST)
    users.set("ada", "correct-horse")
    guard = Guard(users, tmp_path / "web.tokens")
    session = guard.session(guard.login("ada", "correct-horse", "127.0.0.1"))
    assert session.user == "ada"
    assert guard.csrf_ok(session, session.csrf)
    assert not guard.csrf_ok(session, "forged") and not guard.csrf_ok(session, None)
    assert guard.session("made-up") is None


def test_tokens_outlive_a_restart_but_not_their_user(tmp_path: Path):
    users = Users(tmp_path / "web.htpasswd", rounds=FAST)
    users.set("ada", "correct-horse")
    token = Guard(users, tmp_path / "web.tokens").new_token("ada")
    assert token not in (tmp_path / "web.tokens").read_text()  # kept hashed
    assert Guard(users, tmp_path / "web.tokens").token_user(token) == "ada"  # a new service process
    (tmp_path / "web.htpasswd").write_text("")  # ada removed
    assert Guard(users, tmp_path / "web.tokens").token_user(token) is None


def test_tangolab_web_adduser_adds_and_changes_a_user(tmp_path: Path, monkeypatch, capsys):
    def main(argv: list[str]) -> int:
        parser = argparse.ArgumentParser()
        add_web_command(parser.add_subparsers(dest="command"))
        args = parser.parse_args(argv)
        return args.run(args)

    for password, said in (("first-password", "added ada"), ("second-password", "changed the password of ada")):
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        assert main(["web", "adduser", "ada", "--password-stdin", "--cost", "4", "--run-dir", str(tmp_path)]) == 0
        assert said in capsys.readouterr().out
    assert Users(tmp_path / "web.htpasswd", rounds=FAST).check("ada", "second-password")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["web", "adduser", "bob", "--password-stdin", "--run-dir", str(tmp_path)]) == 2
    assert "at least 8" in capsys.readouterr().err and not Users(tmp_path / "web.htpasswd", rounds=FAST).exists("bob")
