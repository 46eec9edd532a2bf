"""The matcher interface the ingest pipeline calls."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

Decision = Literal["link", "review", "new"]


@dataclass
class FieldComparison:
    field: str
    value_a: Any
    value_b: Any
    level: str
    weight: float


@dataclass
class Candidate:
    golden_id: uuid.UUID | None
    score: float
    reason: str
    comparisons: list[FieldComparison] = field(default_factory=list)


_UNREAD: Any = object()


class ScoredCandidate(Candidate):
    """A Candidate whose reason and per-field explanation come from a scored pair (scoring.Scored) on first read:
    most candidates of a decision are never shown, and building their explanation costs more than scoring them.
    It reads, compares, copies and pickles as the plain Candidate it stands for."""

    def __init__(
        self,
        golden_id: uuid.UUID | None,
        score: float,
        reason: str = _UNREAD,
        comparisons: list[FieldComparison] = _UNREAD,
        *,
        scored: Any = None,
    ) -> None:
        self.golden_id = golden_id
        self.score = score
        self._scored = scored
        self._reason = reason
        self._comparisons = [] if comparisons is _UNREAD and scored is None else comparisons

    @property
    def reason(self) -> str:
        if self._reason is _UNREAD:
            self._reason = self._scored.reason if self._scored is not None else ""
        return self._reason

    @reason.setter
    def reason(self, value: str) -> None:
        self._reason = value

    @property
    def comparisons(self) -> list[FieldComparison]:
        if self._comparisons is _UNREAD:
            self._comparisons = self._scored.comparisons
        return self._comparisons

    @comparisons.setter
    def comparisons(self, value: list[FieldComparison]) -> None:
        self._comparisons = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Candidate):
            return NotImplemented
        return (self.golden_id, self.score, self.reason, self.comparisons) == (
            other.golden_id,
            other.score,
            other.reason,
            other.comparisons,
        )

    __hash__ = None  # type: ignore[assignment]  # as the dataclass's

    def __reduce__(self):
        return (Candidate, (self.golden_id, self.score, self.reason, self.comparisons))


@dataclass
class MatchOutcome:
    decision: Decision
    golden_id: uuid.UUID | None = None
    candidates: list[Candidate] = field(default_factory=list)
    reason: str = ""


class Matcher(Protocol):
    def keys(self, *, domain: str, values: dict[str, Any]) -> list[tuple[str, str]]:
        """Normalised (key_type, key_value) pairs stored in the MatchKey index for a source record."""

    def match(self, *, domain: str, values: dict[str, Any], exclude_source_record: int | None = None) -> MatchOutcome:
        """Decide which golden record these normalised values belong to."""

    def explain(self, *, domain: str, values_a: dict[str, Any], values_b: dict[str, Any]) -> Candidate:
        """Score two records against each other, field by field (for the explain endpoint and review tasks)."""


@cache
def _matcher_class(path: str):
    return import_string(path)


def get_matcher() -> Matcher:
    return _matcher_class(settings.MDM_MATCHER)()


def matcher_values(spec, values: dict[str, Any]) -> dict[str, Any]:
    """Normalised source values as every matcher reads them: references as golden id strings (None while
    unresolved), every other field as it is."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        f = spec.get(name)
        if f is not None and f.kind == "ref" and isinstance(value, dict):
            out[name] = value.get("golden_id")
        else:
            out[name] = value
    return out
