"""Ownership through the pipeline: a non-owner's different value is kept and flagged, never applied."""

from __future__ import annotations

import pytest

from canonical.models import ChangeEvent, Customer, DataException, SourceRecord
from tests.factories import ingest, record

pytestmark = pytest.mark.django_db

SITE = "https://acme.example.com"


def test_non_owner_update_is_kept_but_not_applied():
    (crm,) = ingest("crm", "customer", record("C1", 0, name="Acme", website=SITE, industry="Software"))
    customer = Customer.objects.get(pk=crm.golden_id)
    history, events = customer.history.count(), ChangeEvent.objects.count()

    (erp,) = ingest("erp", "customer", record("E1", 5, name="ACME Holdings", website=SITE), request_id="r-erp")

    customer.refresh_from_db()
    assert erp.outcome == "linked"
    assert customer.name == "Acme"  # crm owns name: erp's newer value is not applied
    assert customer.provenance["name"]["system"] == "crm" and customer.provenance["name"]["rule"] == "owner"
    sr = SourceRecord.objects.get(system="erp", source_id="E1")
    assert sr.values["name"] == "ACME Holdings"  # kept on its source record
    assert sr.conflicts == {"name": {"value": "ACME Holdings", "owner": "crm", "owner_value": "Acme"}}
    exc = DataException.objects.get(kind="ownership_conflict", status="open")
    assert exc.source_record == sr and exc.golden_id == customer.pk and "name" in exc.message
    assert exc.history.get().history_request_id == "r-erp"
    # Linking erp changed provenance of nothing crm owns and added no value: no event was needed.
    assert ChangeEvent.objects.count() == events
    assert customer.history.count() == history


def test_owners_later_value_wins_and_the_conflict_resolves_when_they_agree():
    ingest("crm", "customer", record("C1", 0, name="Acme", website=SITE))
    ingest("erp", "customer", record("E1", 1, name="ACME Holdings", website=SITE))
    (crm,) = ingest("crm", "customer", record("C1", 2, name="ACME Holdings", website=SITE))
    customer = Customer.objects.get()
    assert crm.outcome == "updated" and customer.name == "ACME Holdings"
    exc = DataException.objects.get(kind="ownership_conflict")
    assert exc.status == "resolved" and exc.resolution_note == "the conflict went away"
    assert SourceRecord.objects.get(system="erp").conflicts == {}

    (renamed,) = ingest("crm", "customer", record("C1", 3, name="Acme Group", website=SITE))
    customer.refresh_from_db()
    assert renamed.outcome == "updated" and customer.name == "Acme Group"
    reopened = DataException.objects.get(kind="ownership_conflict", status="open")
    assert reopened.detail["conflicts"]["name"]["owner_value"] == "Acme Group"


def test_non_owner_fills_a_field_the_owner_never_sent_marked_as_fallback():
    (crm,) = ingest("crm", "customer", record("C1", 0, name="Acme", website=SITE))
    (psa,) = ingest("psa", "customer", record("P1", 1, name="Acme", website=SITE, phone="+49 30 1234", industry="IT"))
    customer = Customer.objects.get(pk=crm.golden_id)
    assert psa.outcome == "linked"
    assert customer.phone == "+49 30 1234"
    assert customer.provenance["phone"] == {
        "system": "psa",
        "source_record": SourceRecord.objects.get(system="psa").pk,
        "source_id": "P1",
        "rule": "fallback",
        "at": "2024-01-01T01:00:00+00:00",
    }
    assert DataException.objects.filter(kind="ownership_conflict").count() == 0
    event = ChangeEvent.objects.filter(golden_id=customer.pk).last()
    assert set(event.changed_fields) == {"phone", "industry"} and event.origin_system_id == "psa"

    # Once the owner sends the field, the owner's value wins and psa's different one becomes a conflict.
    ingest("crm", "customer", record("C1", 2, name="Acme", website=SITE, phone="+49 30 9999"))
    customer.refresh_from_db()
    assert customer.phone == "+49 30 9999" and customer.provenance["phone"]["rule"] == "owner"
    assert DataException.objects.get(kind="ownership_conflict").detail["conflicts"]["phone"]["value"] == "+49 30 1234"


def test_owner_clearing_a_field_clears_it_even_when_a_non_owner_has_a_value():
    ingest("crm", "customer", record("C1", 0, name="Acme", website=SITE, industry="Software"))
    ingest("psa", "customer", record("P1", 1, name="Acme", website=SITE, industry="IT"))
    ingest("crm", "customer", record("C1", 2, name="Acme", website=SITE, industry=None))
    customer = Customer.objects.get()
    assert customer.industry is None and customer.provenance["industry"]["rule"] == "owner"
    assert DataException.objects.get(kind="ownership_conflict", status="open").detail["conflicts"] == {
        "industry": {"value": "IT", "owner": "crm", "owner_value": None}
    }


