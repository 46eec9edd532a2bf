"""Merge and unmerge golden records, with a log that lets an unmerge put back exactly what a merge moved.

A merge moves every source record, cross-reference and match key of the retired records to the survivor,
retires them (`merged`, `merged_into` = survivor, so every read of a retired id leads to the survivor),
moves the references that other golden records hold to them, and recomputes the survivor. An unmerge
splits one source record out again — into the golden record it came from when that record was retired by a
merge (restored to active, with the references that moved with it and those sent naming it by golden id while
it was merged), otherwise into a new one — and records a not-a-match so the two are not merged again
automatically. Every step writes history and outbox events.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from canonical.audit import current_context
from canonical.domains import DOMAINS, DomainSpec, FieldSpec, get_domain
from canonical.models import (
    ChangeEventType,
    CrossReference,
    DataException,
    ExceptionStatus,
    FieldOverride,
    GoldenStatus,
    MatchKey,
    SourceRecord,
)
from canonical.services.exceptions import exception_close
from canonical.services.golden import (
    change_event_write,
    golden_record_create,
    golden_record_recompute,
    golden_survivor_id,
    golden_values,
)
from canonical.services.ingest import match_lock
from canonical.validation import FieldError, clean_value
from stewardship.models import (
    PENDING_REVIEW,
    MergeDecision,
    MergeMove,
    MergeReference,
    ReferenceVia,
    ReviewStatus,
    ReviewTask,
)
from stewardship.services.overrides import OverrideError, field_override_set

from .common import NotFound, StewardshipError, real_user, require_reason, steward_action
from .decisions import golden_source_ids, not_a_match_lift, not_a_match_pairs_between, not_a_match_record


class MergeError(StewardshipError):
    pass


@dataclass
class UnmergeResult:
    golden_id: uuid.UUID  # where the source record went
    from_golden_id: uuid.UUID  # the golden record it was split out of
    restored: bool  # True: the golden record it had before a merge came back; False: a new (or rejoined) one
    created: bool
    moved_references: list[dict] = field(default_factory=list)


def referencing_fields(domain: str) -> list[tuple[DomainSpec, FieldSpec]]:
    """Every (domain, reference field) of the canonical model whose target is `domain` (from DOMAINS)."""
    return [(spec, f) for spec in DOMAINS.values() for f in spec.ref_fields if f.ref_domain == domain]


def _as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def _bump(record, reason: str) -> None:
    record.version += 1
    record._change_reason = reason
    record.save()


# --- merge ---------------------------------------------------------------------------------------------------


def _merge_validate(
    *, domain: str, survivor_id: Any, other_ids: Any, reason: str, field_choices: Any, allow_not_a_match: bool
) -> tuple[DomainSpec, uuid.UUID, list[uuid.UUID], dict]:
    errors: dict[str, list[str]] = {}
    if domain not in DOMAINS:
        raise MergeError({"domain": [f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}"]})
    spec = get_domain(domain)
    model = spec.model
    require_reason(reason, errors, what="a merge")
    survivor = _as_uuid(survivor_id)
    if survivor is None:
        errors.setdefault("survivor_id", []).append(f"'{survivor_id}' is not a golden id (UUID)")
    else:
        row = model.objects.filter(pk=survivor).values("status", "merged_into_id").first()
        if row is None:
            raise NotFound({"survivor_id": [f"no {domain} with id {survivor}"]})
        if row["status"] == GoldenStatus.MERGED:
            errors.setdefault("survivor_id", []).append(
                f"{domain} {survivor} is itself merged into {row['merged_into_id']}; merge into that record instead"
            )
    others: list[uuid.UUID] = []
    if not isinstance(other_ids, (list, tuple)) or not other_ids:
        errors.setdefault("others", []).append("give at least one golden id to merge into the survivor")
        other_ids = []
    for raw in other_ids:
        other = _as_uuid(raw)
        if other is None:
            errors.setdefault("others", []).append(f"'{raw}' is not a golden id (UUID)")
            continue
        if other in others:
            continue
        if other == survivor:
            errors.setdefault("others", []).append(f"{other} is the survivor: a record cannot be merged into itself")
            continue
        row = model.objects.filter(pk=other).values("status", "merged_into_id").first()
        if row is None:
            other_domains = [d for d, s in DOMAINS.items() if d != domain and s.model.objects.filter(pk=other).exists()]
            hint = f" (it is a {other_domains[0]})" if other_domains else ""
            errors.setdefault("others", []).append(f"no {domain} with id {other}{hint}")
            continue
        if row["status"] == GoldenStatus.MERGED:
            errors.setdefault("others", []).append(f"{domain} {other} is already merged into {row['merged_into_id']}")
            continue
        others.append(other)
    choices: dict = {}
    if field_choices not in (None, {}):
        if not isinstance(field_choices, dict):
            errors.setdefault("field_choices", []).append("must be an object of field name → value")
        else:
            allowed = {str(survivor), *(str(o) for o in others)}
            for name, value in field_choices.items():
                fspec = spec.get(name)
                if fspec is None:
                    errors.setdefault("field_choices", []).append(f"unknown field '{name}' for {domain}")
                    continue
                if isinstance(value, dict) and set(value) == {"from"}:
                    if str(value["from"]) not in allowed:
                        errors.setdefault("field_choices", []).append(
                            f"{name}: 'from' must be the survivor or one of the records merged"
                        )
                        continue
                    value = golden_values(model.objects.get(pk=value["from"]))[name]
                if fspec.kind == "ref" and isinstance(value, str):
                    value = {"golden_id": value}
                try:
                    clean = clean_value(fspec, value, system="", country=None)
                except FieldError as exc:
                    errors.setdefault("field_choices", []).append(f"{name}: {exc}")
                    continue
                if fspec.kind == "ref" and fspec.ref_domain == domain and isinstance(clean, dict):
                    target = _as_uuid(clean.get("golden_id"))
                    if target is not None and (golden_survivor_id(domain, target) or target) in {survivor, *others}:
                        errors.setdefault("field_choices", []).append(
                            f"{name}: {target} is one of the records merged: a record cannot refer to itself"
                        )
                        continue
                choices[name] = value
    if survivor is not None and others and not errors and not allow_not_a_match:
        survivor_sources = golden_source_ids(domain, survivor)
        for other in others:
            pairs = not_a_match_pairs_between(survivor_sources, golden_source_ids(domain, other))
            if pairs:
                errors.setdefault("others", []).append(
                    f"a steward decided {other} is not a match for {survivor} ({pairs[0].reason}); "
                    "pass allow_not_a_match to merge anyway"
                )
    if errors:
        raise MergeError(errors)
    return spec, survivor, others, choices


def _move_source_records(decision: MergeDecision, domain: str, retired: uuid.UUID, survivor: uuid.UUID) -> None:
    moved_xrefs = set()
    # the keys of the retired record's source records (derived, no history; their golden_id has no index of its own)
    moved = SourceRecord.objects.filter(domain=domain, golden_id=retired)
    MatchKey.objects.filter(source_record__in=moved).update(golden_id=survivor)
    for sr in moved.order_by("pk"):
        xref = CrossReference.objects.filter(source_record=sr).first()
        MergeMove.objects.create(
            merge=decision, source_record=sr, xref=xref, from_golden_id=retired, to_golden_id=survivor
        )
        SourceRecord.objects.filter(pk=sr.pk).update(golden_id=survivor)  # not history-tracked
    for xref in CrossReference.objects.filter(domain=domain, golden_id=retired).order_by("pk"):
        if xref.source_record_id is None:
            MergeMove.objects.create(merge=decision, xref=xref, from_golden_id=retired, to_golden_id=survivor)
        xref.golden_id = survivor
        xref.save()  # one by one: history for every cross-reference
        moved_xrefs.add(xref.pk)


def _move_references(decision: MergeDecision, domain: str, retired: list[uuid.UUID], survivor: uuid.UUID) -> None:
    """Point every other golden record that references a retired record at the survivor, and log each move."""
    retired_str = {str(r) for r in retired}
    for ref_spec, fspec in referencing_fields(domain):
        model = ref_spec.model
        touched: dict[uuid.UUID, list[MergeReference]] = {}
        overrides = FieldOverride.objects.filter(domain=ref_spec.name, field=fspec.name, is_active=True)
        for ov in overrides:
            if str(ov.value) in retired_str:
                log = MergeReference.objects.create(
                    merge=decision,
                    domain=ref_spec.name,
                    golden_id=ov.golden_id,
                    field=fspec.name,
                    from_golden_id=ov.value,
                    to_golden_id=survivor,
                    via=ReferenceVia.OVERRIDE,
                    override=ov,
                )
                ov.value = str(survivor)
                ov.save()
                touched.setdefault(ov.golden_id, []).append(log)
        rows = model.objects.filter(**{f"{fspec.name}_id__in": retired}).exclude(status=GoldenStatus.MERGED)
        for golden_id, target in rows.values_list("pk", f"{fspec.name}_id"):
            if golden_id in touched:
                continue
            log = MergeReference.objects.create(
                merge=decision,
                domain=ref_spec.name,
                golden_id=golden_id,
                field=fspec.name,
                from_golden_id=target,
                to_golden_id=survivor,
            )
            touched.setdefault(golden_id, []).append(log)
        for golden_id, logs in touched.items():
            record, _ = golden_record_recompute(domain=ref_spec.name, golden_id=golden_id)
            if getattr(record, f"{fspec.name}_id") in retired:
                # No live source to recompute from (inactive record): move the reference itself.
                setattr(record, f"{fspec.name}_id", survivor)
                _bump(record, current_context().reason)
                change_event_write(
                    record=record, event_type=ChangeEventType.UPDATED, changed_fields=[fspec.name], origin_system=None
                )
                for log in logs:
                    log.via = ReferenceVia.DIRECT
                    log.save()


def _review_tasks_after_merge(
    domain: str, survivor: uuid.UUID, retired: list[uuid.UUID], decided: ReviewTask | None
) -> None:
    retired_str = {str(r) for r in retired}
    tasks = ReviewTask.objects.filter(domain=domain, status__in=PENDING_REVIEW, golden_id__in=[survivor, *retired])
    if decided is not None:
        tasks = tasks.exclude(pk=decided.pk)
    for task in tasks:
        if task.golden_id != survivor:
            task.status = ReviewStatus.CLOSED
            task.note = f"closed: {task.golden_id} was merged into {survivor}"
            task.decided_at = timezone.now()
            task.decided_by = current_context().actor
            task.save()
            continue
        # a candidate merged into this record now or earlier (A into C, then C into this one) is part of it
        remaining = [
            c
            for c in task.candidates
            if c["golden_id"] not in retired_str
            and (_as_uuid(c["golden_id"]) is None or golden_survivor_id(domain, _as_uuid(c["golden_id"])) != survivor)
        ]
        if remaining == task.candidates:
            continue
        if remaining:
            task.candidates = remaining
            task.score = remaining[0]["score"]
            task.reason = remaining[0]["reason"][:255]
        else:
            task.status = ReviewStatus.CLOSED
            task.note = "closed: every candidate was merged into this record"
            task.decided_at = timezone.now()
            task.decided_by = current_context().actor
        task.save()


def _recomputed_once(model, domain: str, version: int, golden_id: uuid.UUID, reason: str) -> tuple[Any, list[str]]:
    """Recompute a record a merge or unmerge changed, as one new version, and return it with the fields the
    recompute changed: the caller publishes it as one event. `version` is the record's version before the
    operation."""
    _, fields = golden_record_recompute(domain=domain, golden_id=golden_id, publish=False, reason=reason)
    record = model.objects.get(pk=golden_id)
    if record.version == version:  # nothing to recompute: the operation itself is the change
        _bump(record, reason)
    return record, fields


def _retired_exceptions_close(domain: str, retired: uuid.UUID, survivor: uuid.UUID) -> None:
    """A retired record's own open exceptions (an `incomplete` one, say) no longer describe a live record: resolved,
    saying where it went. Its source records' exceptions go with them to the survivor."""
    kinds = (
        DataException.objects.filter(domain=domain, golden_id=retired, source_record=None, status=ExceptionStatus.OPEN)
        .values_list("kind", flat=True)
        .distinct()
    )
    for kind in list(kinds):
        exception_close(kind=kind, golden_id=retired, note=f"{domain} {retired} was merged into {survivor}")


