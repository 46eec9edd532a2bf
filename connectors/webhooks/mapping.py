"""Outbox events as CloudEvents 1.0 (the change feed and outbound webhooks), and the inbound webhook body."""

from __future__ import annotations

from typing import Any

from canonical.domains import get_domain


def personal_fields(domain: str) -> set[str]:
    return {f.name for f in get_domain(domain).fields if f.personal}


def cloudevent(event, *, sequence: str = "", personal: bool = False) -> dict[str, Any]:
    """One ChangeEvent as a CloudEvent: golden id, domain, version, changed fields and the record."""
    record = dict(event.data or {})
    changed = list(event.changed_fields or [])
    if not personal:
        hidden = personal_fields(event.domain)
        record = {k: v for k, v in record.items() if k not in hidden}
        changed = [f for f in changed if f not in hidden]
    out = {
        "specversion": "1.0",
        "id": str(event.event_id),
        "source": f"/mdm/{event.domain}",
        "type": f"org.mdm.{event.type}",
        "subject": str(event.golden_id),
        "time": event.occurred_at.isoformat(),
        "datacontenttype": "application/json",
        "data": {
            "golden_id": str(event.golden_id),
            "domain": event.domain,
            "version": event.version,
            "changed_fields": changed,
            "origin_system": event.origin_system_id,
            "record": record,
        },
    }
    if sequence:
        out["sequence"] = sequence
    return out


INBOUND_SHAPE = 'expected {"domain": "<domain>", "records": [{"source_id", "updated_at", "deleted", "attributes"}]}'
