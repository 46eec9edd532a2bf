"""The ingest pipeline through its service functions: idempotence, ordering, deletes, the outbox, the history."""

from __future__ import annotations

import pytest
from simple_history.models import registered_models

from canonical.domains import get_domain
from canonical.models import (
    ChangeEvent,
    ChangeEventType,
    CrossReference,
    Customer,
    DataException,
    GoldenStatus,
    SourceRecord,
    SourceStatus,
)
from canonical.services.ingest import EnvelopeError, envelope_parse
from tests.factories import ingest, record

pytestmark = pytest.mark.django_db


def history_counts() -> dict[str, int]:
    """Rows in every canonical history table (golden records, xrefs, rules, systems, exceptions, overrides)."""
    return {
        name: model.history.model.objects.count()
        for name, model in registered_models.items()
        if model._meta.app_label == "canonical"
    }


def acme(source_id="C1", hours=0, **extra):
    attributes = {"name": "Acme", "website": "https://acme.example.com", "industry": "Software", **extra}
    return record(source_id, hours, **attributes)


BATCH = [
    acme(),
    record("C2", 0, name="Globex", website="globex.example.com"),
    record("C3", 0, name="Initech", website="initech.example.com", country="US"),
]


def test_same_batch_twice_is_unchanged_and_writes_no_history_or_event():
    first = ingest("crm", "customer", *BATCH)
    assert [r.outcome for r in first] == ["created", "created", "created"]
    history, events = history_counts(), ChangeEvent.objects.count()
    sources = list(SourceRecord.objects.order_by("pk").values())

    second = ingest("crm", "customer", *BATCH)

    assert [r.outcome for r in second] == ["unchanged", "unchanged", "unchanged"]
    assert [r.golden_id for r in second] == [r.golden_id for r in first]
    assert history_counts() == history
    assert ChangeEvent.objects.count() == events
    assert list(SourceRecord.objects.order_by("pk").values()) == sources
    assert Customer.objects.count() == 3


def test_created_golden_record_has_history_row_event_and_xref_attributed_to_the_context():
    (result,) = ingest("crm", "customer", acme(), actor="connector:crm", channel="connector", request_id="req-1")
    customer = Customer.objects.get(pk=result.golden_id)
    assert customer.name == "Acme" and customer.version == 1
    rows = list(customer.history.all())
    assert len(rows) == 1
    row = rows[0]
    assert (row.history_type, row.history_actor, row.history_channel, row.history_request_id) == (
        "+",
        "connector:crm",
        "connector",
        "req-1",
    )
    assert row.history_change_reason == "created from crm customer C1"
    xref = CrossReference.objects.get(system_id="crm", domain="customer", source_id="C1")
    assert str(xref.golden_id) == result.golden_id
    assert xref.history.get().history_request_id == "req-1"
    event = ChangeEvent.objects.get(golden_id=customer.pk)
    assert event.type == ChangeEventType.CREATED
    assert event.origin_system_id == "crm"
    assert (event.actor, event.request_id, event.version) == ("connector:crm", "req-1", 1)
    assert event.data["name"] == "Acme"


def test_update_writes_one_history_row_and_one_event_with_changed_fields():
    (created,) = ingest("crm", "customer", acme())
    (updated,) = ingest("crm", "customer", acme(hours=1, industry="Fintech"), reason="nightly pull", request_id="r2")
    assert updated.outcome == "updated"
    customer = Customer.objects.get(pk=created.golden_id)
    assert customer.industry == "Fintech" and customer.version == 2
    latest = customer.history.first()
    assert customer.history.count() == 2
    assert (latest.history_type, latest.history_request_id, latest.history_change_reason) == ("~", "r2", "nightly pull")
    event = ChangeEvent.objects.filter(golden_id=customer.pk).last()
    assert event.type == ChangeEventType.UPDATED
    assert event.changed_fields == ["industry"]
    assert event.origin_system_id == "crm" and event.version == 2


def test_same_content_with_a_newer_timestamp_is_unchanged():
    ingest("crm", "customer", acme())
    history = history_counts()
    (result,) = ingest("crm", "customer", acme(hours=5))
    assert result.outcome == "unchanged"
    assert history_counts() == history
    assert SourceRecord.objects.get(source_id="C1").updated_at.hour == 5