def golden_record_merge(
    *,
    domain: str,
    survivor_id: uuid.UUID | str,
    other_ids: list[uuid.UUID | str],
    reason: str,
    user=None,
    actor: str | None = None,
    channel: str | None = None,
    field_choices: dict[str, Any] | None = None,
    review_task: ReviewTask | None = None,
    allow_not_a_match: bool = False,
) -> MergeDecision:
    """Merge `other_ids` into `survivor_id`. Raises MergeError (field messages) before writing anything.

    `field_choices` pins survivor fields as steward overrides: `{field: value}` or `{field: {"from": golden_id}}`
    (take the value that one of the merged records holds). A person merges as a steward (`user`); a batch run
    passes `actor` and `channel=job`.
    """
    spec, survivor, others, choices = _merge_validate(
        domain=domain,
        survivor_id=survivor_id,
        other_ids=other_ids,
        reason=reason,
        field_choices=field_choices,
        allow_not_a_match=allow_not_a_match,
    )
    reason = reason.strip()
    model = spec.model
    with steward_action(reason=reason, user=user, actor=actor, channel=channel) as ctx:
        # the domain's match locks before any row lock: an ingest locks a source record, then its golden record;
        # a merge locks golden records, then moves their source records (ingest.py: match_lock)
        match_lock(domain)
        locked = list(model.objects.select_for_update().filter(pk__in=[survivor, *others]).order_by("pk"))
        if any(r.status == GoldenStatus.MERGED for r in locked):  # lost a race with another merge
            raise MergeError({"others": ["a record was merged by someone else meanwhile; reload and try again"]})
        if allow_not_a_match:
            survivor_sources = golden_source_ids(domain, survivor)
            for other in others:
                not_a_match_lift(pairs=not_a_match_pairs_between(survivor_sources, golden_source_ids(domain, other)))
        decision = MergeDecision.objects.create(
            domain=domain,
            survivor_id=survivor,
            retired_ids=[str(o) for o in others],
            field_choices=choices,
            reason=reason,
            actor=ctx.actor,
            channel=ctx.channel,
            request_id=ctx.request_id,
            user=real_user(user),
            review_task=review_task,
        )
        by_id = {r.pk: r for r in locked}
        for other in others:
            _move_source_records(decision, domain, other, survivor)
            record = by_id[other]
            record.status = GoldenStatus.MERGED
            record.merged_into_id = survivor
            _bump(record, reason)
            change_event_write(
                record=record,
                event_type=ChangeEventType.MERGED,
                changed_fields=["status", "merged_into"],
                origin_system=None,
                extra={"survivor_id": str(survivor), "merge_id": decision.pk},
            )
            _retired_exceptions_close(domain, other, survivor)
        for name, value in choices.items():
            try:
                field_override_set(
                    domain=domain,
                    golden_id=survivor,
                    field=name,
                    value=value,
                    reason=reason,
                    user=real_user(user),
                    recompute=False,  # recomputed once below, with the sources it gains
                )
            except OverrideError as exc:  # validated above; kept so a surprise is still a 400, never a 500
                raise MergeError({"field_choices": [f"{name}: {m}" for msgs in exc.errors.values() for m in msgs]})
            decision.override_ids.append(
                FieldOverride.objects.get(domain=domain, golden_id=survivor, field=name, is_active=True).pk
            )
        if decision.override_ids:
            decision.save(update_fields=["override_ids"])
        record, changed = _recomputed_once(model, domain, by_id[survivor].version, survivor, reason)
        change_event_write(
            record=record,
            event_type=ChangeEventType.MERGED,
            changed_fields=sorted(set(changed) | {"sources"}),
            origin_system=None,
            extra={"merged_ids": decision.retired_ids, "merge_id": decision.pk},
        )
        _move_references(decision, domain, others, survivor)
        _review_tasks_after_merge(domain, survivor, others, review_task)
    return decision


