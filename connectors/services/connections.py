"""Connections: how the hub reaches each system (data, audited like every other configuration)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.db import transaction

from canonical.audit import Channel, audit_context
from canonical.models import System
from connectors.models import Connection
from connectors.registry import connector_class

SANDBOX_PATHS = {"crm": "/crm", "erp": "/erp", "psa": "/psa", "hr": "/hr"}


def connection_missing_message(*, system: str) -> str:
    """What to say when a system has no connection: which ones exist, and how to configure one."""
    known = ", ".join(Connection.objects.order_by("system_id").values_list("system_id", flat=True)) or "none yet"
    return (
        f"no connection for system '{system}' (configured: {known}). "
        "Configure one in the admin, or run `manage.py sandbox configure --url URL`."
    )


def connection_configure(
    *, system: str, kind: str, base_url: str, secret: str = "", options: dict | None = None,
    pull_domains: list[str] | None = None, enabled: bool = True,
) -> Connection:  # fmt: skip
    """Create or update the connection of a system (the system must exist)."""
    connector_class(kind)  # raises KeyError naming the known kinds
    if not System.objects.filter(code=system).exists():
        raise ValueError(f"no system '{system}': create it first (admin → Systems)")
    conn = Connection.objects.filter(system_id=system).first() or Connection(system_id=system)
    conn.kind, conn.base_url, conn.secret, conn.enabled = kind, base_url, secret, enabled
    conn.options = options or {}
    conn.pull_domains = pull_domains or []
    conn.save()
    return conn


_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*")  # name, IPv4, IPv6


def sandbox_url_validate(*, url: str) -> str:
    """The sandbox's root URL without its trailing slash. Raises ValueError, saying what is wrong, unless it is
    an http(s) URL that fits each system's connection (the URL plus its path, e.g. /crm)."""
    url = url.strip().rstrip("/")
    shown = url if len(url) <= 80 else url[:80] + "…"
    # Not URLValidator: it refuses a host name without a dot (a container's "sandbox:8765") and takes a query or
    # fragment, which the system's path appended after it would break.
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError past 65535
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or not _HOST.fullmatch(parts.hostname)
            or parts.query
            or parts.fragment
            or "@" in parts.netloc
            or (port is not None and not 1 <= port <= 65535)
        ):
            raise ValueError
    except ValueError:
        raise ValueError(
            f"{shown!r} is not an http or https URL of a host (a name, localhost or an IP address) and an optional "
            "port from 1 to 65535, without a query or fragment; give the sandbox's address, e.g. http://127.0.0.1:8765"
        ) from None
    longest = Connection._meta.get_field("base_url").max_length - max(len(p) for p in SANDBOX_PATHS.values())
    if len(url) > longest:
        raise ValueError(f"the URL '{shown}' has {len(url)} characters; a connection's URL holds at most {longest} "
                         "before the system's path: give a shorter one")  # fmt: skip
    return url


def connections_sandbox_configure(*, url: str, systems: list[str] | None = None) -> list[Connection]:
    """Point the default systems (crm, erp, psa, hr) at a running sandbox (ValueError for a bad URL, before any
    change)."""
    url = sandbox_url_validate(url=url)
    out = []
    reason = "connect the sandbox systems"
    with transaction.atomic(), audit_context(actor="command:sandbox", channel=Channel.JOB, reason=reason):
        for code in systems or list(SANDBOX_PATHS):
            out.append(connection_configure(system=code, kind=code, base_url=url + SANDBOX_PATHS[code]))
    return out
