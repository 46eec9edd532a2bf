"""The admin: every model lists and opens; golden records are read-only with their provenance; rule edits are audited."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin

from canonical.api.clients import api_client_create
from canonical.models import ApiClient, CrossReference, Customer, OwnershipRule, SourceRecord, System
from stewardship.services.overrides import field_override_set
from tests.factories import IdempotencyKeyFactory, ingest, record

pytestmark = pytest.mark.django_db


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def boss(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(user)
    return user


def two_systems_one_customer():
    ingest("crm", "customer", record("0015g00000ACME", 0, name="Acme", website="https://www.acme.example.com"))
    ingest(
        "erp",
        "customer",
        record("CUST-1", 1, name="ACME B.V.", website="https://www.acme.example.com", city="Utrecht", country="NL"),
    )
    return Customer.objects.get()


def test_every_registered_model_lists_and_opens_for_a_superuser_with_the_demo_loaded(client, boss):
    call_command("load_demo", "--no-progress", "--api-client", stdout=StringIO(), stderr=StringIO())
    customer = Customer.objects.filter(status="active").first()
    field_override_set(domain="customer", golden_id=customer.pk, field="segment", value="Key account", reason="QBR")
    IdempotencyKeyFactory()

    opened = set()
    for model, model_admin in admin.site._registry.items():
        changelist = client.get(url(model, "changelist"))
        assert changelist.status_code == 200, model
        if model_admin.search_fields or model_admin.get_search_fields(None):
            assert client.get(url(model, "changelist"), {"q": "acme"}).status_code == 200, model
        obj = model._default_manager.order_by("pk").first()
        if obj is None:
            continue
        assert client.get(url(model, "change", obj.pk)).status_code == 200, model
        if isinstance(model_admin, SimpleHistoryAdmin):
            assert client.get(url(model, "history", obj.pk)).status_code == 200, model
        opened.add(model._meta.label)
    canonical = {m._meta.label for m in admin.site._registry if m._meta.app_label == "canonical"}
    assert canonical <= opened
    assert {"canonical.Customer", "canonical.SourceRecord", "canonical.OwnershipRule", "canonical.ApiClient"} <= (
        canonical
    )


@pytest.mark.parametrize(
    "query",
    ["kind__exact=validation", "status__exact=open&age=1d", "age=7d", "age=30d", "age=old", "system__code__exact=crm"],
)
def test_exception_queue_filters(client, boss, query):
    ingest("crm", "customer", record("C1", 0, name="Acme", country="UK"))
    response = client.get(reverse("admin:canonical_dataexception_changelist") + "?" + query)
    assert response.status_code == 200
    listed = "is not an ISO 3166-1 alpha-2 country code" in response.content.decode()
    assert listed == (query in ("kind__exact=validation", "status__exact=open&age=1d", "system__code__exact=crm"))


def test_golden_record_page_shows_xrefs_sources_provenance_and_conflicts(client, boss):
    customer = two_systems_one_customer()

    page = client.get(url(Customer, "change", customer.pk)).content.decode()

    assert "0015g00000ACME" in page and "CUST-1" in page  # cross-references and source records
    assert "Provenance" in page and ">owner<" in page
    erp = SourceRecord.objects.get(source_id="CUST-1")
    assert set(erp.conflicts) == {"name"}
    assert ">name<" in page  # erp's different name is listed as a conflict, not applied
    assert customer.name == "Acme"


def test_golden_records_cannot_be_edited_added_deleted_or_reverted_here(client, boss):
    customer = two_systems_one_customer()
    version = customer.version
    history_id = customer.history.latest().history_id

    assert client.post(url(Customer, "change", customer.pk), {"name": "Hacked"}).status_code == 403
    assert client.get(url(Customer, "add")).status_code == 403
    assert client.post(url(Customer, "delete", customer.pk), {"post": "yes"}).status_code == 403
    revert = reverse("admin:canonical_customer_simple_history", args=[customer.pk, history_id])
    assert client.get(revert).status_code == 200
    assert client.post(revert, {"name": "Hacked"}).status_code == 403

    customer.refresh_from_db()
    assert (customer.name, customer.version) == ("Acme", version)


def test_search_finds_a_golden_record_by_any_systems_id_or_its_golden_id(client, boss):
    customer = two_systems_one_customer()
    ingest("crm", "customer", record("0015g00000GLOB", 0, name="Globex", website="globex.example.com"))

    for term in ("CUST-1", "0015g00000ACME", str(customer.pk), "Acme"):
        page = client.get(url(Customer, "changelist"), {"q": term}).content.decode()
        assert "Acme" in page and "Globex" not in page, term


def test_ownership_rule_edit_needs_a_reason_and_its_history_says_who_web_and_why(client, boss):
    rule = OwnershipRule.objects.get(domain="project", field="")
    change = url(OwnershipRule, "change", rule.pk)
    data = {"domain": "project", "field": "", "system": "erp", "note": "finance runs projects now"}

    without_reason = client.post(change, data)
    assert without_reason.status_code == 200 and "This field is required" in without_reason.content.decode()
    rule.refresh_from_db()
    assert rule.system_id == "psa"

    response = client.post(change, {**data, "change_reason": "PSA retired; ERP projects module"})

    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.system_id == "erp"
    row = rule.history.latest()
    assert row.history_type == "~"
    assert row.history_actor == "boss"
    assert row.history_channel == "web"
    assert row.history_change_reason == "PSA retired; ERP projects module"
    assert row.history_user == boss
    assert row.history_request_id
    assert client.get(url(OwnershipRule, "history", rule.pk)).status_code == 200


def test_ownership_rule_field_must_be_a_field_of_its_domain(client, boss):
    response = client.post(
        url(OwnershipRule, "add"),
        {"domain": "resource", "field": "shoe_size", "system": "psa", "note": "", "change_reason": "try"},
    )
    assert response.status_code == 200
    assert "&#x27;shoe_size&#x27; is not a resource field" in response.content.decode()
    assert not OwnershipRule.objects.filter(field="shoe_size").exists()


def test_staff_without_superuser_can_view_but_not_edit_ownership_rules(client):
    clerk = get_user_model().objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(codename__in=["view_ownershiprule", "change_ownershiprule"]))
    client.force_login(clerk)
    rule = OwnershipRule.objects.get(domain="project", field="")

    assert client.get(url(OwnershipRule, "change", rule.pk)).status_code == 200
    response = client.post(
        url(OwnershipRule, "change", rule.pk),
        {"domain": "project", "field": "", "system": "erp", "note": "", "change_reason": "x"},
    )
    assert response.status_code == 403
    rule.refresh_from_db()
    assert rule.system_id == "psa"


def test_system_edit_is_audited_and_its_code_cannot_change(client, boss):
    change = url(System, "change", "psa")
    page = client.get(change).content.decode()
    assert 'name="code"' not in page  # the primary key is read-only once created

    response = client.post(
        change,
        {
            "name": "PSA (Kantata)",
            "kind": "psa",
            "description": "",
            "priority": "30",
            "subscribed_domains": ["customer", "contract"],
            "is_active": "on",
            "change_reason": "renamed after migration",
        },
    )

    assert response.status_code == 302
    system = System.objects.get(code="psa")
    assert (system.name, system.subscribed_domains) == ("PSA (Kantata)", ["customer", "contract"])
    row = system.history.latest()
    assert (row.history_actor, row.history_channel, row.history_change_reason) == (
        "boss",
        "web",
        "renamed after migration",
    )
    assert client.post(url(System, "delete", "psa"), {"post": "yes"}).status_code == 403


def test_api_client_page_shows_the_prefix_never_the_hash(client, boss):
    api_client, key = api_client_create(name="reporting", scopes=["read:customer"])

    page = client.get(url(ApiClient, "change", api_client.pk)).content.decode()

    assert api_client.key_prefix in page
    assert api_client.key_hash not in page and key not in page
    assert api_client.key_hash not in client.get(url(ApiClient, "changelist")).content.decode()


def test_reprocess_action_runs_the_pipeline_and_reports_outcomes(client, boss):
    two_systems_one_customer()
    selected = list(SourceRecord.objects.values_list("pk", flat=True))

    response = client.post(
        url(SourceRecord, "changelist"),
        {"action": "reprocess", "_selected_action": selected},
        follow=True,
    )

    assert response.status_code == 200
    assert "Re-processed: unchanged 2" in response.content.decode()
    assert CrossReference.objects.count() == 2
