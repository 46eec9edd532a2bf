"""Property tests over random sequences of small ingest operations.

Invariant 1 (nothing is lost): after any sequence, every non-deleted source record is either applied to an
active golden record (with its cross-reference) or visible in an open exception.
Invariant 2 (idempotent): applying the same operation again right after changes nothing at all.
And the golden record always equals survivorship over its live source records.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simple_history.models import registered_models

from canonical.domains import get_domain
from canonical.models import (
    ChangeEvent,
    CrossReference,
    DataException,
    GoldenStatus,
    MatchKey,
    PendingReference,
    SourceRecord,
    SourceStatus,
)
from canonical.services.golden import golden_compute, golden_values, live_sources
from tests.factories import ingest, record

pytestmark = pytest.mark.django_db

CUSTOMER_IDS = {"crm": ["C1", "C2", "C3"], "erp": ["E1", "E2"]}
SITES = ["a.example.com", "b.example.com", "c.example.com"]
NAMES = ["Acme", "Acme Inc", "Globex"]

hours = st.integers(min_value=0, max_value=4)
customer_sid = st.one_of(*[st.tuples(st.just(s), st.sampled_from(ids)) for s, ids in CUSTOMER_IDS.items()])


@st.composite
def customer_op(draw):
    system, sid = draw(customer_sid)
    kind = draw(st.sampled_from(["valid", "valid", "valid", "invalid", "incomplete", "delete"]))
    attributes = {"website": draw(st.sampled_from(SITES))}
    if kind != "incomplete":
        attributes["name"] = draw(st.sampled_from(NAMES))
    attributes["industry"] = draw(st.sampled_from([None, "IT", "Software"]))
    if system == "erp":
        attributes["city"] = draw(st.sampled_from(["Berlin", "Paris"]))
    if kind == "invalid":
        attributes["country"] = "Atlantis"
    return (system, "customer", record(sid, draw(hours), deleted=kind == "delete", **attributes))


@st.composite
def contract_op(draw):
    sid = draw(st.sampled_from(["K1", "K2"]))
    target_system, target = draw(customer_sid)
    customer = target if target_system == "crm" else {"system": target_system, "source_id": target}
    kind = draw(st.sampled_from(["valid", "valid", "invalid", "delete"]))
    attributes = {"contract_number": f"SOW-{sid}", "customer": customer, "title": draw(st.sampled_from(["A", "B"]))}
    if kind == "invalid":
        attributes["currency"] = "EURO"
    return ("crm", "contract", record(sid, draw(hours), deleted=kind == "delete", **attributes))


operations = st.lists(st.one_of(customer_op(), customer_op(), contract_op()), min_size=1, max_size=14)


def snapshot() -> dict:
    """Everything the pipeline writes (except timestamps of rows it did not touch, which stay equal anyway)."""
    state = {
        name: model.history.model.objects.count()
        for name, model in registered_models.items()
        if model._meta.app_label == "canonical"
    }
    state["events"] = ChangeEvent.objects.count()
    for model in (SourceRecord, CrossReference, DataException, PendingReference, MatchKey):
        state[model.__name__] = list(model.objects.order_by("pk").values())
    for domain in ("customer", "contract"):
        state[domain] = list(get_domain(domain).model.objects.order_by("pk").values())
    return state


def assert_nothing_is_lost() -> None:
    for sr in SourceRecord.objects.filter(deleted=False):
        open_exception = DataException.objects.filter(source_record=sr, status="open").exists()
        if sr.status == SourceStatus.APPLIED and sr.golden_id:
            golden = get_domain(sr.domain).model.objects.get(pk=sr.golden_id)
            assert golden.status == GoldenStatus.ACTIVE, f"{sr} is applied to an inactive golden record"
            assert CrossReference.objects.filter(source_record=sr, golden_id=sr.golden_id).exists()
        else:
            assert open_exception, f"{sr} ({sr.status}) is neither applied nor in an open exception"


def assert_golden_records_follow_their_sources() -> None:
    for domain in ("customer", "contract"):
        spec = get_domain(domain)
        for golden in spec.model.objects.all():
            sources = live_sources(domain, golden.pk)
            if not sources:
                assert golden.status == GoldenStatus.INACTIVE
                continue
            expected = golden_compute(domain, golden.pk, sources).values
            actual = golden_values(golden)
            for name in spec.field_names:
                if golden.provenance.get(name, {}).get("rule") == "retained":
                    continue
                assert actual[name] == expected[name], f"{domain} {golden.pk}.{name}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_nothing_is_lost_and_every_operation_is_idempotent(ops):
    with transaction.atomic():
        for system, domain, payload in ops:
            ingest(system, domain, payload)
            after_once = snapshot()
            (again,) = ingest(system, domain, payload)
            assert again.outcome in ("unchanged", "stale"), again
            assert snapshot() == after_once
            assert_nothing_is_lost()
        assert_golden_records_follow_their_sources()
        transaction.set_rollback(True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_the_same_batch_twice_leaves_the_state_of_once(ops):
    with transaction.atomic():
        for system, domain, payload in ops:
            ingest(system, domain, payload)
        once = snapshot()
        for system, domain, payload in ops:
            ingest(system, domain, payload)
        assert snapshot() == once
        transaction.set_rollback(True)
