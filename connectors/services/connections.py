"""Connections: how the hub reaches each system (data, audited like every other configuration)."""

from __future__ import annotations

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


def connections_sandbox_configure(*, url: str, systems: list[str] | None = None) -> list[Connection]:
    """Point the default systems (crm, erp, psa, hr) at a running sandbox."""
    url = url.rstrip("/")
    out = []
    with audit_context(actor="command:sandbox", channel=Channel.JOB, reason="connect the sandbox systems"):
        for code in systems or list(SANDBOX_PATHS):
            out.append(connection_configure(system=code, kind=code, base_url=url + SANDBOX_PATHS[code]))
    return out