def test_older_update_than_held_is_stale_and_changes_nothing():
    ingest("crm", "customer", acme(hours=10, industry="Fintech"))
    history, events = history_counts(), ChangeEvent.objects.count()
    (result,) = ingest("crm", "customer", acme(hours=2, industry="Mining"))
    assert result.outcome == "stale"
    assert Customer.objects.get().industry == "Fintech"
    sr = SourceRecord.objects.get(source_id="C1")
    assert sr.attributes["industry"] == "Fintech" and sr.updated_at.hour == 10
    assert history_counts() == history and ChangeEvent.objects.count() == events


def test_older_delete_than_held_is_stale_too():
    ingest("crm", "customer", acme(hours=10))
    (result,) = ingest("crm", "customer", acme(hours=9, deleted=True))
    assert result.outcome == "stale"
    assert Customer.objects.get().status == GoldenStatus.ACTIVE


def test_golden_goes_inactive_only_when_no_live_source_is_left():
    (crm,) = ingest("crm", "customer", acme())
    (erp,) = ingest("erp", "customer", record("E1", 0, name="ACME Inc", website="acme.example.com", city="Berlin"))
    assert erp.outcome == "linked" and erp.golden_id == crm.golden_id

    (first_delete,) = ingest("crm", "customer", acme(hours=1, deleted=True))
    customer = Customer.objects.get(pk=crm.golden_id)
    assert first_delete.outcome == "deleted"
    assert customer.status == GoldenStatus.ACTIVE
    assert customer.name == "ACME Inc"  # the owner left; the other live source fills in
    assert customer.provenance["name"]["rule"] == "fallback"
    assert SourceRecord.objects.get(source_id="C1").status == SourceStatus.DELETED

    (last_delete,) = ingest("erp", "customer", record("E1", 1, deleted=True))
    customer.refresh_from_db()
    assert last_delete.outcome == "deleted"
    assert customer.status == GoldenStatus.INACTIVE
    event = ChangeEvent.objects.filter(golden_id=customer.pk).last()
    assert event.type == ChangeEventType.DEACTIVATED and event.changed_fields == ["status"]
    assert event.origin_system_id == "erp"
    assert customer.history.first().history_change_reason.startswith("recomputed (status)")


def test_resent_undeleted_record_reactivates_the_golden_record():
    (created,) = ingest("crm", "customer", acme())
    ingest("crm", "customer", acme(hours=1, deleted=True))
    assert Customer.objects.get().status == GoldenStatus.INACTIVE
    (back,) = ingest("crm", "customer", acme(hours=2))
    customer = Customer.objects.get()
    assert back.outcome == "updated" and back.golden_id == created.golden_id
    assert customer.status == GoldenStatus.ACTIVE
    types = list(ChangeEvent.objects.filter(golden_id=customer.pk).values_list("type", flat=True))
    assert types == [ChangeEventType.CREATED, ChangeEventType.DEACTIVATED, ChangeEventType.REACTIVATED]
    assert [h.status for h in customer.history.order_by("history_date", "history_id")] == [
        "active",
        "inactive",
        "active",
    ]


def test_deleting_a_record_never_seen_keeps_it_without_golden_record():
    (result,) = ingest("crm", "customer", acme(deleted=True))
    assert result.outcome == "deleted" and result.golden_id is None
    assert SourceRecord.objects.get().status == SourceStatus.DELETED
    assert Customer.objects.count() == 0 and ChangeEvent.objects.count() == 0


def test_delete_closes_the_records_open_exceptions():
    ingest("crm", "customer", record("C9", 0, name="No site", country="Atlantis"))
    exc = DataException.objects.get()
    ingest("crm", "customer", record("C9", 1, deleted=True, name="No site", country="Atlantis"))
    exc.refresh_from_db()
    assert exc.status == "resolved" and exc.resolution_note == "deleted in its system"
    assert exc.history.count() == 2


def test_records_match_across_systems_by_identifier_and_keep_both_xrefs():
    (crm,) = ingest("crm", "customer", acme())
    (erp,) = ingest("erp", "customer", record("E1", 0, name="ACME", website="http://www.acme.example.com/about"))
    assert erp.outcome == "linked" and erp.golden_id == crm.golden_id
    assert set(CrossReference.objects.values_list("system_id", "source_id")) == {("crm", "C1"), ("erp", "E1")}


