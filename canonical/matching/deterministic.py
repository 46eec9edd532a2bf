"""Deterministic matching: identifiers only, in the order each domain trusts them."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from .base import Candidate, FieldComparison, MatchOutcome


def _upper(value: Any) -> str | None:
    if value in (None, ""):
        return None
    return re.sub(r"\s+", "", str(value)).upper()


def website_domain(value: Any) -> str | None:
    """https://www.Acme.com/about → acme.com (host without www.)."""
    if not value:
        return None
    text = str(value).strip().lower()
    host = urlsplit(text if "://" in text else f"//{text}").hostname or ""
    host = host.removeprefix("www.")
    return host or None


def _ref(value: Any) -> str | None:
    return str(value) if value else None


def identifier_keys(domain: str, values: dict[str, Any]) -> list[tuple[str, str]]:
    """(key_type, key_value) in priority order: the first type that finds a golden record decides."""
    keys: list[tuple[str, str | None]] = []
    country = values.get("country") or ""
    if domain == "legal_entity":
        tax = _upper(values.get("tax_id"))
        reg = _upper(values.get("registration_number"))
        keys += [("tax_id", f"{country}:{tax}" if tax else None), ("registration", f"{country}:{reg}" if reg else None)]
    elif domain == "customer":
        keys += [
            ("website_domain", website_domain(values.get("website"))),
            ("legal_entity", _ref(values.get("legal_entity"))),
        ]
    elif domain == "contract":
        keys += [("contract_number", _upper(values.get("contract_number")))]
    elif domain == "project":
        keys += [("project_code", _upper(values.get("project_code")))]
    elif domain == "resource":
        email = values.get("email")
        keys += [
            ("employee_number", _upper(values.get("employee_number"))),
            ("email", email.lower() if email else None),
        ]
    elif domain == "rate_card":
        keys += [("code", _upper(values.get("code")))]
    return [(t, v[:255]) for t, v in keys if v]


class DeterministicMatcher:
    """Links a record to the golden record that shares its strongest identifier; otherwise a new one."""

    def keys(self, *, domain: str, values: dict[str, Any]) -> list[tuple[str, str]]:
        return identifier_keys(domain, values)

    def match(self, *, domain: str, values: dict[str, Any], exclude_source_record: int | None = None) -> MatchOutcome:
        from canonical.models import MatchKey
        from canonical.services.golden import golden_survivor_ids

        for key_type, key_value in self.keys(domain=domain, values=values):
            rows = MatchKey.objects.filter(domain=domain, key_type=key_type, key_value=key_value)
            if exclude_source_record is not None:
                rows = rows.exclude(source_record_id=exclude_source_record)
            golden_ids = sorted(set(rows.values_list("golden_id", flat=True)), key=str)
            if not golden_ids:
                continue
            survivors = golden_survivor_ids(domain, golden_ids)
            if not survivors:
                continue
            chosen = survivors[0]
            reason = f"same {key_type.replace('_', ' ')} {key_value}"
            candidate = Candidate(
                golden_id=chosen,
                score=1.0,
                reason=reason,
                comparisons=[FieldComparison(key_type, key_value, key_value, "exact", 1.0)],
            )
            return MatchOutcome(decision="link", golden_id=chosen, candidates=[candidate], reason=reason)
        return MatchOutcome(decision="new", reason="no golden record shares an identifier")

    def explain(self, *, domain: str, values_a: dict[str, Any], values_b: dict[str, Any]) -> Candidate:
        keys_a = dict(self.keys(domain=domain, values=values_a))
        keys_b = dict(self.keys(domain=domain, values=values_b))
        comparisons = []
        shared = None
        for key_type in dict.fromkeys([*keys_a, *keys_b]):
            a, b = keys_a.get(key_type), keys_b.get(key_type)
            level = "exact" if a is not None and a == b else ("missing" if a is None or b is None else "different")
            comparisons.append(FieldComparison(key_type, a, b, level, 1.0 if level == "exact" else 0.0))
            if level == "exact" and shared is None:
                shared = key_type
        reason = f"same {shared.replace('_', ' ')}" if shared else "no shared identifier"
        return Candidate(golden_id=None, score=1.0 if shared else 0.0, reason=reason, comparisons=comparisons)
