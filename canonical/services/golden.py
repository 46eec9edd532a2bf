"""Golden records: follow merges to survivors, recompute from sources, publish each change.

`golden_record_recompute` is the one place a golden record's values change because of source data;
it writes the golden row, its history row and the outbox event in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import transaction

from canonical.audit import current_context
from canonical.domains import get_domain
from canonical.models import (
    ChangeEvent,
    ChangeEventType,
    FieldOverride,
    GoldenStatus,
    SourceRecord,
    SourceStatus,
)
from canonical.services import exceptions as exc_service
from canonical.services.instances import new_instance
from canonical.services.ownership import ownership_map, system_priorities
from canonical.services.survivorship import Contribution, Survival, missing_required, survive

_MAX_MERGE_DEPTH = 50


def golden_survivor_id(domain: str, golden_id: uuid.UUID | str | None) -> uuid.UUID | None:
    """Follow `merged_into` from a golden id to the record that survives (None if there is no such id)."""
    if golden_id is None:
        return None
    return golden_survivor_map(domain, [golden_id]).get(uuid.UUID(str(golden_id)))


def golden_survivor_map(
    domain: str, golden_ids: Iterable[uuid.UUID | str], *, statuses: dict | None = None
) -> dict[uuid.UUID, uuid.UUID]:
    """{golden id: its survivor} for the ids that exist, following merge chains (one query per chain step).
    `statuses`: filled with the status of every record read on the way, the survivors' included."""
    model = get_domain(domain).model
    wanted = {uuid.UUID(str(g)) for g in golden_ids if g}
    survivor: dict[uuid.UUID, uuid.UUID] = {}
    chain: dict[uuid.UUID, uuid.UUID] = {g: g for g in wanted}  # original id -> id reached so far
    for _ in range(_MAX_MERGE_DEPTH):
        if not chain:
            return survivor
        rows = {}
        for pk, merged_into, status in model.objects.filter(pk__in=set(chain.values())).values_list(
            "pk", "merged_into_id", "status"
        ):
            rows[pk] = merged_into
            if statuses is not None:
                statuses[pk] = status
        next_chain = {}
        for original, current in chain.items():
            if current not in rows:
                continue  # no such golden record
            if rows[current] is None:
                survivor[original] = current
            else:
                next_chain[original] = rows[current]
        chain = next_chain
    raise RuntimeError(f"merge chain of {domain} {sorted(chain)[:3]} is longer than {_MAX_MERGE_DEPTH}")


