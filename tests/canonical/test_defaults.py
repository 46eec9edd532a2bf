import pytest

from canonical.models import OwnershipRule, System
from canonical.services.defaults import defaults_ensure
from canonical.services.ownership import ownership_map

pytestmark = pytest.mark.django_db


def test_default_systems_and_rules_exist_after_migrate_with_history():
    assert set(System.objects.values_list("code", flat=True)) >= {"crm", "erp", "psa", "hr"}
    rule = OwnershipRule.objects.get(domain="customer", field="")
    assert rule.system_id == "crm"
    first = rule.history.earliest()
    assert first.history_actor == "system:bootstrap"
    assert first.history_channel == "job"
    assert first.history_change_reason == "default systems and ownership rules"


def test_customer_billing_address_owned_by_erp_and_commercial_fields_by_crm():
    owners = ownership_map("customer")
    assert owners["name"] == "crm"
    assert owners["website"] == "crm"
    assert owners["legal_entity"] == "erp"
    assert owners["city"] == "erp"
    assert owners["country"] == "erp"


def test_contract_financial_controls_owned_by_erp():
    owners = ownership_map("contract")
    assert owners["contract_number"] == "erp"
    assert owners["billing_schedule"] == "erp"
    assert owners["total_value"] == "crm"


def test_defaults_ensure_is_idempotent_and_keeps_edited_rules():
    rule = OwnershipRule.objects.get(domain="project", field="")
    rule.system_id = "erp"
    rule.save()
    assert defaults_ensure() == (0, 0)
    rule.refresh_from_db()
    assert rule.system_id == "erp"
