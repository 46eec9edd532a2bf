"""The lead-to-project flow: a closed-won CRM deal → golden customer and contract → ERP (customer,
contract) and PSA (project from the contract); the ERP's contract number and the PSA's project code come
back as cross-references. The time from close to project created is recorded per deal."""

from __future__ import annotations

import uuid

from django.utils import timezone

from canonical.models import ChangeEvent, ChangeEventType, SourceRecord
from connectors.models import Connection, DealCycle


def deal_on_event(*, event: ChangeEvent) -> DealCycle | None:
    """A golden contract made from a CRM deal starts the deal's cycle (same transaction as the event)."""
    if event.domain != "contract" or event.type != ChangeEventType.CREATED:
        return None
    opportunity = (event.data or {}).get("opportunity_id")
    origin = event.origin_system_id
    if not opportunity or not origin or not Connection.objects.filter(system_id=origin, kind="crm").exists():
        return None
    source = SourceRecord.objects.filter(system_id=origin, domain="contract", source_id=opportunity).first()
    closed_at = source.updated_at if source else event.occurred_at
    cycle, _ = DealCycle.objects.get_or_create(
        opportunity_id=opportunity,
        defaults={"contract_golden_id": event.golden_id, "closed_at": closed_at, "contract_created_at": timezone.now()},
    )
    return cycle


def deal_on_push(*, system: str, domain: str, golden_id: uuid.UUID, remote_id: str) -> None:
    """A contract pushed to the ERP got its contract number; pushed to the PSA, its project."""
    if domain != "contract":
        return
    kind = Connection.objects.filter(system_id=system).values_list("kind", flat=True).first()
    now = timezone.now()
    for cycle in DealCycle.objects.filter(contract_golden_id=golden_id):
        if kind == "erp" and not cycle.erp_contract_number:
            cycle.erp_contract_number, cycle.erp_at = remote_id, now
            cycle.save(update_fields=["erp_contract_number", "erp_at"])
        elif kind == "psa" and cycle.project_created_at is None:
            cycle.psa_project_code, cycle.project_created_at = remote_id, now
            cycle.cycle_seconds = (now - cycle.closed_at).total_seconds()
            cycle.save(update_fields=["psa_project_code", "project_created_at", "cycle_seconds"])
