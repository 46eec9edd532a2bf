"""CRM (Salesforce) ↔ canonical. Accounts are customers; closed-won Opportunities become contracts; the
hub pushes contracts (to the Contract object) and projects (Project__c) keyed by Hub_Id__c."""

from __future__ import annotations

from connectors.mapping import F, ObjectMap, date_part, to_decimal_text, to_number

EXT_FIELD = "Hub_Id__c"
TRANSIENT_ITEM_ERRORS = {"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "TXN_SECURITY_FAILURE"}


def _opportunity_complete(record: dict, attrs: dict) -> None:
    # A deal has no contract number until finance assigns one: the opportunity id stands in (the ERP,
    # which owns contract_number, replaces it once it has booked the contract).
    if not attrs.get("contract_number"):
        attrs["contract_number"] = f"OPP-{record['Id']}"
    attrs["opportunity_id"] = record["Id"]


PULL = {
    "customer": ObjectMap(
        domain="customer",
        remote_object="Account",
        fields=(
            F("name", "Name"),
            F("industry", "Industry"),
            F("segment", "Segment__c"),
            F("website", "Website"),
            F("phone", "Phone"),
            F("parent", "ParentId", ref=True),
            F("address_line1", "BillingStreet"),
            F("city", "BillingCity"),
            F("postal_code", "BillingPostalCode"),
            F("region", "BillingState"),
            F("country", "BillingCountryCode"),
            F("account_owner_email", "Owner_Email__c"),
        ),
    ),
    "contract": ObjectMap(
        domain="contract",
        remote_object="Opportunity",
        complete=_opportunity_complete,
        fields=(
            F("title", "Name"),
            F("customer", "AccountId", ref=True),
            F("total_value", "Amount", to_hub=to_decimal_text),
            F("currency", "CurrencyIsoCode"),
            F("contract_type", "Contract_Type__c"),
            F("signed_date", "CloseDate", to_hub=date_part),
            F("start_date", "Start_Date__c", to_hub=date_part),
            F("end_date", "End_Date__c", to_hub=date_part),
            F("contract_number", "Contract_Number__c"),
        ),
    ),
}
PULL_FILTER = {"contract": "StageName = 'Closed Won'"}

PUSH = {
    "contract": ObjectMap(
        domain="contract",
        remote_object="Contract",
        fields=(
            F("contract_number", "Hub_Contract_Number__c"),
            F("title", "Description"),
            F("customer", "AccountId", ref=True),
            F("contract_type", "Contract_Type__c"),
            F("currency", "CurrencyIsoCode"),
            F("total_value", "Total_Value__c", to_remote=to_number),
            F("start_date", "StartDate"),
            F("end_date", "EndDate"),
            F("signed_date", "CustomerSignedDate"),
            F("billing_schedule", "Billing_Schedule__c"),
            F("opportunity_id", "Opportunity__c"),
        ),
    ),
    "project": ObjectMap(
        domain="project",
        remote_object="Project__c",
        fields=(
            F("name", "Name"),
            F("project_code", "Project_Code__c"),
            F("contract", "Contract__c", ref=True),
            F("customer", "Account__c", ref=True),
            F("start_date", "Start_Date__c"),
            F("end_date", "End_Date__c"),
            F("budget_amount", "Budget__c", to_remote=to_number),
            F("currency", "CurrencyIsoCode"),
        ),
    ),
}


def ref_out(f: F, remote_id: str | None, golden_id: str | None) -> tuple[str, object]:
    """A known Salesforce id goes in the lookup field; otherwise relate by the hub's external id."""
    if remote_id or not golden_id:
        return f.remote, remote_id
    relationship = f.remote[:-3] + "__r" if f.remote.endswith("__c") else f.remote.removesuffix("Id")
    return relationship, {EXT_FIELD: golden_id}