def test_field_level_owner_beats_domain_owner():
    ingest("crm", "customer", record("C1", 0, name="Acme", website=SITE, city="Munich"))
    ingest("erp", "customer", record("E1", 0, website=SITE, city="Berlin"))
    customer = Customer.objects.get()
    assert customer.city == "Berlin"  # billing address: erp
    assert customer.provenance["city"]["system"] == "erp"
    assert SourceRecord.objects.get(system="crm").conflicts == {
        "city": {"value": "Munich", "owner": "erp", "owner_value": "Berlin"}
    }


def test_deleting_the_non_owner_closes_its_conflict():
    ingest("crm", "customer", record("C1", 0, name="Acme", website=SITE))
    ingest("erp", "customer", record("E1", 1, name="ACME Holdings", website=SITE))
    ingest("erp", "customer", record("E1", 2, deleted=True))
    exc = DataException.objects.get(kind="ownership_conflict")
    assert exc.status == "resolved"


def _exception_reads(queries) -> int:
    return sum(1 for q in queries if q["sql"].startswith("SELECT") and '"canonical_dataexception"' in q["sql"])


def test_a_link_refreshes_every_source_s_conflict_reading_the_open_exceptions_once():
    """Each link recomputes the golden record and refreshes the ownership_conflict exception of every source in
    conflict: the open ones are read in one query, not one per source (a thousand ERP records linked to one
    customer were quadratic in queries). A steward's resolved exception is still opened again while the conflict
    stands, as one source's own look-up did."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ingest("crm", "customer", record("C1", 0, name="Acme", website=SITE))
    ingest("erp", "customer", *[record(f"E{i}", 1, name="ACME Holdings", website=SITE) for i in range(4)])
    assert DataException.objects.filter(kind="ownership_conflict", status="open").count() == 4
    resolved = DataException.objects.get(kind="ownership_conflict", source_record__source_id="E0")
    resolved.status = "resolved"
    resolved.save()
    reads = []
    for i in (4, 5, 6):
        with CaptureQueriesContext(connection) as ctx:
            (result,) = ingest("erp", "customer", record(f"E{i}", 2, name="ACME Holdings", website=SITE))
        assert result.outcome == "linked"
        reads.append(_exception_reads(ctx.captured_queries))
    assert reads[0] == reads[1] == reads[2]  # not one more per source in conflict
    open_now = DataException.objects.filter(kind="ownership_conflict", status="open")
    assert sorted(e.source_record.source_id for e in open_now) == [f"E{i}" for i in range(7)]
    assert DataException.objects.filter(kind="ownership_conflict").count() == 8  # E0's resolved one and its new one
    assert all(e.detail["conflicts"]["name"]["owner_value"] == "Acme" for e in open_now)


def test_with_two_open_conflict_exceptions_both_paths_refresh_the_one_exception_raise_finds():
    from django.db import transaction

    from canonical.audit import Channel, audit_context
    from canonical.domains import get_domain
    from canonical.services.bulk import source_records_ingest_bulk
    from canonical.services.exceptions import open_exceptions
    from canonical.services.ingest import envelope_parse, source_records_ingest

    ingest("crm", "customer", record("C1", 0, name="Acme", website=SITE))
    ingest("erp", "customer", record("E1", 1, name="ACME Holdings", website=SITE))
    first = DataException.objects.get(kind="ownership_conflict", status="open")
    second = DataException.objects.create(  # opened later for the same source record (a concurrent raise, say)
        kind="ownership_conflict", message="dup", detail={}, source_record=first.source_record,
        golden_id=first.golden_id, domain="customer", system_id="erp",
    )  # fmt: skip
    sid = first.source_record_id
    looked_up = DataException.objects.filter(kind="ownership_conflict", source_record_id=sid, status="open").first()
    assert looked_up == second and open_exceptions(kind="ownership_conflict", source_record_ids=[sid])[sid] == second
    spec = get_domain("customer")
    after = {}
    for name, fn in (("record by record", source_records_ingest), ("bulk", source_records_ingest_bulk)):
        point = transaction.savepoint()
        with audit_context(actor="pytest", channel=Channel.JOB):
            fn(system="crm", domain="customer", envelopes=[envelope_parse(record("C2", 3, name="Acme Inc", website=SITE), spec=spec)])  # fmt: skip
        after[name] = sorted(DataException.objects.filter(kind="ownership_conflict").values_list("pk", "message"))
        transaction.savepoint_rollback(point)
    assert after["record by record"] == after["bulk"]
    assert dict(after["bulk"])[first.pk] == first.message  # the newer one was refreshed, the older left as it was
    assert dict(after["bulk"])[second.pk] != "dup"
