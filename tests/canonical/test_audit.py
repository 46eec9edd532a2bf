"""Audit: every history row says who, through what, in which request and why; golden records read as of a time."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from canonical.audit import Channel, audit_context, audit_reason, current_context
from canonical.models import CrossReference, Customer, OwnershipRule
from tests.factories import ingest, record

pytestmark = pytest.mark.django_db


def test_as_of_returns_the_earlier_values_after_an_update():
    (created,) = ingest("crm", "customer", record("C1", 0, name="Acme", industry="Software"))
    between = timezone.now()
    ingest("crm", "customer", record("C1", 1, name="Acme Group", industry="Fintech"))

    customer = Customer.objects.get(pk=created.golden_id)
    past = customer.history.as_of(between)
    assert (past.name, past.industry, past.version) == ("Acme", "Software", 1)
    assert (customer.name, customer.industry, customer.version) == ("Acme Group", "Fintech", 2)
    assert [c.name for c in Customer.history.as_of(between)] == ["Acme"]
    with pytest.raises(Customer.DoesNotExist):
        customer.history.as_of(between - dt.timedelta(days=1))


def test_history_rows_carry_actor_channel_request_id_and_reason():
    ingest("crm", "customer", record("C1", 0, name="Acme"), actor="api:crm-sync", channel=Channel.API, request_id="a1")
    ingest(
        "crm",
        "customer",
        record("C1", 1, name="Acme Group"),
        actor="connector:crm",
        channel=Channel.CONNECTOR,
        request_id="b2",
        reason="rename in CRM",
    )
    rows = list(Customer.objects.get().history.order_by("history_id"))
    assert [(r.history_actor, r.history_channel, r.history_request_id) for r in rows] == [
        ("api:crm-sync", "api", "a1"),
        ("connector:crm", "connector", "b2"),
    ]
    assert rows[0].history_change_reason == "created from crm customer C1"
    assert rows[1].history_change_reason == "rename in CRM"
    xref = CrossReference.objects.get().history.get()
    assert (xref.history_actor, xref.history_channel, xref.history_request_id) == ("api:crm-sync", "api", "a1")


def test_history_reason_says_what_changed_when_the_context_gives_no_reason():
    ingest("crm", "customer", record("C1", 0, name="Acme"))
    ingest("crm", "customer", record("C1", 1, name="Acme", industry="IT"))
    assert (
        Customer.objects.get().history.first().history_change_reason == "recomputed (industry) after a change from crm"
    )


def test_nested_contexts_keep_the_request_id_and_audit_reason_keeps_actor():
    with audit_context(actor="alice", channel=Channel.WEB, request_id="outer") as outer:
        with audit_context(actor="job:x", channel=Channel.JOB) as inner:
            assert inner.request_id == "outer"
        with audit_reason("because") as reasoned:
            assert (reasoned.actor, reasoned.channel, reasoned.reason) == ("alice", "web", "because")
        assert current_context() is outer
    assert current_context().actor == "system"


def test_changes_outside_any_context_are_attributed_to_the_system_job():
    rule = OwnershipRule.objects.get(domain="project", field="")
    rule.note = "edited"
    rule.save()
    row = rule.history.first()
    assert (row.history_actor, row.history_channel, row.history_request_id) == ("system", "job", "")


def test_every_request_gets_its_own_request_id():
    with audit_context(actor="a", channel=Channel.API) as first:
        pass
    with audit_context(actor="a", channel=Channel.API) as second:
        pass
    assert first.request_id and second.request_id and first.request_id != second.request_id
