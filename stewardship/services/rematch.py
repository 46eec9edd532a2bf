"""Batch re-match after a rule change: rebuild match keys, then re-match golden records partition by partition.

Golden records are partitioned by their smallest blocking key (crc32 of `key_type:key_value`, modulo the
number of partitions), so records that block together are mostly matched by the same worker and more
workers make the run faster. A partition is finished when all its golden records were examined; the run
records each finished partition, so an interrupted run resumes where it stopped. Above the matcher's
auto-merge threshold (decision `link`) records are merged with actor `job:match`; in the review zone a
review task is opened. A steward's not-a-match is never proposed or merged again.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from canonical.audit import Channel, audit_context
from canonical.domains import get_domain
from canonical.matching.base import get_matcher
from canonical.matching.base import matcher_values as _matcher_values
from canonical.matching.fuzzy import common_keys_forget
from canonical.models import GoldenStatus, MatchKey, SourceRecord, SourceStatus
from canonical.services.golden import golden_survivor_id, golden_values, live_sources
from stewardship.models import PENDING_REVIEW, KeysState, MatchRun, MatchRunStatus, ReviewTask

from .common import StewardshipError
from .decisions import golden_source_ids, not_a_match_excluded_goldens
from .merge import golden_record_merge
from .reviews import review_candidates_filter, review_task_open

JOB_ACTOR = "job:match"
KEY_BATCH = 1000


def run_actor(run: MatchRun) -> str:
    return f"{JOB_ACTOR}#{run.pk}"


def match_run_start(*, domain: str, partitions: int, actor: str = JOB_ACTOR) -> MatchRun:
    get_domain(domain)
    if partitions < 1:
        raise StewardshipError({"partitions": ["must be at least 1"]})
    with audit_context(actor=actor, channel=Channel.JOB, reason=f"batch re-match of {domain}") as ctx:
        return MatchRun.objects.create(domain=domain, partitions=partitions, actor=actor, request_id=ctx.request_id)


def match_run_resumable(*, domain: str) -> MatchRun | None:
    return MatchRun.objects.filter(domain=domain, status=MatchRunStatus.RUNNING).order_by("-started_at", "-id").first()


# --- keys ----------------------------------------------------------------------------------------------------


def match_key_source_ids(*, domain: str) -> list[int]:
    return list(SourceRecord.objects.filter(domain=domain).order_by("pk").values_list("pk", flat=True))


def match_keys_rebuild(*, domain: str, source_record_ids: Iterable[int]) -> int:
    """Recompute the MatchKey rows of these source records with the configured matcher. Returns rows changed."""
    spec = get_domain(domain)
    matcher = get_matcher()
    changed = 0
    with transaction.atomic():
        for sr in SourceRecord.objects.filter(domain=domain, pk__in=list(source_record_ids)).order_by("pk"):
            live = not sr.deleted and sr.status == SourceStatus.APPLIED and sr.golden_id is not None
            wanted = (
                {
                    (t, v[:255], sr.golden_id)
                    for t, v in matcher.keys(domain=domain, values=_matcher_values(spec, sr.values))
                }
                if live
                else set()
            )
            current = set(MatchKey.objects.filter(source_record=sr).values_list("key_type", "key_value", "golden_id"))
            if current == wanted:
                continue
            MatchKey.objects.filter(source_record=sr).delete()  # derived index rows: no history
            common_keys_forget(domain, current, wanted)
            MatchKey.objects.bulk_create(
                [MatchKey(domain=domain, key_type=t, key_value=v, golden_id=g, source_record=sr) for t, v, g in wanted]
            )
            changed += 1
    return changed


def match_keys_claim(*, run_id: int) -> bool:
    """Compare-and-set: True for the one process that rebuilds the keys of this run."""
    return MatchRun.objects.filter(pk=run_id, keys_state=KeysState.PENDING).update(keys_state=KeysState.RUNNING) == 1


def match_keys_done(*, run_id: int) -> None:
    MatchRun.objects.filter(pk=run_id).update(keys_state=KeysState.DONE, updated_at=timezone.now())


# --- partitions ----------------------------------------------------------------------------------------------


def _key_hash(key_type: str, key_value: str) -> int:
    return zlib.crc32(f"{key_type}:{key_value}".encode())


def partition_golden_ids(*, domain: str, partition: int, partitions: int) -> list[uuid.UUID]:
    """The active golden records of one partition, oldest first (a record belongs to its smallest key's block)."""
    smallest: dict[uuid.UUID, int] = {}
    for golden_id, key_type, key_value in (
        MatchKey.objects.filter(domain=domain)
        .values_list("golden_id", "key_type", "key_value")
        .iterator(chunk_size=5000)
    ):
        h = _key_hash(key_type, key_value)
        if h < smallest.get(golden_id, 1 << 33):
            smallest[golden_id] = h
    model = get_domain(domain).model
    active = model.objects.filter(status=GoldenStatus.ACTIVE).order_by("created_at", "pk").values_list("pk", flat=True)
    out = []
    for golden_id in active.iterator(chunk_size=5000):
        h = smallest.get(golden_id, zlib.crc32(str(golden_id).encode()))
        if h % partitions == partition:
            out.append(golden_id)
    return out


def _reverse_task_pending(domain: str, golden_id: uuid.UUID, candidate_ids: list[str]) -> bool:
    """A pending task of a candidate already proposes this record: do not open the mirror-image task."""
    for task in ReviewTask.objects.filter(domain=domain, golden_id__in=candidate_ids, status__in=PENDING_REVIEW):
        if str(golden_id) in task.candidate_ids:
            return True
    return False


def golden_record_rematch(*, domain: str, golden_id: uuid.UUID, run: MatchRun | None = None) -> str:
    """Match one golden record against the others again. Returns merged | review | none | skipped."""
    spec = get_domain(domain)
    record = spec.model.objects.filter(pk=golden_id).first()
    if record is None or record.status != GoldenStatus.ACTIVE:
        return "skipped"
    sources = live_sources(domain, golden_id)
    if not sources:
        return "skipped"
    outcome = get_matcher().match(domain=domain, values=golden_values(record), exclude_source_record=sources[0].pk)
    mine = golden_source_ids(domain, golden_id)
    label = f"run #{run.pk}" if run is not None else "re-match"
    if outcome.decision == "link" and outcome.golden_id is not None:
        target = golden_survivor_id(domain, outcome.golden_id)
        excluded = (
            not_a_match_excluded_goldens(domain=domain, source_record_ids=mine, golden_ids=[target])
            if target
            else set()
        )
        if target is not None and target != golden_id and target not in excluded:
            pair = list(spec.model.objects.filter(pk__in=[golden_id, target]).order_by("created_at", "pk"))
            survivor, other = pair[0], pair[1]
            golden_record_merge(
                domain=domain,
                survivor_id=survivor.pk,
                other_ids=[other.pk],
                reason=f"batch {label}: {outcome.reason or 'above the auto-merge threshold'}",
                actor=run_actor(run) if run is not None else JOB_ACTOR,
                channel=Channel.JOB,
            )
            return "merged"
        if target is None or target == golden_id:
            return "none"
    elif outcome.decision != "review":
        return "none"
    candidates = review_candidates_filter(
        domain=domain, golden_id=golden_id, source_record_ids=mine, candidates=outcome.candidates
    )
    if not candidates or _reverse_task_pending(domain, golden_id, [c["golden_id"] for c in candidates]):
        return "none"
    with audit_context(
        actor=run_actor(run) if run is not None else JOB_ACTOR, channel=Channel.JOB, reason=f"batch {label}: review"
    ):
        review_task_open(domain=domain, golden_id=golden_id, candidates=candidates)
    return "review"


def match_partition_run(*, run_id: int, partition: int) -> dict[str, int]:
    """Re-match every golden record of one partition, then mark the partition finished on the run."""
    run = MatchRun.objects.get(pk=run_id)
    counts = {"examined": 0, "merged": 0, "review": 0, "none": 0, "skipped": 0}
    if partition in run.finished_partitions:
        return counts
    with audit_context(actor=run_actor(run), channel=Channel.JOB, reason=f"batch re-match run #{run.pk}"):
        for golden_id in partition_golden_ids(domain=run.domain, partition=partition, partitions=run.partitions):
            with transaction.atomic():
                outcome = golden_record_rematch(domain=run.domain, golden_id=golden_id, run=run)
            counts["examined"] += 1
            counts[outcome] += 1
    with transaction.atomic():
        run = MatchRun.objects.select_for_update().get(pk=run_id)
        if partition not in run.finished_partitions:
            run.finished_partitions = sorted([*run.finished_partitions, partition])
            for k, v in counts.items():
                run.counts[k] = run.counts.get(k, 0) + v
            if len(run.finished_partitions) == run.partitions:
                run.status = MatchRunStatus.FINISHED
                run.finished_at = timezone.now()
            run.save()
    return counts