# --- unmerge -------------------------------------------------------------------------------------------------


def _unmerge_validate(*, domain: str, source_record_id: Any, reason: str) -> tuple[DomainSpec, SourceRecord]:
    errors: dict[str, list[str]] = {}
    if domain not in DOMAINS:
        raise MergeError({"domain": [f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}"]})
    spec = get_domain(domain)
    require_reason(reason, errors, what="an unmerge")
    sr = None
    try:
        pk = int(source_record_id)
    except (TypeError, ValueError):
        errors.setdefault("source_record", []).append(f"'{source_record_id}' is not a source record id (integer)")
    else:
        sr = SourceRecord.objects.filter(pk=pk).first()
        if sr is None:
            raise NotFound({"source_record": [f"no source record with id {pk}"]})
        if sr.domain != domain:
            errors.setdefault("source_record", []).append(f"source record {pk} is a {sr.domain}, not a {domain}")
        elif sr.golden_id is None:
            errors.setdefault("source_record", []).append(f"source record {pk} is not part of any golden record")
        elif not SourceRecord.objects.filter(domain=domain, golden_id=sr.golden_id).exclude(pk=sr.pk).exists():
            errors.setdefault("source_record", []).append(
                f"source record {pk} is the only source of {domain} {sr.golden_id}: there is nothing to split"
            )
    if errors:
        raise MergeError(errors)
    return spec, sr


def _still_where_moved(domain: str, value: Any, moved_to: uuid.UUID) -> bool:
    """Whether a reference the merge moved to `moved_to` still points there: at it, or at the record a later merge
    retired it into (A merged into B, B into C: the reference moved to B now names C)."""
    value = _as_uuid(value)
    if value is None:
        return False
    return value == moved_to or golden_survivor_id(domain, value) == golden_survivor_id(domain, moved_to)


def _restore_references(move: MergeMove, restored: uuid.UUID) -> list[dict]:
    """Put back the references (and system-assigned cross-references) that the merge moved off `restored`, where
    nothing has moved them since."""
    moved = []
    domain = move.merge.domain
    for xmove in MergeMove.objects.filter(
        merge=move.merge, source_record__isnull=True, from_golden_id=restored, unmerged_at__isnull=True
    ):
        xref = xmove.xref
        # a push's cross-reference that a source record of that system has since been linked through belongs to
        # that source record's golden record, wherever it is
        if (
            xref is not None
            and xref.source_record_id is None
            and _still_where_moved(domain, xref.golden_id, xmove.to_golden_id)
        ):
            xref.golden_id = restored
            xref.save()
        xmove.unmerged_at = timezone.now()
        xmove.save()
    logs = MergeReference.objects.filter(merge=move.merge, from_golden_id=restored, restored_at__isnull=True)
    for log in logs:
        ref_model = get_domain(log.domain).model
        if log.via == ReferenceVia.OVERRIDE and log.override is not None:
            ov = log.override
            if ov.is_active and _still_where_moved(domain, ov.value, log.to_golden_id):
                ov.value = str(restored)
                ov.save()
        elif log.via == ReferenceVia.DIRECT:
            record = ref_model.objects.filter(pk=log.golden_id).first()
            if record is not None and _still_where_moved(domain, getattr(record, f"{log.field}_id"), log.to_golden_id):
                setattr(record, f"{log.field}_id", restored)
                _bump(record, current_context().reason)
                change_event_write(
                    record=record, event_type=ChangeEventType.UPDATED, changed_fields=[log.field], origin_system=None
                )
        golden_record_recompute(domain=log.domain, golden_id=log.golden_id)
        log.restored_at = timezone.now()
        log.save()
        moved.append({"domain": log.domain, "golden_id": str(log.golden_id), "field": log.field})
    return moved


def _repoint_source_references(sr: SourceRecord, target: uuid.UUID) -> list[dict]:
    """Source records of other domains that name this one by (system, source_id) now resolve to `target`."""
    moved = []
    for ref_spec, fspec in referencing_fields(sr.domain):
        rows = SourceRecord.objects.filter(
            domain=ref_spec.name,
            **{f"values__{fspec.name}__system": sr.system_id, f"values__{fspec.name}__source_id": sr.source_id},
        )
        for other in rows:
            ref = other.values.get(fspec.name)
            if isinstance(ref, dict) and ref.get("golden_id") != str(target):
                _resolve_to(other, ref_spec, fspec.name, target, moved)
    return moved


def _resolve_to(other: SourceRecord, ref_spec: DomainSpec, name: str, target: uuid.UUID, moved: list[dict]) -> None:
    """Point a source record's resolved reference `name` at `target`, and recompute its golden record."""
    values = {**other.values, name: {**other.values[name], "golden_id": str(target)}}
    SourceRecord.objects.filter(pk=other.pk).update(values=values)  # not history-tracked
    if other.golden_id:
        golden_record_recompute(domain=ref_spec.name, golden_id=other.golden_id)
        moved.append({"domain": ref_spec.name, "golden_id": str(other.golden_id), "field": name})


def _repoint_golden_id_references(domain: str, restored: uuid.UUID, through: set[uuid.UUID]) -> list[dict]:
    """Source records of other domains that named a record by golden id (`{"golden_id": …}`) while it was merged were
    resolved to its survivor then, one of `through` (the records the unmerged source came back through). Those whose
    named record leads to `restored` now that an unmerge restored it (itself, or a record merged into it) resolve to
    it again: their sender named it. References resolved before the merge still name their record; the merge's
    reference log puts those back (`_restore_references`)."""
    moved = []
    held = [str(g) for g in through]
    for ref_spec, fspec in referencing_fields(domain):
        rows = SourceRecord.objects.filter(domain=ref_spec.name, **{f"values__{fspec.name}__golden_id__in": held})
        for other in rows:
            sent, ref = other.attributes.get(fspec.name), other.values.get(fspec.name)
            named = _as_uuid(sent.get("golden_id")) if isinstance(sent, dict) else None
            if named is not None and isinstance(ref, dict) and golden_survivor_id(domain, named) == restored:
                _resolve_to(other, ref_spec, fspec.name, restored, moved)
    return moved


def _moves_back(model, sr: SourceRecord, current: uuid.UUID) -> list[MergeMove]:
    """The merges that brought `sr` into `current`, newest first, back to the record it came from: past every
    record that is itself merged (A into B, then B into C: A1's moves B→C and A→B, so it goes back to A)."""
    chain: list[MergeMove] = []
    at = current
    for move in (
        MergeMove.objects.filter(source_record=sr, unmerged_at__isnull=True).select_related("merge").order_by("-id")
    ):
        if move.to_golden_id != at:
            continue
        chain.append(move)
        if not model.objects.filter(pk=move.from_golden_id, status=GoldenStatus.MERGED).exists():
            break  # it came from a record that is live again: it rejoins that one
        at = move.from_golden_id
    return chain


def _merge_overrides_lift(decision: MergeDecision, *, recomputed_here: set[uuid.UUID]) -> None:
    """An unmerge undoes `decision`: the overrides its field choices pinned on the survivor go too, unless a
    steward changed them since (a newer override replaced them). A record in `recomputed_here` the unmerge
    recomputes itself."""
    for ov in FieldOverride.objects.filter(pk__in=decision.override_ids or [], is_active=True):
        ov.is_active = False
        ov.save()  # one by one: history for each
        if ov.golden_id not in recomputed_here:
            golden_record_recompute(domain=ov.domain, golden_id=ov.golden_id)


def golden_record_unmerge(
    *,
    domain: str,
    source_record_id: int,
    reason: str,
    user=None,
    actor: str | None = None,
    channel: str | None = None,
) -> UnmergeResult:
    """Split one source record out of its golden record; raises MergeError before writing anything."""
    spec, sr = _unmerge_validate(domain=domain, source_record_id=source_record_id, reason=reason)
    reason = reason.strip()
    model = spec.model
    with steward_action(reason=reason, user=user, actor=actor, channel=channel):
        match_lock(domain)  # before any row lock, as an ingest takes them (see golden_record_merge)
        sr = SourceRecord.objects.select_for_update().get(pk=sr.pk)
        current = model.objects.select_for_update().get(pk=sr.golden_id)
        chain = _moves_back(model, sr, current.pk)
        move = chain[-1] if chain else None  # the merge that took it from the record it came from
        target = None
        restored = created = False
        if move is not None:
            previous = model.objects.select_for_update().filter(pk=move.from_golden_id).first()
            if previous is not None and previous.status == GoldenStatus.MERGED:
                if golden_survivor_id(domain, previous.pk) == current.pk:
                    # active again before anything resolves references to it; its new version, recomputed with
                    # the source it gets back, is written below as the unmerge's one change to it
                    previous.status = GoldenStatus.ACTIVE
                    previous.merged_into = None
                    previous._change_reason = reason
                    previous.save()
                    target, restored = previous, True
            elif previous is not None:
                target = previous  # already restored by an earlier unmerge: rejoin it
            now = timezone.now()
            for step in chain:
                step.unmerged_at = now
                step.save()
        if target is None:
            target, _ = golden_record_create(domain=domain, sources=[sr], origin_system=None)
            created = True
        versions = {target.pk: target.version, current.pk: current.version}
        remaining = golden_source_ids(domain, current.pk)
        # the sources that came from the same record as this one were together before: not "not a match" of it
        came_along = set(
            MergeMove.objects.filter(
                source_record_id__in=remaining, from_golden_id=target.pk, unmerged_at__isnull=True
            ).values_list("source_record_id", flat=True)
        )
        remaining = [pk for pk in remaining if pk != sr.pk and pk not in came_along]
        SourceRecord.objects.filter(pk=sr.pk).update(golden_id=target.pk)
        xref = CrossReference.objects.filter(source_record=sr).first()
        if xref is not None and xref.golden_id != target.pk:
            xref.golden_id = target.pk
            xref.save()
        MatchKey.objects.filter(source_record=sr).update(golden_id=target.pk)
        moved_refs = []
        if restored:
            through = {step.to_golden_id for step in chain}
            moved_refs = _restore_references(move, target.pk)
            moved_refs += _repoint_golden_id_references(domain, target.pk, through)
            _merge_overrides_lift(move.merge, recomputed_here={current.pk, target.pk})
        # each of the two records: one new version, published as one event
        changed: dict[uuid.UUID, list[str]] = {target.pk: ["status"] if restored else [], current.pk: []}
        for golden_id in (target.pk, current.pk):
            changed[golden_id] += _recomputed_once(model, domain, versions[golden_id], golden_id, reason)[1]
        moved_refs += _repoint_source_references(sr, target.pk)
        not_a_match_record(
            domain=domain, source_ids_a=[sr.pk], source_ids_b=remaining, reason=reason, origin="unmerge", user=user
        )
        for golden_id, extra in (
            (current.pk, {"split_out": str(target.pk), "source_record": sr.pk}),
            (target.pk, {"split_from": str(current.pk), "source_record": sr.pk}),
        ):
            change_event_write(
                record=model.objects.get(pk=golden_id),
                event_type=ChangeEventType.UNMERGED,
                changed_fields=sorted(set(changed[golden_id]) | {"sources"}),
                origin_system=None,
                extra={**extra, "restored": restored},
            )
    return UnmergeResult(
        golden_id=target.pk,
        from_golden_id=current.pk,
        restored=restored,
        created=created,
        moved_references=moved_refs,
    )
