"""factory_boy factories for every model, and a small helper to run the real ingest pipeline in tests.

Golden-record factories build rows directly (for API, admin and steward tests that need records without
going through ingest); tests of the pipeline itself use `ingest()` so that the real services run.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import factory
from django.utils import timezone

from canonical import models as m
from canonical.audit import Channel, audit_context
from canonical.domains import get_domain

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def at(hours: int = 0) -> str:
    """An ISO `updated_at` `hours` after a fixed start, so tests control ordering exactly."""
    return (T0 + dt.timedelta(hours=hours)).isoformat()


def ingest(
    system: str,
    domain: str,
    *records: dict[str, Any],
    actor: str = "pytest",
    channel: str = Channel.JOB,
    request_id: str | None = None,
    reason: str = "",
):
    """Parse and ingest records through the real services, inside an audit context. Returns the results."""
    from canonical.services.ingest import envelope_parse, source_records_ingest

    spec = get_domain(domain)
    envelopes = [envelope_parse(r, spec=spec) for r in records]
    with audit_context(actor=actor, channel=channel, request_id=request_id, reason=reason):
        return source_records_ingest(system=system, domain=domain, envelopes=envelopes)


def record(source_id: str, hours: int = 0, deleted: bool = False, **attributes: Any) -> dict[str, Any]:
    """One ingest object in the REST/JSON Lines shape."""
    return {"source_id": source_id, "updated_at": at(hours), "deleted": deleted, "attributes": attributes}


class SystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.System
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"sys{n}")
    name = factory.LazyAttribute(lambda o: o.code.upper())
    kind = "file"
    priority = 100


class OwnershipRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.OwnershipRule
        django_get_or_create = ("domain", "field")

    domain = "customer"
    field = ""
    system = factory.SubFactory(SystemFactory, code="crm")


class _GoldenFactory(factory.django.DjangoModelFactory):
    status = m.GoldenStatus.ACTIVE
    version = 1


class LegalEntityFactory(_GoldenFactory):
    class Meta:
        model = m.LegalEntity

    name = factory.Sequence(lambda n: f"Entity {n} GmbH")
    country = "DE"
    is_internal = False


class CustomerFactory(_GoldenFactory):
    class Meta:
        model = m.Customer

    name = factory.Sequence(lambda n: f"Customer {n}")
    website = factory.Sequence(lambda n: f"https://customer{n}.example.com")
    country = "DE"


class RateCardFactory(_GoldenFactory):
    class Meta:
        model = m.RateCard

    code = factory.Sequence(lambda n: f"RC-{n:04d}")
    name = factory.Sequence(lambda n: f"Rate card {n}")
    currency = "EUR"
    lines = factory.LazyFunction(lambda: [{"role": "Consultant", "grade": None, "unit": "hour", "rate": "120.00"}])


class ContractFactory(_GoldenFactory):
    class Meta:
        model = m.Contract

    contract_number = factory.Sequence(lambda n: f"C-{n:05d}")
    title = factory.Sequence(lambda n: f"Statement of work {n}")
    customer = factory.SubFactory(CustomerFactory)
    contract_type = m.ContractType.TIME_AND_MATERIALS
    currency = "EUR"


class ResourceFactory(_GoldenFactory):
    class Meta:
        model = m.Resource

    first_name = factory.Sequence(lambda n: f"Ada{n}")
    last_name = factory.Sequence(lambda n: f"Lovelace{n}")
    email = factory.LazyAttribute(lambda o: f"{o.first_name}.{o.last_name}@firm.example.com".lower())
    employee_number = factory.Sequence(lambda n: f"E{n:05d}")
    worker_type = m.WorkerType.EMPLOYEE
    date_of_birth = dt.date(1990, 1, 1)
    national_id = factory.Sequence(lambda n: f"NID{n:06d}")


class ProjectFactory(_GoldenFactory):
    class Meta:
        model = m.Project

    project_code = factory.Sequence(lambda n: f"P-{n:05d}")
    name = factory.Sequence(lambda n: f"Project {n}")
    contract = factory.SubFactory(ContractFactory)
    customer = factory.SelfAttribute("contract.customer")
    project_manager = factory.SubFactory(ResourceFactory)


class SourceRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.SourceRecord

    system = factory.SubFactory(SystemFactory, code="crm")
    domain = "customer"
    source_id = factory.Sequence(lambda n: f"SRC{n:06d}")
    attributes = factory.LazyFunction(dict)
    values = factory.LazyFunction(dict)
    updated_at = factory.LazyFunction(timezone.now)
    content_hash = factory.LazyFunction(lambda: uuid.uuid4().hex)
    status = m.SourceStatus.APPLIED


class CrossReferenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.CrossReference

    system = factory.SubFactory(SystemFactory, code="crm")
    domain = "customer"
    source_id = factory.Sequence(lambda n: f"X{n:06d}")
    golden_id = factory.LazyFunction(uuid.uuid4)


class MatchKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.MatchKey

    source_record = factory.SubFactory(SourceRecordFactory)
    domain = factory.SelfAttribute("source_record.domain")
    key_type = "website_domain"
    key_value = factory.Sequence(lambda n: f"customer{n}.example.com")
    golden_id = factory.LazyFunction(uuid.uuid4)


class PendingReferenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.PendingReference

    source_record = factory.SubFactory(SourceRecordFactory, domain="contract", status=m.SourceStatus.PENDING_REFERENCE)
    field = "customer"
    target_system = factory.SubFactory(SystemFactory, code="crm")
    target_domain = "customer"
    target_source_id = factory.Sequence(lambda n: f"SRC{n:06d}")


class DataExceptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.DataException

    kind = m.ExceptionKind.VALIDATION
    status = m.ExceptionStatus.OPEN
    domain = "customer"
    system = factory.SubFactory(SystemFactory, code="crm")
    message = factory.Sequence(lambda n: f"exception {n}")


class FieldOverrideFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.FieldOverride

    domain = "customer"
    golden_id = factory.LazyFunction(uuid.uuid4)
    field = "name"
    value = "Pinned name"
    reason = "confirmed with the client"


class ChangeEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.ChangeEvent

    type = m.ChangeEventType.UPDATED
    domain = "customer"
    golden_id = factory.LazyFunction(uuid.uuid4)
    version = 1
    changed_fields = factory.LazyFunction(lambda: ["name"])


class ApiClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.ApiClient

    name = factory.Sequence(lambda n: f"client-{n}")
    scopes = factory.LazyFunction(list)
    key_prefix = factory.Sequence(lambda n: f"pfx{n:05d}")
    key_hash = factory.Sequence(lambda n: f"{n:064x}")


class IdempotencyKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.IdempotencyKey

    client_name = "client-0"
    key = factory.Sequence(lambda n: f"key-{n}")
    request_hash = factory.Sequence(lambda n: f"{n:064x}")
    status_code = 200
    response = factory.LazyFunction(dict)
