"""Steward field overrides: pin a golden record's field to a value, with a reason. Beats every system."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from canonical.audit import Channel, audit_context, current_context
from canonical.domains import get_domain
from canonical.models import FieldOverride, GoldenStatus
from canonical.services.golden import golden_record_recompute, golden_survivor_id
from canonical.validation import FieldError, clean_value


class OverrideError(ValueError):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def _override_value(field_spec, value: Any, record) -> Any:
    """Validate an override value like source data; references must name an existing record (its survivor)."""
    country = getattr(record, "country", None) if record is not None else None
    clean = clean_value(field_spec, value, system="", country=country)
    if field_spec.kind == "ref":
        if clean is None and not field_spec.required:
            return None  # pin an optional reference empty
        if not isinstance(clean, dict) or "golden_id" not in clean:
            raise FieldError('an override of a reference takes {"golden_id": UUID}')
        survivor = golden_survivor_id(field_spec.ref_domain, clean["golden_id"])
        if survivor is None:
            raise FieldError(f"no {field_spec.ref_domain} with golden id {clean['golden_id']}")
        return str(survivor)
    if field_spec.required and clean in (None, "", []):
        raise FieldError(f"{field_spec.name} is required: it cannot be pinned empty")
    return clean


def field_override_set(
    *, domain: str, golden_id: uuid.UUID, field: str, value: Any, reason: str, user=None, recompute: bool = True
):
    """Pin `field` of a golden record to `value` (validated like source data). Returns the recomputed record
    (`recompute=False`: the override only, for a caller that recomputes the record once for all it changed)."""
    spec = get_domain(domain)
    errors: dict[str, list[str]] = {}
    field_spec = spec.get(field)
    if field_spec is None:
        errors["field"] = [f"unknown field '{field}' for {domain}"]
    if not (reason or "").strip():
        errors["reason"] = ["a reason is required for an override"]
    record = spec.model.objects.filter(pk=golden_id).first()
    if record is None:
        errors["golden_id"] = [f"no {domain} with id {golden_id}"]
    elif record.status == GoldenStatus.MERGED:
        errors["golden_id"] = [f"{domain} {golden_id} was merged into {record.merged_into_id}: override that one"]
    clean = None
    if field_spec is not None:
        try:
            clean = _override_value(field_spec, value, record)
        except FieldError as exc:
            errors["value"] = [str(exc)]
    if errors:
        raise OverrideError(errors)
    actor = user.get_username() if user is not None else current_context().actor
    with audit_context(actor=actor, channel=Channel.STEWARD, reason=reason.strip(), user=user):
        with transaction.atomic():
            for previous in FieldOverride.objects.filter(
                domain=domain, golden_id=golden_id, field=field, is_active=True
            ):
                previous.is_active = False
                previous.save()  # saved one by one: QuerySet.update() would write no history
            FieldOverride.objects.create(
                domain=domain, golden_id=golden_id, field=field, value=clean, reason=reason.strip(), created_by=user
            )
            if recompute:
                record, _ = golden_record_recompute(domain=domain, golden_id=golden_id)
    return record


def field_override_clear(*, domain: str, golden_id: uuid.UUID, field: str, reason: str, user=None):
    """Remove a pinned value: the field goes back to survivorship from the sources."""
    if not (reason or "").strip():
        raise OverrideError({"reason": ["a reason is required to remove an override"]})
    actor = user.get_username() if user is not None else current_context().actor
    with audit_context(actor=actor, channel=Channel.STEWARD, reason=reason.strip(), user=user):
        with transaction.atomic():
            for override in FieldOverride.objects.filter(
                domain=domain, golden_id=golden_id, field=field, is_active=True
            ):
                override.is_active = False
                override.save()
            record, _ = golden_record_recompute(domain=domain, golden_id=golden_id)
    return record
