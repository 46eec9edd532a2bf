"""Per-domain match definitions: normalisers, blocking keys, comparisons, weights, thresholds, hard rules."""

from __future__ import annotations

from .common import MatchDefinition


def get_definition(domain: str) -> MatchDefinition:
    from . import customer, identified, legal_entity, resource
    from .parameters import apply_parameters

    table = {
        "customer": customer.DEFINITION,
        "legal_entity": legal_entity.DEFINITION,
        "resource": resource.DEFINITION,
        "contract": identified.CONTRACT,
        "project": identified.PROJECT,
        "rate_card": identified.RATE_CARD,
    }
    try:
        return apply_parameters(table[domain])
    except KeyError:
        raise KeyError(f"no match definition for domain {domain!r}; expected one of {', '.join(table)}") from None


__all__ = ["MatchDefinition", "get_definition"]
