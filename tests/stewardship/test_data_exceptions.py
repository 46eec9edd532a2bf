"""Steward actions on the exception queues: retry, resolve, ignore with a reason, assign."""

from __future__ import annotations

import pytest

from canonical.models import Contract, DataException, System
from stewardship.services.common import StewardshipError
from stewardship.services.data_exceptions import (
    data_exception_assign,
    data_exception_ignore,
    data_exception_resolve,
    data_exception_retry,
)
from tests.factories import DataExceptionFactory, ingest, record

pytestmark = pytest.mark.django_db


def contract_naming_an_unknown_system():
    ref = {"system": "billing", "source_id": "B1"}
    (result,) = ingest("crm", "contract", record("K1", 0, contract_number="SOW-1", customer=ref))
    assert result.outcome == "exception"
    return DataException.objects.get(kind="validation", status="open")


def test_retry_reprocesses_the_source_record_and_the_exception_closes_when_its_cause_is_gone(steward):
    exc = contract_naming_an_unknown_system()
    still, result = data_exception_retry(exception_id=exc.pk, user=steward)
    assert result.outcome == "exception" and still.status == "open"

    System.objects.create(code="billing", name="Billing")
    ingest("billing", "customer", record("B1", 0, name="Acme"))
    done, result = data_exception_retry(exception_id=exc.pk, user=steward, reason="billing system added")
    assert result.outcome == "created" and done.status == "resolved"
    assert Contract.objects.get().contract_number == "SOW-1"
    last = done.history.first()
    assert (last.history_actor, last.history_channel, last.history_change_reason) == (
        "stella",
        "steward",
        "billing system added",
    )


def test_retry_of_an_exception_without_a_source_record_says_what_to_do(steward):
    exc = DataExceptionFactory(kind="dead_letter")
    with pytest.raises(StewardshipError) as err:
        data_exception_retry(exception_id=exc.pk, user=steward)
    assert "resolve or ignore it instead" in err.value.errors["exception"][0]


def test_resolve_and_ignore_close_the_exception_with_history(steward):
    a, b = DataExceptionFactory(), DataExceptionFactory()
    data_exception_resolve(exception_id=a.pk, note="fixed in the CRM", user=steward)
    with pytest.raises(StewardshipError) as err:
        data_exception_ignore(exception_id=b.pk, reason="", user=steward)
    assert err.value.errors == {"reason": ["a reason is required for ignoring an exception"]}
    assert DataException.objects.get(pk=b.pk).status == "open"
    data_exception_ignore(exception_id=b.pk, reason="test data", user=steward)

    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.status, a.resolution_note) == ("resolved", "fixed in the CRM") and a.resolved_at
    assert (b.status, b.resolution_note) == ("ignored", "test data")
    assert a.history.first().history_change_reason == "fixed in the CRM"
    assert b.history.first().history_actor == "stella"
    with pytest.raises(StewardshipError) as err:
        data_exception_resolve(exception_id=a.pk, note="again", user=steward)
    assert "already resolved" in err.value.errors["status"][0]


def test_assign_an_exception_to_a_steward(steward, other_steward):
    exc = DataExceptionFactory()
    data_exception_assign(exception_id=exc.pk, assignee=other_steward, user=steward)
    exc.refresh_from_db()
    assert exc.assignee == other_steward
    assert exc.history.first().history_change_reason == "assigned to sam"
