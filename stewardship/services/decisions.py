"""Not-a-match decisions: stored per pair of source records, consulted before anything is proposed or merged."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db.models import Q

from canonical.audit import current_context
from canonical.models import SourceRecord
from stewardship.models import NotAMatch

from .common import real_user


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def golden_source_ids(domain: str, golden_id: uuid.UUID | str) -> list[int]:
    """Every source record that belongs to a golden record (live or not)."""
    return list(
        SourceRecord.objects.filter(domain=domain, golden_id=golden_id).order_by("pk").values_list("pk", flat=True)
    )


def not_a_match_pairs_between(source_ids_a: Iterable[int], source_ids_b: Iterable[int]) -> list[NotAMatch]:
    a, b = list(source_ids_a), list(source_ids_b)
    if not a or not b:
        return []
    return list(
        NotAMatch.objects.filter(is_active=True).filter(
            Q(source_record_a__in=a, source_record_b__in=b) | Q(source_record_a__in=b, source_record_b__in=a)
        )
    )


def not_a_match_excluded_goldens(
    *, domain: str, source_record_ids: Iterable[int], golden_ids: Iterable[uuid.UUID | str]
) -> set[uuid.UUID]:
    """The golden ids, among `golden_ids`, that a steward said are not the same as the given source records.

    For matchers and the review hook: a candidate is excluded when any active not-a-match pair spans one of
    `source_record_ids` and one of the candidate's source records.
    """
    mine = list(source_record_ids)
    wanted = {uuid.UUID(str(g)) for g in golden_ids}
    if not mine or not wanted:
        return set()
    rows = NotAMatch.objects.filter(is_active=True, domain=domain).filter(
        Q(source_record_a__in=mine) | Q(source_record_b__in=mine)
    )
    others = set()
    mine_set = set(mine)
    for a, b in rows.values_list("source_record_a", "source_record_b"):
        others.add(b if a in mine_set else a)
    if not others:
        return set()
    hit = SourceRecord.objects.filter(pk__in=others, golden_id__in=wanted).values_list("golden_id", flat=True)
    return set(hit)


def not_a_match_record(
    *,
    domain: str,
    source_ids_a: Iterable[int],
    source_ids_b: Iterable[int],
    reason: str,
    origin: str,
    user=None,
    review_task=None,
) -> list[NotAMatch]:
    """Store (or re-activate) a pair for every source record of one side against every one of the other.

    Runs in the caller's audit context; each created or re-activated row writes a history row.
    """
    actor = current_context().actor
    out = []
    for a in source_ids_a:
        for b in source_ids_b:
            if a == b:
                continue
            low, high = _pair(a, b)
            row = NotAMatch.objects.filter(source_record_a_id=low, source_record_b_id=high).first()
            if row is None:
                row = NotAMatch.objects.create(
                    domain=domain,
                    source_record_a_id=low,
                    source_record_b_id=high,
                    reason=reason,
                    origin=origin,
                    review_task=review_task,
                    created_by=actor,
                    created_by_user=real_user(user),
                )
            elif not row.is_active:
                row.is_active = True
                row.reason = reason
                row.origin = origin
                row.save()
            out.append(row)
    return out


def not_a_match_lift(*, pairs: Iterable[NotAMatch]) -> int:
    """Deactivate not-a-match pairs (a steward merged the records anyway). Saved one by one, for history."""
    lifted = 0
    for row in pairs:
        if row.is_active:
            row.is_active = False
            row.save()
            lifted += 1
    return lifted
