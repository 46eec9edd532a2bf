"""Review tasks: opened when the matcher is unsure (ingest hook, batch re-match); decided by stewards."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection, Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from canonical.audit import current_context
from canonical.domains import get_domain
from canonical.matching.base import Candidate, MatchOutcome
from canonical.models import GoldenStatus, SourceRecord
from canonical.services.golden import golden_survivor_id, golden_survivor_map, to_json
from canonical.services.ingest import match_lock
from stewardship.models import PENDING_REVIEW, MergeDecision, ReviewStatus, ReviewTask

from .common import NotFound, StewardshipError, real_user, require_reason, steward_action
from .decisions import golden_source_ids, not_a_match_excluded_goldens, not_a_match_record
from .merge import golden_record_merge


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v) for v in value]
    value = to_json(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def candidate_json(candidate: Candidate, *, golden_id: uuid.UUID) -> dict:
    """A matcher Candidate as stored on a review task (JSON-safe, score as float, reason one line)."""
    return {
        "golden_id": str(golden_id),
        "score": float(candidate.score),
        "reason": " ".join(str(candidate.reason or "").split())[:255],
        "comparisons": [_json_safe(dataclasses.asdict(c)) for c in candidate.comparisons],
    }


def review_survivors(domain: str, golden_ids: Iterable[uuid.UUID | str]) -> tuple[dict[uuid.UUID, uuid.UUID], set]:
    """What review_candidates_filter reads of these golden ids: {id: its survivor}, and the survivors not merged
    (one query per merge-chain step, the statuses read with it: one query where nothing was merged)."""
    statuses: dict = {}
    survivors = golden_survivor_map(domain, golden_ids, statuses=statuses)
    return survivors, {s for s in set(survivors.values()) if statuses[s] != GoldenStatus.MERGED}


def review_candidates_filter(
    *,
    domain: str,
    golden_id: uuid.UUID | None,
    source_record_ids: list[int],
    candidates: Iterable[Candidate],
    fresh: Collection[uuid.UUID] = (),
    known: tuple[dict[uuid.UUID, uuid.UUID], set] | None = None,
) -> list[dict]:
    """Candidates worth a steward's time: live survivors, not the record itself, not excluded by a not-a-match.

    `fresh`: golden records made in memory and not written yet (the bulk ingest path's): active, their own
    survivors, not looked up. `known`: review_survivors of (at least) the other ids here, read by the caller
    for many calls at once (left unchanged)."""
    best: dict[uuid.UUID, dict] = {}
    candidates = list(candidates)
    if known is None:  # survivors and their status read for all candidates at once
        wanted = [g for g in (golden_id, *(c.golden_id for c in candidates)) if g and uuid.UUID(str(g)) not in fresh]
        known = review_survivors(domain, wanted) if wanted else ({}, set())
    survivors, live = known

    def survivor_of(g) -> uuid.UUID | None:
        g = uuid.UUID(str(g))
        return g if g in fresh else survivors.get(g)

    own = survivor_of(golden_id) if golden_id else None
    for cand in candidates:
        survivor = survivor_of(cand.golden_id) if cand.golden_id else None
        if survivor is None or survivor == own:
            continue
        if survivor not in live and survivor not in fresh:
            continue
        item = candidate_json(cand, golden_id=survivor)
        if survivor not in best or best[survivor]["score"] < item["score"]:
            best[survivor] = item
    excluded = not_a_match_excluded_goldens(domain=domain, source_record_ids=source_record_ids, golden_ids=best)
    kept = [c for g, c in best.items() if g not in excluded]
    return sorted(kept, key=lambda c: (-c["score"], c["golden_id"]))


def review_priority(candidates: list[dict]) -> int:
    """Higher first: the best candidate's score in hundredths (the score band)."""
    return int(round(candidates[0]["score"] * 100)) if candidates else 0


def review_task_open(
    *, domain: str, golden_id: uuid.UUID, candidates: list[dict], source_record: SourceRecord | None = None
) -> ReviewTask | None:
    """Open the review task of a golden record, or refresh its pending one (never a second). None if no candidate.

    `candidates` are already filtered (see review_candidates_filter). Runs in the caller's audit context.
    """
    if not candidates:
        return None
    with transaction.atomic():
        task = (
            ReviewTask.objects.select_for_update()
            .filter(domain=domain, golden_id=golden_id, status__in=PENDING_REVIEW)
            .first()
        )
        if task is not None:
            if sorted(task.candidates, key=lambda c: c["golden_id"]) != sorted(
                candidates, key=lambda c: c["golden_id"]
            ):
                task.candidates = candidates
                task.score = candidates[0]["score"]
                task.reason = candidates[0]["reason"]
                task.priority = review_priority(candidates)
                task.save()
            return task
        return ReviewTask.objects.create(
            domain=domain,
            golden_id=golden_id,
            source_record=source_record,
            candidates=candidates,
            score=candidates[0]["score"],
            reason=candidates[0]["reason"],
            priority=review_priority(candidates),
            created_by=current_context().actor,
        )


def review_task_open_for_match(*, source_record: SourceRecord, outcome: MatchOutcome) -> ReviewTask | None:
    """The ingest hook: the matcher said `review` and the record got its own golden record; ask a steward."""
    candidates = review_candidates_filter(
        domain=source_record.domain,
        golden_id=source_record.golden_id,
        source_record_ids=[source_record.pk],
        candidates=outcome.candidates,
    )
    return review_task_open(
        domain=source_record.domain,
        golden_id=source_record.golden_id,
        candidates=candidates,
        source_record=source_record,
    )


# --- decisions -----------------------------------------------------------------------------------------------


def _task_for_decision(task_id: Any) -> ReviewTask:
    try:
        pk = int(task_id)
    except (TypeError, ValueError):
        raise StewardshipError({"task": [f"'{task_id}' is not a review task id"]})
    task = ReviewTask.objects.filter(pk=pk).first()
    if task is None:
        raise NotFound({"task": [f"no review task {pk}"]})
    if not task.is_pending:
        raise StewardshipError({"status": [f"review task {pk} is already {task.get_status_display().lower()}"]})
    return task


def _chosen_candidates(task: ReviewTask, candidate_ids: list | None, *, default_all: bool) -> list[str]:
    if candidate_ids is None:
        ids = task.candidate_ids if default_all else task.candidate_ids[:1]
    else:
        ids = [str(c) for c in candidate_ids]
        unknown = [c for c in ids if c not in task.candidate_ids]
        if unknown:
            raise StewardshipError({"candidates": [f"{', '.join(unknown)} is not a candidate of this task"]})
    if not ids:
        raise StewardshipError({"candidates": ["choose at least one candidate"]})
    return ids


def _still_pending(task: ReviewTask) -> ReviewTask:
    """The task locked, inside the decision's transaction, and still pending: another steward's decision that
    committed after this one read the task is not overwritten (a decided task was saved back as open)."""
    locked = ReviewTask.objects.select_for_update().get(pk=task.pk)
    if not locked.is_pending:
        raise StewardshipError(
            {"status": [f"review task {task.pk} was {locked.get_status_display().lower()} meanwhile; reload it"]}
        )
    return locked


def _decide(task: ReviewTask, status: str, note: str, user) -> None:
    task.status = status
    task.note = note
    task.decided_at = timezone.now()
    task.decided_by = current_context().actor
    task.decided_by_user = real_user(user)
    task.save()


def review_task_merge(
    *,
    task_id: int,
    reason: str,
    user=None,
    candidate_ids: list | None = None,
    survivor_id: uuid.UUID | str | None = None,
    field_choices: dict | None = None,
    actor: str | None = None,
    channel: str | None = None,
) -> MergeDecision:
    """Accept a review task: merge the record under review with the chosen candidates (default: the best one).

    The oldest record survives unless `survivor_id` says otherwise (so golden ids stay stable). Candidates not
    chosen stay proposed, on a task of the survivor.
    """
    errors: dict[str, list[str]] = {}
    require_reason(reason, errors, what="a merge")
    task = _task_for_decision(task_id)
    if errors:
        raise StewardshipError(errors)
    chosen = _chosen_candidates(task, candidate_ids, default_all=False)
    domain = task.domain
    model = get_domain(domain).model
    group = []
    mine = golden_survivor_id(domain, task.golden_id)
    for gid in chosen:
        survivor = golden_survivor_id(domain, gid)
        if (
            survivor is not None
            and str(survivor) != str(gid)
            and survivor != mine
            and str(survivor) not in {str(c) for c in task.candidate_ids}
        ):
            # merged into a record the task never proposed: the steward has not seen it
            raise StewardshipError(
                {"candidates": [f"{gid} was merged into {survivor} since this task was opened; reload the task"]}
            )
    for gid in [task.golden_id, *chosen]:
        survivor = golden_survivor_id(domain, gid)
        if survivor is not None and survivor not in group:
            group.append(survivor)
    if len(group) < 2:
        raise StewardshipError({"candidates": ["these records are already one golden record"]})
    if survivor_id is not None:
        try:
            survivor = golden_survivor_id(domain, uuid.UUID(str(survivor_id))) if str(survivor_id) else None
        except ValueError:
            raise StewardshipError(
                {"survivor_id": [f"{str(survivor_id)[:64]!r} is not a golden id (a UUID)"]}
            ) from None
        if survivor not in group:
            raise StewardshipError({"survivor_id": ["must be the record under review or one of the chosen candidates"]})
    else:
        survivor = model.objects.filter(pk__in=group).order_by("created_at", "pk").values_list("pk", flat=True)[0]
    with steward_action(reason=reason.strip(), user=user, actor=actor, channel=channel):
        match_lock(domain)  # golden_record_merge's, taken before the task's row lock (match locks come first)
        task = _still_pending(task)
        decision = golden_record_merge(
            domain=domain,
            survivor_id=survivor,
            other_ids=[g for g in group if g != survivor],
            reason=reason,
            user=user,
            actor=actor,
            channel=channel,
            field_choices=field_choices,
            review_task=task,
        )
        task.refresh_from_db()
        _decide(task, ReviewStatus.MERGED, reason.strip(), user)
        rest = [c for c in task.candidates if c["golden_id"] not in chosen]
        if rest:
            review_task_open(domain=domain, golden_id=survivor, candidates=rest)
    return decision


def review_task_not_a_match(*, task_id: int, reason: str, user=None, candidate_ids: list | None = None) -> ReviewTask:
    """Decide that the record under review is not the same as the candidates (default: all of them).

    Stored as pairs of source records, so it is never proposed again, even after later merges.
    """
    errors: dict[str, list[str]] = {}
    require_reason(reason, errors, what="a not-a-match decision")
    task = _task_for_decision(task_id)
    if errors:
        raise StewardshipError(errors)
    chosen = _chosen_candidates(task, candidate_ids, default_all=True)
    domain = task.domain
    with steward_action(reason=reason.strip(), user=user):
        task = _still_pending(task)
        mine_id = golden_survivor_id(domain, task.golden_id) or task.golden_id
        mine = golden_source_ids(domain, mine_id)
        for gid in chosen:
            theirs_id = golden_survivor_id(domain, gid) or gid
            if str(theirs_id) == str(mine_id):
                continue  # merged into the record under review since: no pair inside one golden record
            theirs = golden_source_ids(domain, theirs_id)
            not_a_match_record(
                domain=domain,
                source_ids_a=mine,
                source_ids_b=theirs,
                reason=reason.strip(),
                origin="review",
                user=user,
                review_task=task,
            )
        rest = [c for c in task.candidates if c["golden_id"] not in chosen]
        if rest:
            task.candidates = rest
            task.score = rest[0]["score"]
            task.reason = rest[0]["reason"]
            task.priority = review_priority(rest)
            task.note = reason.strip()
            task.save()
        else:
            _decide(task, ReviewStatus.NOT_A_MATCH, reason.strip(), user)
    return task


def review_task_defer(*, task_id: int, note: str, user=None) -> ReviewTask:
    """Put a task aside with a note (it stays in the queue, filtered as deferred)."""
    errors: dict[str, list[str]] = {}
    if not (note or "").strip():
        errors["note"] = ["a note is required to defer a task"]
    task = _task_for_decision(task_id)
    if errors:
        raise StewardshipError(errors)
    with steward_action(reason=note.strip(), user=user):
        task = _still_pending(task)
        task.status = ReviewStatus.DEFERRED
        task.note = note.strip()
        task.save()
    return task


def review_task_assign(*, task_id: int, assignee, user=None) -> ReviewTask:
    """Give a task to a steward (or take it back from everyone with `assignee=None`)."""
    task = _task_for_decision(task_id)
    who = assignee.get_username() if assignee is not None else "nobody"
    with steward_action(reason=f"assigned to {who}", user=user):
        task = _still_pending(task)
        task.assignee = assignee
        task.save()
    return task


def review_tasks_bulk_accept(*, task_ids: list[int], reason: str, user=None) -> list[dict]:
    """Accept each task's best candidate. One savepoint per task: a refused task does not stop the others."""
    errors: dict[str, list[str]] = {}
    require_reason(reason, errors, what="a merge")
    if not task_ids:
        errors["tasks"] = ["choose at least one task"]
    if errors:
        raise StewardshipError(errors)
    results = []
    for task_id in task_ids:
        try:
            with transaction.atomic():
                decision = review_task_merge(task_id=task_id, reason=reason, user=user)
            results.append(
                {"task": task_id, "merged": True, "merge": decision.pk, "survivor_id": str(decision.survivor_id)}
            )
        except StewardshipError as exc:
            results.append({"task": task_id, "merged": False, "errors": exc.errors})
    return results
