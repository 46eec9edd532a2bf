"""ERP (NetSuite) ↔ canonical. SuiteQL answers in lower-case column names; records are written in camelCase.
References go out as {"id": internal id} when the hub knows it, else {"externalId": golden id}."""

from __future__ import annotations

from typing import Any

from connectors.mapping import F, ObjectMap, date_part, ns_bool, to_number

RECORD_TYPES = {"legal_entity": "legalentity", "customer": "customer", "contract": "contract",
                "rate_card": "ratecard"}  # fmt: skip


def ns_ref(value: Any) -> Any:
    """A NetSuite reference as read back: {"id": …} or a bare id is this system's id; {"externalId": …}
    is the hub's golden id."""
    if isinstance(value, dict):
        if value.get("id"):
            return str(value["id"])
        if value.get("externalId"):
            return {"golden_id": str(value["externalId"])}
        return None
    return str(value)


def _contract_complete(record: dict, attrs: dict) -> None:
    attrs["contract_number"] = str(record.get("tranid") or record["id"])


_ADDRESS = (
    F("address_line1", "addr1"),
    F("address_line2", "addr2"),
    F("city", "city"),
    F("postal_code", "zip"),
    F("region", "state"),
    F("country", "country"),
)

PULL = {
    "legal_entity": ObjectMap(
        domain="legal_entity",
        remote_object="legalentity",
        fields=(
            F("name", "name"),
            F("registration_number", "registrationNumber"),
            F("tax_id", "taxId"),
            *_ADDRESS,
            F("website", "url"),
            F("parent", "parent", to_hub=ns_ref, ref=True),
            F("is_internal", "isInternal", to_hub=ns_bool),
            F("functional_currency", "currency"),
        ),
    ),
    "customer": ObjectMap(
        domain="customer",
        remote_object="customer",
        fields=(F("name", "companyName"), F("legal_entity", "legalEntity", to_hub=ns_ref, ref=True), *_ADDRESS),
    ),
    "contract": ObjectMap(
        domain="contract",
        remote_object="contract",
        complete=_contract_complete,
        fields=(
            F("customer", "entity", to_hub=ns_ref, ref=True),
            F("billing_schedule", "billingSchedule"),
            F("revenue_treatment", "revenueTreatment"),
            F("contracting_entity", "subsidiary", to_hub=ns_ref, ref=True),
            F("counterparty", "counterparty", to_hub=ns_ref, ref=True),
            F("rate_card", "rateCard", to_hub=ns_ref, ref=True),
        ),
    ),
    "rate_card": ObjectMap(
        domain="rate_card",
        remote_object="ratecard",
        fields=(
            F("code", "code"),
            F("name", "name"),
            F("currency", "currency"),
            F("valid_from", "validFrom", to_hub=date_part),
            F("valid_to", "validTo", to_hub=date_part),
            F("lines", "lines"),
        ),
    ),
}

PUSH = {
    "customer": ObjectMap(
        domain="customer",
        remote_object="customer",
        fields=(
            F("name", "companyName"),
            F("website", "url"),
            F("phone", "phone"),
            F("legal_entity", "legalEntity", ref=True),
            *_ADDRESS,
        ),
    ),
    "contract": ObjectMap(
        domain="contract",
        remote_object="contract",
        fields=(
            F("title", "title"),
            F("customer", "entity", ref=True),
            F("contract_type", "contractType"),
            F("currency", "currency"),
            F("total_value", "totalValue", to_remote=to_number),
            F("start_date", "startDate"),
            F("end_date", "endDate"),
            F("signed_date", "signedDate"),
            F("opportunity_id", "opportunityId"),
        ),
    ),
}


def ref_out(f: F, remote_id: str | None, golden_id: str | None) -> tuple[str, object]:
    if remote_id:
        return f.remote, {"id": remote_id}
    return f.remote, {"externalId": golden_id} if golden_id else None
