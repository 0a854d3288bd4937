"""One spelling per host, so that any alias of a Tango host finds the attributes archived from it.

An attribute is kept once, as `tango://<host>:<port>/domain/family/member/attribute`, its host
canonical: this machine's name for localhost, 127.0.0.1 and its own addresses, else the fully
qualified name.
"""

from __future__ import annotations

import functools
import socket


def _local_addresses() -> set[str]:
    names = {"localhost", "localhost.localdomain", "::1", "0.0.0.0", socket.gethostname().lower()}
    names.add(socket.getfqdn().lower())
    try:
        names.update(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    return names


@functools.cache
def _this_host() -> str:
    """This machine's name as other machines know it: its FQDN, else its host name."""
    fqdn = socket.getfqdn().lower()
    return fqdn if "." in fqdn and not fqdn.startswith("localhost") else socket.gethostname().lower()


@functools.cache
def canonical_host(host: str) -> str:
    """One spelling per host: this machine's name for its aliases, else the fully qualified name."""
    host = host.strip().lower().strip("[]")
    if host.startswith("127.") or host in _local_addresses():
        return _this_host()
    try:
        fqdn = socket.getfqdn(host).lower()
    except (OSError, UnicodeError):
        return host
    if fqdn.startswith("127.") or fqdn in _local_addresses():
        return _this_host()
    return fqdn if "." in fqdn else host


def canonical_tango_host(tango_host: str) -> str:
    """host:port of a TANGO_HOST (the first of a list), the host canonical."""
    host, _, port = tango_host.split(",")[0].strip().rpartition(":")
    return f"{canonical_host(host)}:{port}" if host else tango_host.lower()


def split_name(name: str) -> list[str]:
    """cs_name (the Tango host), domain, family, member and name of tango://host:port/d/f/m/attr."""
    parts = name.removeprefix("tango://").split("/")
    if len(parts) == 4:
        parts.insert(0, "")
    if len(parts) != 5 or not all(parts[1:]):
        raise ValueError(
            f"{name!r} is not an attribute name like tango://host:port/lab/cryocon/1/temperatureA"
        )
    return parts


def canonical_name(name: str) -> str:
    """An attribute's full name with its host canonical; a short name stays short."""
    cs_name, *rest = split_name(name.strip().lower())
    path = "/".join(rest)
    return f"tango://{canonical_tango_host(cs_name)}/{path}" if cs_name else path