def golden_survivor_ids(domain: str, golden_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """Distinct survivors of the given ids, oldest golden record first (a stable choice)."""
    model = get_domain(domain).model
    survivors = set(golden_survivor_map(domain, golden_ids).values())
    if len(survivors) == 1:
        return list(survivors)
    return list(model.objects.filter(pk__in=survivors).order_by("created_at", "id").values_list("pk", flat=True))


def to_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def golden_values(record) -> dict[str, Any]:
    """The canonical field values of a golden record (references as golden id strings), JSON-safe."""
    spec = get_domain(record.DOMAIN)
    out: dict[str, Any] = {}
    for f in spec.fields:
        if f.kind == "ref":
            out[f.name] = to_json(getattr(record, f"{f.name}_id"))
        else:
            out[f.name] = to_json(getattr(record, f.name))
    return out


def _to_model_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "decimal":
        return Decimal(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    return value


def contribution_of(sr: SourceRecord, survivors: dict[str, dict[uuid.UUID, uuid.UUID]] | None = None) -> Contribution:
    """What a source record contributes; references lead to their survivors (`survivors`: per ref domain)."""
    spec = get_domain(sr.domain)
    values: dict[str, Any] = {}
    for name, value in sr.values.items():
        f = spec.get(name)
        if f is None:
            continue
        if f.kind == "ref":
            if isinstance(value, dict) and value.get("golden_id"):
                if survivors is not None and f.ref_domain in survivors:
                    survivor = survivors[f.ref_domain].get(uuid.UUID(str(value["golden_id"])))
                else:
                    survivor = golden_survivor_id(f.ref_domain, value["golden_id"])
                values[name] = str(survivor or value["golden_id"])
            elif value is None:
                values[name] = None
            # an unresolved reference contributes nothing yet
        else:
            values[name] = value
    return Contribution(
        source_record_id=sr.pk, system=sr.system_id, source_id=sr.source_id, updated_at=sr.updated_at, values=values
    )


def _reference_survivors(domain: str, sources: list[SourceRecord]) -> dict[str, dict[uuid.UUID, uuid.UUID]]:
    """The survivors of every golden id the sources reference, one lookup per referenced domain."""
    spec = get_domain(domain)
    wanted: dict[str, set] = {}
    for sr in sources:
        for f in spec.ref_fields:
            value = sr.values.get(f.name)
            if isinstance(value, dict) and value.get("golden_id"):
                wanted.setdefault(f.ref_domain, set()).add(value["golden_id"])
    return {ref_domain: golden_survivor_map(ref_domain, ids) for ref_domain, ids in wanted.items()}


def live_sources(domain: str, golden_id: uuid.UUID) -> list[SourceRecord]:
    return list(
        SourceRecord.objects.filter(
            domain=domain, golden_id=golden_id, deleted=False, status=SourceStatus.APPLIED
        ).order_by("pk")
    )


def overrides_for(domain: str, golden_id: uuid.UUID) -> dict[str, Any]:
    return dict(
        FieldOverride.objects.filter(domain=domain, golden_id=golden_id, is_active=True).values_list("field", "value")
    )


def golden_compute(
    domain: str, golden_id: uuid.UUID | None, sources: list[SourceRecord], *, overrides: dict[str, Any] | None = None
) -> Survival:
    """Survivorship over these live sources and the golden record's active overrides (pure apart from reads)."""
    spec = get_domain(domain)
    if overrides is None:
        overrides = overrides_for(domain, golden_id) if golden_id else {}
    survivors = _reference_survivors(domain, sources)
    return survive(
        spec=spec,
        contributions=[contribution_of(sr, survivors) for sr in sources],
        owners=ownership_map(domain),
        overrides=overrides,
        priorities=system_priorities(),
    )


def _apply_values(record, values: dict[str, Any]) -> list[str]:
    spec = get_domain(record.DOMAIN)
    changed = []
    for f in spec.fields:
        new = values.get(f.name)
        if f.kind == "ref":
            attr = f"{f.name}_id"
            new_id = uuid.UUID(str(new)) if new else None
            if new_id is not None and new_id == record.pk and f.ref_domain == spec.name:
                new_id = None  # a record is not its own parent (its parent was merged into it, or a source says so)
            if getattr(record, attr) != new_id:
                setattr(record, attr, new_id)
                changed.append(f.name)
            continue
        if f.kind in ("list_str", "lines") and new is None:
            new = []
        model_value = _to_model_value(f.kind, new)
        if model_value is None and f.kind == "bool":
            model_value = False  # boolean flags are not nullable: unset means false
        if getattr(record, f.name) != model_value:
            setattr(record, f.name, model_value)
            changed.append(f.name)
    return changed


def change_event_build(
    *, record, event_type: str, changed_fields: list[str], origin_system: str | None, extra: dict | None = None
) -> ChangeEvent:
    """The outbox event for a golden record's change, not saved (the bulk path inserts many at once)."""
    ctx = current_context()
    data = {"id": str(record.pk), "status": record.status, "version": record.version, **golden_values(record)}
    if record.merged_into_id:
        data["merged_into"] = str(record.merged_into_id)
    if extra:
        data.update(extra)
    return new_instance(
        ChangeEvent,
        type=event_type,
        domain=record.DOMAIN,
        golden_id=record.pk,
        version=record.version,
        changed_fields=changed_fields,
        data=data,
        origin_system_id=origin_system,
        actor=ctx.actor,
        request_id=ctx.request_id,
    )


def change_event_write(
    *, record, event_type: str, changed_fields: list[str], origin_system: str | None, extra: dict | None = None
) -> ChangeEvent:
    event = change_event_build(
        record=record, event_type=event_type, changed_fields=changed_fields, origin_system=origin_system, extra=extra
    )
    event.save(force_insert=True)
    return event


def _sync_conflicts(domain: str, sources: list[SourceRecord], survival: Survival) -> None:
    """Each source's conflicts stored, its ownership_conflict exception raised (opened, or the open one refreshed)
    or closed. The open exceptions of the sources in conflict are read in one query: a golden record with many
    sources in conflict (a thousand ERP records linked to one customer) is recomputed as each of them comes."""
    in_conflict: list[tuple[SourceRecord, dict]] = []
    for sr in sources:
        conflicts = survival.conflicts.get(sr.pk, {})
        previous = sr.conflicts
        if sr.conflicts != conflicts:
            SourceRecord.objects.filter(pk=sr.pk).update(conflicts=conflicts)
            sr.conflicts = conflicts
        if conflicts:
            in_conflict.append((sr, conflicts))
        elif previous:
            # Only a record that had conflicts can have an open ownership_conflict exception to close.
            exc_service.exception_close(kind="ownership_conflict", source_record=sr, note="the conflict went away")
    if not in_conflict:
        return
    open_now = exc_service.open_exceptions(
        kind="ownership_conflict", source_record_ids=[sr.pk for sr, _ in in_conflict]
    )
    for sr, conflicts in in_conflict:
        fields = ", ".join(sorted(conflicts))
        owner = next(iter(conflicts.values()))["owner"]
        exc_service.exception_raise(
            kind="ownership_conflict",
            source_record=sr,
            golden_id=sr.golden_id,
            message=f"{sr.system_id} disagrees with the owner ({owner}) on {fields}; its value is kept, not applied",
            detail={"conflicts": conflicts},
            existing=open_now.get(sr.pk),
        )


def _retain_required(record, spec, survival: Survival) -> None:
    """Keep the last value of a required field that no live source has any more, and flag the record.

    This happens when the only source that had the value is deleted or moves away: the golden record keeps
    its last known value (provenance rule `retained`) and an `incomplete` exception on the golden record
    tells a steward. The exception closes when a source supplies the field again.
    """
    missing = missing_required(spec, survival.values)
    had_retained = any(p.get("rule") == "retained" for p in (record.provenance or {}).values())
    if not missing:
        if had_retained:
            exc_service.exception_close(kind="incomplete", golden_id=record.pk, note="a source supplies it again")
        return
    current = golden_values(record)
    for name in missing:
        survival.values[name] = current[name]
        survival.provenance[name] = {**(record.provenance or {}).get(name, {}), "rule": "retained"}
    exc_service.exception_raise(
        kind="incomplete",
        golden_id=record.pk,
        domain=spec.name,
        message=f"{spec.name} {record.pk}: no live source has {', '.join(missing)}; the last value is kept",
        detail={"missing": missing},
    )


def _provenance_changed(old: dict | None, new: dict | None) -> bool:
    """Whether where the values come from changed: the provenance apart from each entry's `at` (compared entry
    by entry, without copying either: this runs for every record linked)."""
    old, new = old or {}, new or {}
    if old.keys() != new.keys():
        return True
    for name, entry in old.items():
        other = new[name]
        if entry == other:
            continue
        if entry.keys() - {"at"} != other.keys() - {"at"}:
            return True
        if any(v != other[k] for k, v in entry.items() if k != "at"):
            return True
    return False


def _reason(origin_system: str | None, changed: list[str], provenance_changed: bool) -> str:
    ctx_reason = current_context().reason
    if ctx_reason:
        return ctx_reason
    what = ", ".join(changed) if changed else "provenance"
    return f"recomputed ({what})" + (f" after a change from {origin_system}" if origin_system else "")


def golden_survivor_lock(*, domain: str, golden_id: uuid.UUID | None):
    """Lock the survivor of a golden id for the rest of the transaction and return it (None if there is none)."""
    model = get_domain(domain).model
    current = golden_id
    for _ in range(_MAX_MERGE_DEPTH):
        if current is None:
            return None
        record = model.objects.select_for_update().filter(pk=current).first()
        if record is None or record.merged_into_id is None:
            return record
        current = record.merged_into_id
    raise RuntimeError(f"merge chain of {domain} {golden_id} is longer than {_MAX_MERGE_DEPTH}")


def golden_record_recompute(
    *,
    domain: str,
    golden_id: uuid.UUID,
    origin_system: str | None = None,
    publish: bool = True,
    reason: str | None = None,
) -> tuple[object, list[str]]:
    """Recompute a golden record from its live sources and overrides; save, audit and publish if it changed.

    Returns (record, changed field names). Status follows the sources: inactive when none is live. `publish=False`:
    the caller writes the change's one event itself (a merge or unmerge publishes what it did as a whole), and
    `reason` is the history row's.
    """
    with transaction.atomic():
        record = get_domain(domain).model.objects.select_for_update().get(pk=golden_id)
        if record.status == GoldenStatus.MERGED:
            return record, []
        return golden_record_apply(
            record=record,
            sources=live_sources(domain, golden_id),
            origin_system=origin_system,
            publish=publish,
            reason=reason,
        )


def golden_record_apply(
    *,
    record,
    sources: list[SourceRecord],
    survival: Survival | None = None,
    origin_system: str | None = None,
    publish: bool = True,
    reason: str | None = None,
) -> tuple[object, list[str]]:
    """Make a locked golden record what survivorship over `sources` (its live source records) says.

    `survival` may be passed when the caller has just computed it over the same sources. Saves the record,
    its history row and its outbox event (only if something changed), and syncs ownership conflicts.
    """
    spec = get_domain(record.DOMAIN)
    changed: list[str] = []
    event_type = ChangeEventType.UPDATED
    if sources:
        if survival is None:
            survival = golden_compute(spec.name, record.pk, sources)
        _retain_required(record, spec, survival)
        changed = _apply_values(record, survival.values)
        # Where each value comes from changed (another source, another rule)? A later `at` of the same
        # source alone is not a change worth a version: it is written with the next real change.
        provenance_changed = _provenance_changed(record.provenance, survival.provenance)
        provenance = survival.provenance
        if record.status == GoldenStatus.INACTIVE:
            record.status = GoldenStatus.ACTIVE
            event_type = ChangeEventType.REACTIVATED
            changed.append("status")
        _sync_conflicts(spec.name, sources, survival)
    else:
        provenance_changed, provenance = False, record.provenance
        if record.status == GoldenStatus.ACTIVE:
            record.status = GoldenStatus.INACTIVE
            event_type = ChangeEventType.DEACTIVATED
            changed.append("status")
    if not changed and not provenance_changed:
        return record, []
    record.provenance = provenance
    record.version += 1
    record._change_reason = reason or _reason(origin_system, changed, provenance_changed)
    record.save()
    if changed and publish:
        change_event_write(record=record, event_type=event_type, changed_fields=changed, origin_system=origin_system)
    return record, changed


def golden_record_create(
    *,
    domain: str,
    sources: list[SourceRecord],
    origin_system: str | None,
    survival: Survival | None = None,
    golden_id: uuid.UUID | None = None,
):
    """Create a golden record from its first source record(s); writes history and a `golden.created` event.

    `survival` may be passed when the caller has just computed it over the same sources; `golden_id` when
    the caller has chosen the new record's id already (its source records point at it).
    """
    spec = get_domain(domain)
    if survival is None:
        survival = golden_compute(domain, None, sources)
    record = spec.model(status=GoldenStatus.ACTIVE, version=1, provenance=survival.provenance)
    if golden_id is not None:
        record.pk = golden_id
    _apply_values(record, survival.values)
    first = sources[0]
    record._change_reason = current_context().reason or f"created from {first.system_id} {domain} {first.source_id}"
    record.save(force_insert=True)
    change_event_write(
        record=record, event_type=ChangeEventType.CREATED, changed_fields=spec.field_names, origin_system=origin_system
    )
    return record, survival
