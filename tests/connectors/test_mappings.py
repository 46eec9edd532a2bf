"""Field mappings between each system's shape and the canonical model, both ways."""

from connectors.base import PushItem
from connectors.crm import mapping as crm
from connectors.erp import mapping as erp
from connectors.hr import mapping as hr
from connectors.psa import mapping as psa

GOLDEN = "5b8f9a3e-0000-4000-8000-000000000001"
CUSTOMER = "5b8f9a3e-0000-4000-8000-0000000000c1"


def item(domain: str, values: dict, refs: dict | None = None) -> PushItem:
    return PushItem(delivery_id=1, domain=domain, golden_id=GOLDEN, version=3, status="active", values=values,
                    refs=refs or {})  # fmt: skip


def test_crm_account_becomes_customer_attributes():
    account = {"Id": "0015g00000AAA", "Name": "Acme", "Website": "acme.example", "BillingCountryCode": "DE",
               "ParentId": "0015g00000PPP", "Industry": "", "LastModifiedDate": "2026-01-01T00:00:00.000+0000"}  # fmt: skip
    attrs = crm.PULL["customer"].to_attributes(account)
    assert attrs == {"name": "Acme", "website": "acme.example", "country": "DE", "parent": "0015g00000PPP",
                     "industry": None}  # fmt: skip


def test_a_field_the_system_did_not_send_is_left_out_not_cleared():
    attrs = crm.PULL["customer"].to_attributes({"Id": "1", "Name": "Acme"})
    assert "website" not in attrs and "phone" not in attrs


def test_closed_won_opportunity_becomes_contract_with_a_stand_in_number_and_its_deal_id():
    opp = {"Id": "0065g00000XYZ", "Name": "Acme SOW 1", "AccountId": "0015g00000AAA", "Amount": 120000.5,
           "CurrencyIsoCode": "EUR", "CloseDate": "2026-02-03", "Contract_Type__c": "fixed_fee"}  # fmt: skip
    attrs = crm.PULL["contract"].to_attributes(opp)
    assert attrs["contract_number"] == "OPP-0065g00000XYZ"
    assert attrs["opportunity_id"] == "0065g00000XYZ"
    assert attrs["total_value"] == "120000.5"
    assert attrs["customer"] == "0015g00000AAA"
    assert attrs["signed_date"] == "2026-02-03"


def test_crm_push_uses_known_salesforce_ids_and_relates_by_external_id_otherwise():
    body = crm.PUSH["contract"].to_remote(
        item("contract", {"contract_number": "CN-1", "customer": CUSTOMER, "total_value": "1000.00"}),
        ref_out=crm.ref_out,
    )
    assert body == {"Hub_Contract_Number__c": "CN-1", "Account": {"Hub_Id__c": CUSTOMER}, "Total_Value__c": 1000}
    body = crm.PUSH["project"].to_remote(
        item("project", {"contract": GOLDEN, "customer": CUSTOMER}, {"contract": "800X", "customer": None}),
        ref_out=crm.ref_out,
    )
    assert body == {"Contract__c": "800X", "Account__r": {"Hub_Id__c": CUSTOMER}}


def test_erp_references_read_back_as_own_ids_or_golden_ids():
    attrs = erp.PULL["contract"].to_attributes(
        {"id": "CN-00007", "entity": {"externalId": CUSTOMER}, "subsidiary": {"id": "3"}, "billingschedule": "monthly"}
    )
    assert attrs == {"customer": {"golden_id": CUSTOMER}, "contracting_entity": "3", "billing_schedule": "monthly",
                     "contract_number": "CN-00007"}  # fmt: skip


def test_erp_push_writes_camel_case_with_reference_objects():
    body = erp.PUSH["customer"].to_remote(
        item("customer", {"name": "Acme", "legal_entity": CUSTOMER, "city": "Berlin"}), ref_out=erp.ref_out
    )
    assert body == {"companyName": "Acme", "legalEntity": {"externalId": CUSTOMER}, "city": "Berlin"}


def test_psa_workspace_becomes_project_and_contract_becomes_workspace():
    attrs = psa.PULL["project"].to_attributes(
        {
            "id": "12",
            "project_code": "PRJ-00012",
            "title": "Acme rollout",
            "external_id": GOLDEN,
            "price_in_cents": 1234567,
            "due_date": "2026-12-31T00:00:00Z",
            "archived": False,
        }  # fmt: skip
    )
    assert attrs == {"project_code": "PRJ-00012", "name": "Acme rollout", "contract": {"golden_id": GOLDEN},
                     "budget_amount": "12345.67", "end_date": "2026-12-31"}  # fmt: skip
    body = psa.PUSH["contract"].to_remote(
        item("contract", {"title": "SOW", "total_value": "999.99", "customer": CUSTOMER}), ref_out=psa.ref_out
    )
    assert body == {"title": "SOW", "price_in_cents": 99999, "customer_external_id": CUSTOMER}


def test_hr_worker_becomes_resource():
    attrs = hr.PULL["resource"].to_attributes(
        {
            "Worker_ID": "W1",
            "First_Name": "Ada",
            "Last_Name": "Lovelace",
            "Worker_Type": "Contingent Worker",
            "Skills": "python; sql",
            "Cost_Rate": 85,
            "Hire_Date": "2024-01-02",
        }  # fmt: skip
    )
    assert attrs == {"first_name": "Ada", "last_name": "Lovelace", "worker_type": "contractor",
                     "skills": ["python", "sql"], "cost_rate": "85", "start_date": "2024-01-02"}  # fmt: skip


def test_push_covers_only_mapped_fields():
    assert crm.PUSH["contract"].covers() >= {"contract_number", "customer", "total_value"}
    assert "revenue_treatment" not in crm.PUSH["contract"].covers()
    assert psa.PUSH["contract"].covers() == {"title", "contract_number", "customer", "total_value", "currency",
                                             "start_date", "end_date"}  # fmt: skip