def test_change_events_are_rolled_back_with_the_golden_change():
    """The outbox row is written in the same transaction as the golden row: an aborted batch leaves neither."""
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        ingest("crm", "customer", acme())
        assert ChangeEvent.objects.count() == 1
        raise RuntimeError("abort after the change")
    assert Customer.objects.count() == 0 and ChangeEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"updated_at": "2024-01-01"}, "source_id"),
        ({"source_id": "A", "updated_at": "yesterday"}, "updated_at"),
        ({"source_id": "A", "deleted": "maybe"}, "deleted"),
        ({"source_id": "A", "attributes": ["name"]}, "attributes"),
        ({"source_id": "A", "attributes": {"nme": "typo"}}, "attributes"),
        ({"source_id": "A", "colour": "red"}, "non_field_errors"),
    ],
)
def test_malformed_envelope_is_refused_with_field_messages(payload, field):
    with pytest.raises(EnvelopeError) as info:
        envelope_parse(payload, spec=get_domain("customer"))
    assert field in info.value.errors and info.value.errors[field]


def test_legal_entity_without_is_internal_is_created_as_not_internal():
    (result,) = ingest("erp", "legal_entity", record("L1", 0, name="Acme GmbH", country="DE"))
    assert result.outcome == "created"
    from canonical.models import LegalEntity

    assert LegalEntity.objects.get().is_internal is False


def test_required_value_kept_and_flagged_when_the_only_source_that_had_it_is_deleted():
    (crm,) = ingest("crm", "customer", acme())
    ingest("erp", "customer", record("E1", 0, website="acme.example.com", city="Berlin"))
    (deleted,) = ingest("crm", "customer", acme(hours=1, deleted=True))
    customer = Customer.objects.get(pk=crm.golden_id)
    assert deleted.outcome == "deleted"
    assert customer.status == GoldenStatus.ACTIVE
    assert customer.name == "Acme"  # kept: no live source has a name, the golden record keeps its last one
    assert customer.provenance["name"]["rule"] == "retained"
    assert customer.city == "Berlin"
    exc = DataException.objects.get(kind="incomplete", golden_id=customer.pk, status="open")
    assert exc.source_record is None and "name" in exc.message
    assert exc.history.get().history_actor == "pytest"

    ingest("crm", "customer", acme(hours=2))
    exc.refresh_from_db()
    customer.refresh_from_db()
    assert exc.status == "resolved"
    assert customer.provenance["name"]["rule"] == "owner"


def test_a_retained_required_value_does_not_block_other_updates():
    (crm,) = ingest("crm", "customer", acme())
    ingest("erp", "customer", record("E1", 0, website="acme.example.com", city="Berlin"))
    ingest("crm", "customer", acme(hours=1, deleted=True))
    (moved,) = ingest("erp", "customer", record("E1", 1, website="acme.example.com", city="Hamburg"))
    customer = Customer.objects.get(pk=crm.golden_id)
    assert moved.outcome == "updated"
    assert (customer.name, customer.city) == ("Acme", "Hamburg")
    assert DataException.objects.filter(status="open").count() == 1  # only the golden record's own


def test_two_versions_with_the_same_updated_at_converge_whatever_the_arrival_order():
    from django.db import transaction

    a, b = acme(industry="Fintech"), acme(industry="Mining")
    with transaction.atomic():
        ingest("crm", "customer", b, a)
        reversed_order = Customer.objects.get().industry
        transaction.set_rollback(True)
    ingest("crm", "customer", a, b)
    assert Customer.objects.get().industry == reversed_order
    history, events = history_counts(), ChangeEvent.objects.count()
    outcomes = [r.outcome for r in ingest("crm", "customer", a, b)]
    assert sorted(outcomes) == ["stale", "unchanged"]
    assert history_counts() == history and ChangeEvent.objects.count() == events


def test_a_delete_with_the_same_updated_at_as_the_held_version_wins():
    ingest("crm", "customer", acme(hours=3))
    (result,) = ingest("crm", "customer", acme(hours=3, deleted=True))
    assert result.outcome == "deleted"
    (again,) = ingest("crm", "customer", acme(hours=3))
    assert again.outcome == "stale"
    assert Customer.objects.get().status == GoldenStatus.INACTIVE


def test_same_content_confirmed_later_becomes_the_most_recent_value():
    ingest("erp", "customer", record("E1", 0, name="A", website="a.example.com", industry="IT"))
    ingest("erp", "customer", record("E2", 1, name="A", website="a.example.com", industry="Software"))
    assert Customer.objects.get().industry == "Software"  # crm owns industry and never sent it: recency decides
    (touched,) = ingest("erp", "customer", record("E1", 2, name="A", website="a.example.com", industry="IT"))
    customer = Customer.objects.get()
    assert touched.outcome == "updated" and customer.industry == "IT"
    assert customer.provenance["industry"]["at"] == "2024-01-01T02:00:00+00:00"
