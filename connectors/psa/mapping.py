"""PSA (Kantata) ↔ canonical. A workspace is a project, known by its project code. The hub pushes a
contract as a workspace (the PSA sets the project up from it): `external_id` is the contract's golden id,
and the project code the PSA assigns comes back as the contract's cross-reference."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.mapping import F, ObjectMap, date_part, golden_ref


def cents_to_amount(value: Any) -> Any:
    try:
        return str(Decimal(str(value)) / 100)
    except (InvalidOperation, ValueError):
        return value


def amount_to_cents(value: Any) -> Any:
    try:
        return int(Decimal(str(value)) * 100)
    except (InvalidOperation, ValueError):
        return value


PULL = {
    "project": ObjectMap(
        domain="project",
        remote_object="workspaces",
        fields=(
            F("project_code", "project_code"),
            F("name", "title"),
            F("contract", "external_id", to_hub=golden_ref, ref=True),
            F("customer", "customer_external_id", to_hub=golden_ref, ref=True),
            F("start_date", "start_date", to_hub=date_part),
            F("end_date", "due_date", to_hub=date_part),
            F("budget_hours", "budget_hours"),
            F("budget_amount", "price_in_cents", to_hub=cents_to_amount),
            F("currency", "currency"),
        ),
    ),
}

# The workspace fields the PSA's project pull reads as the project's own (the PSA owns projects), apart from the
# identifiers a contract push keeps up to date (contract number, customer, the hub's id).
PROJECT_OWNED_REMOTE = frozenset(
    f.remote for f in PULL["project"].fields if f.remote not in ("project_code", "external_id", "customer_external_id")
)

PUSH = {
    "contract": ObjectMap(
        domain="contract",
        remote_object="workspaces",
        fields=(
            F("title", "title"),
            F("contract_number", "contract_number"),
            F("customer", "customer_external_id", ref=True),
            F("total_value", "price_in_cents", to_remote=amount_to_cents),
            F("currency", "currency"),
            F("start_date", "start_date"),
            F("end_date", "due_date"),
        ),
    ),
}


def ref_out(f: F, remote_id: str | None, golden_id: str | None) -> tuple[str, object]:
    # Kantata relates the hub's records by the hub's own ids.
    return f.remote, golden_id
