"""Default systems (fixtures/default_systems.json) and ownership rules (canonical-model.md), made idempotently."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.db import transaction

from canonical.audit import Channel, audit_context
from canonical.domains import DOMAINS

DEFAULT_SYSTEMS_FILE = Path(settings.BASE_DIR) / "fixtures" / "default_systems.json"


def default_rules() -> list[tuple[str, str, str]]:
    """(domain, field, system) for every default rule; field "" is the domain-level rule."""
    rules = []
    for spec in DOMAINS.values():
        rules.append((spec.name, "", spec.default_owner))
        for field, owner in spec.field_owners.items():
            rules.append((spec.name, field, owner))
    return rules


def defaults_ensure() -> tuple[int, int]:
    """Create the default systems and ownership rules that are missing. Returns (systems, rules) created."""
    from canonical.models import OwnershipRule, System

    data = json.loads(DEFAULT_SYSTEMS_FILE.read_text())
    created_systems = created_rules = 0
    with audit_context(actor="system:bootstrap", channel=Channel.JOB, reason="default systems and ownership rules"):
        with transaction.atomic():
            for item in data["systems"]:
                _, created = System.objects.get_or_create(code=item["code"], defaults=item)
                created_systems += created
            existing = set(OwnershipRule.objects.values_list("domain", "field"))
            for domain, field, system in default_rules():
                if (domain, field) not in existing:
                    note = "default: canonical model"
                    OwnershipRule.objects.create(domain=domain, field=field, system_id=system, note=note)
                    created_rules += 1
    return created_systems, created_rules


def defaults_ensure_on_migrate(sender, using="default", **kwargs) -> None:
    from django.db import connections

    from canonical.models import System

    if System._meta.db_table not in connections[using].introspection.table_names():
        return
    defaults_ensure()
