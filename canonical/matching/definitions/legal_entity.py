"""Legal entity (a registered company): tax id, registration number, name, country, address, web domain.

Hard rule: two legal entities with different valid tax ids in the same country are never the same.
"""

from __future__ import annotations

from typing import Any

from .. import normalize as norm
from ..scoring import HardRule
from .common import Features, MatchDefinition, any_overlap, compact_keys, company_name_comparison, exact_or_different
from .organisation import address_comparisons, country_comparison, organisation_keys, prepare_organisation


def prepare(values: dict[str, Any]) -> Features:
    features = prepare_organisation(values)
    country = features["country"] or ""
    tax = norm.tax_id(values.get("tax_id"), country)
    features["tax_id"] = f"{country}:{tax[0]}" if tax else None
    features["tax_valid"] = bool(tax and tax[1])
    reg = norm.identifier(values.get("registration_number"))
    features["registration"] = f"{country}:{reg}" if reg else None
    return features


def keys(f: Features) -> list[tuple[str, str]]:
    return compact_keys(
        [
            ("tax", f["tax_id"]) if f["tax_id"] else None,
            ("reg", f["registration"]) if f["registration"] else None,
            *organisation_keys(f),
        ]
    )


def different_valid_tax_ids(a: Features, b: Features) -> str | None:
    if not (a["tax_id"] and b["tax_id"] and a["tax_valid"] and b["tax_valid"]):
        return None
    if a["country"] == b["country"] and a["tax_id"] != b["tax_id"]:
        return f"different valid tax ids in {a['country']} ({a['tax_id'].split(':', 1)[1]} vs {b['tax_id'].split(':', 1)[1]})"
    return None


DEFINITION = MatchDefinition(
    domain="legal_entity",
    noun="legal entity",
    prepare=prepare,
    keys=keys,
    comparisons=(
        company_name_comparison(),
        exact_or_different("tax id", "tax_id", m=0.9, u=0.00001, says="tax id", m_diff=0.01, typo=True),
        exact_or_different(
            "registration number", "registration", m=0.9, u=0.00001, says="registration number", m_diff=0.02, typo=True
        ),
        any_overlap("web domain", "domains", m=0.8, u=0.0005, says="web domain", m_diff=0.05),
        exact_or_different("phone", "phone", m=0.75, u=0.0003, says="phone number", m_diff=0.15),
        *address_comparisons(),
        country_comparison(),
    ),
    hard_rules=(HardRule("different valid tax ids", different_valid_tax_ids),),
    prior=1e-4,
    identifiers=frozenset({"tax id", "registration number"}),
)
