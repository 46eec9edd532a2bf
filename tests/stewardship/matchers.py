"""A real matcher for tests of the review path: identifiers link (as the deterministic matcher does); a shared
normalised name without a shared identifier is sent to review. It reads the real MatchKey index."""

from __future__ import annotations

from typing import Any

from canonical.matching.base import Candidate, FieldComparison, MatchOutcome
from canonical.matching.deterministic import DeterministicMatcher


def _name(values: dict[str, Any]) -> str | None:
    name = values.get("name") or " ".join(filter(None, [values.get("first_name"), values.get("last_name")]))
    return " ".join(str(name).lower().split()) or None


class NameReviewMatcher(DeterministicMatcher):
    def keys(self, *, domain: str, values: dict[str, Any]) -> list[tuple[str, str]]:
        keys = super().keys(domain=domain, values=values)
        name = _name(values)
        return keys + ([("name", name)] if name else [])

    def match(self, *, domain: str, values: dict[str, Any], exclude_source_record: int | None = None) -> MatchOutcome:
        from canonical.models import MatchKey
        from canonical.services.golden import golden_survivor_ids

        ident = DeterministicMatcher()
        outcome = ident.match(domain=domain, values=values, exclude_source_record=exclude_source_record)
        if outcome.decision == "link":
            return outcome
        name = _name(values)
        if not name:
            return outcome
        rows = MatchKey.objects.filter(domain=domain, key_type="name", key_value=name)
        if exclude_source_record is not None:
            rows = rows.exclude(source_record_id=exclude_source_record)
        survivors = golden_survivor_ids(domain, set(rows.values_list("golden_id", flat=True)))
        if not survivors:
            return outcome
        candidates = [
            Candidate(
                golden_id=g,
                score=0.8,
                reason=f"same name '{name}', no shared identifier",
                comparisons=[FieldComparison("name", name, name, "exact", 2.5)],
            )
            for g in survivors
        ]
        return MatchOutcome(decision="review", candidates=candidates, reason=candidates[0].reason)


class NameCountryLinkMatcher(NameReviewMatcher):
    """A stricter rule set for re-match tests: same name and same country links; same name only is review."""

    def match(self, *, domain: str, values: dict[str, Any], exclude_source_record: int | None = None) -> MatchOutcome:
        from canonical.domains import get_domain

        outcome = super().match(domain=domain, values=values, exclude_source_record=exclude_source_record)
        if outcome.decision != "review":
            return outcome
        model = get_domain(domain).model
        for cand in outcome.candidates:
            country = model.objects.filter(pk=cand.golden_id).values_list("country", flat=True).first()
            if country and country == values.get("country"):
                reason = f"same name and country {country}"
                linked = Candidate(golden_id=cand.golden_id, score=0.97, reason=reason, comparisons=cand.comparisons)
                return MatchOutcome(decision="link", golden_id=cand.golden_id, candidates=[linked], reason=reason)
        return outcome
