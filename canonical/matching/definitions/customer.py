"""Customer (a client account): name, web domain, phone, address, legal entity."""

from __future__ import annotations

from typing import Any

from .. import normalize as norm
from .common import Features, MatchDefinition, any_overlap, compact_keys, company_name_comparison, exact_or_different
from .organisation import address_comparisons, country_comparison, organisation_keys, prepare_organisation


def prepare(values: dict[str, Any]) -> Features:
    features = prepare_organisation(values)
    features["legal_entity"] = norm.ref_id(values.get("legal_entity"))
    return features


def keys(f: Features) -> list[tuple[str, str]]:
    return compact_keys([*organisation_keys(f), ("le", f["legal_entity"]) if f["legal_entity"] else None])


DEFINITION = MatchDefinition(
    domain="customer",
    noun="customer",
    prepare=prepare,
    keys=keys,
    comparisons=(
        company_name_comparison(),
        any_overlap("web domain", "domains", m=0.8, u=0.0005, says="web domain", m_diff=0.05),
        exact_or_different("phone", "phone", m=0.75, u=0.0003, says="phone number", m_diff=0.15),
        exact_or_different("legal entity", "legal_entity", m=0.9, u=0.0005, says="legal entity", m_diff=0.05),
        *address_comparisons(),
        country_comparison(),
    ),
    prior=1e-4,
    identifiers=frozenset({"web domain"}),
)
