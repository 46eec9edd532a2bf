"""Survivorship: compute a golden record's values from its live source records.

Per field: steward override > owning system (ownership rules) > most recent > most complete > system
priority. The owner's value wins whenever the owner has sent the field (even to clear it); only when the
owner has never sent it does the best other value fill in, and the provenance says so (rule `fallback`).
A non-owner whose value differs from the owner's is recorded as a conflict on its source record.

This module is pure: it takes plain data and returns plain data, so it is tested without a database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from canonical.domains import DomainSpec


@dataclass(frozen=True)
class Contribution:
    """What one live source record contributes: its normalised values (ref fields as golden ids)."""

    source_record_id: int
    system: str
    source_id: str
    updated_at: dt.datetime
    values: dict[str, Any]


@dataclass
class Survival:
    values: dict[str, Any]
    provenance: dict[str, dict]
    conflicts: dict[int, dict[str, dict]] = field(default_factory=dict)  # source_record_id -> field -> detail


def _present(value: Any) -> bool:
    return value is not None and value != [] and value != ""


def _completeness(c: Contribution) -> int:
    return sum(1 for v in c.values.values() if _present(v))


def _rank(c: Contribution, priorities: dict[str, int]) -> tuple:
    # Highest first: most recent, most complete, then lowest priority number, then a stable id.
    return (-c.updated_at.timestamp(), -_completeness(c), priorities.get(c.system, 1000), c.system, c.source_id)


def _provenance(c: Contribution, rule: str, at: str) -> dict:
    return {"system": c.system, "source_record": c.source_record_id, "source_id": c.source_id, "rule": rule, "at": at}


def survive(
    *,
    spec: DomainSpec,
    contributions: list[Contribution],
    owners: dict[str, str],
    overrides: dict[str, Any],
    priorities: dict[str, int] | None = None,
) -> Survival:
    priorities = priorities or {}
    ranked = sorted(contributions, key=lambda c: _rank(c, priorities)) if len(contributions) > 1 else contributions
    at = {id(c): c.updated_at.isoformat() for c in ranked}  # each contribution's time as provenance writes it, once
    values: dict[str, Any] = {}
    provenance: dict[str, dict] = {}
    conflicts: dict[int, dict[str, dict]] = {}
    for name in spec.field_names:
        if name in overrides:
            values[name] = overrides[name]
            provenance[name] = {"system": None, "source_record": None, "source_id": None, "rule": "steward_override"}
            continue
        owner = owners.get(name)
        owner_sources = [c for c in ranked if c.system == owner and name in c.values]
        winner: Contribution | None = None
        rule = ""
        if owner_sources:
            winner, rule = owner_sources[0], "owner"
        else:
            for c in ranked:
                if _present(c.values.get(name)):
                    winner = c
                    rule = "fallback" if owner else "recency"
                    break
        if winner is None:
            values[name] = [] if spec.get(name).kind in ("list_str", "lines") else None
            continue
        values[name] = winner.values.get(name)
        provenance[name] = _provenance(winner, rule, at[id(winner)])
        if rule == "owner":
            for c in ranked:
                if c.system == owner or name not in c.values:
                    continue
                theirs = c.values[name]
                if _present(theirs) and theirs != values[name]:
                    conflicts.setdefault(c.source_record_id, {})[name] = {
                        "value": theirs,
                        "owner": owner,
                        "owner_value": values[name],
                    }
    return Survival(values=values, provenance=provenance, conflicts=conflicts)


def missing_required(spec: DomainSpec, values: dict[str, Any]) -> list[str]:
    return [name for name in spec.required_fields if not _present(values.get(name))]
