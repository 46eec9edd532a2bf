"""Ownership rules as a lookup: which system owns each field of a domain."""

from __future__ import annotations

from canonical.domains import get_domain


def ownership_map(domain: str) -> dict[str, str]:
    """{field: owning system code} for every field of the domain that has an owner."""
    from canonical.models import OwnershipRule

    rules = dict(OwnershipRule.objects.filter(domain=domain).values_list("field", "system_id"))
    domain_owner = rules.get("")
    owners = {}
    for name in get_domain(domain).field_names:
        owner = rules.get(name, domain_owner)
        if owner:
            owners[name] = owner
    return owners


def system_priorities() -> dict[str, int]:
    from canonical.models import System

    return dict(System.objects.values_list("code", "priority"))
