"""canonical.services.instances.new_instance builds the instance Model.__init__ builds."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db.models.signals import post_init

from canonical.domains import DOMAINS
from canonical.models import ChangeEvent, DataException, SourceRecord
from canonical.services.instances import new_instance
from stewardship.models import ReviewTask

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)

CASES = [
    (
        SourceRecord,
        dict(
            pk=-3,
            system_id="crm",
            domain="customer",
            source_id="C-1",
            attributes={"name": "Acme"},
            values={"name": "Acme"},
            updated_at=NOW,
            deleted=False,
            content_hash="abc",
            status="applied",
            errors={},
            conflicts={},
        ),
    ),
    (SourceRecord, dict(system_id="erp", domain="contract", source_id="K-9")),  # the rest by default
    (
        DataException,
        dict(
            kind="ownership_conflict",
            message="m",
            detail={"conflicts": {}},
            source_record_id=-1,
            golden_id=uuid.UUID(int=5),
            domain="customer",
            system_id="erp",
            status="open",
            created_at=NOW,
            updated_at=NOW,
        ),
    ),
    (
        ReviewTask,
        dict(domain="customer", golden_id=uuid.UUID(int=7), source_record_id=-2, candidates=[], created_at=NOW),
    ),
    (
        ChangeEvent,
        dict(event_id=uuid.UUID(int=9), type="created", domain="customer", golden_id=uuid.UUID(int=1), version=1),
    ),
    *[
        (spec.model, dict(pk=uuid.UUID(int=11), status="active", version=1, provenance={"name": {"rule": "owner"}}))
        for spec in DOMAINS.values()
    ],
]


def _fields(instance) -> list[tuple[str, object]]:
    return [(k, v) for k, v in instance.__dict__.items() if k != "_state"]


@pytest.mark.parametrize(("model", "values"), CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_the_same_instance_as_model_init(model, values):
    expected = model(**values)
    built = new_instance(model, **dict(values))
    assert type(built) is model
    assert _fields(built) == _fields(expected)  # the same attnames, in the same order, with equal values
    assert (built._state.adding, built._state.db) == (expected._state.adding, expected._state.db) == (True, None)
    assert built.pk == expected.pk


def test_callable_defaults_are_called_for_each_instance():
    a = new_instance(ChangeEvent, type="created", domain="customer", version=1)
    b = new_instance(ChangeEvent, type="created", domain="customer", version=1)
    assert isinstance(a.event_id, uuid.UUID) and a.event_id != b.event_id
    assert a.data == {} and a.data is not b.data and a.changed_fields == [] and a.changed_fields is not b.changed_fields


def test_an_unknown_argument_is_refused():
    with pytest.raises(TypeError, match="unexpected keyword arguments: colour"):
        new_instance(SourceRecord, system_id="crm", colour="red")


def test_a_model_with_an_init_receiver_goes_through_model_init():
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=SourceRecord)
    try:
        built = new_instance(SourceRecord, system_id="crm", domain="customer", source_id="C-2")
    finally:
        post_init.disconnect(receiver, sender=SourceRecord)
    assert seen == [built]
