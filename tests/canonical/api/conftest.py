"""Fixtures for the REST API tests: API keys made by the real service, records made by the real pipeline."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from rest_framework.test import APIClient

from canonical.api.clients import api_client_create
from canonical.audit import Channel, audit_context
from canonical.domains import get_domain
from canonical.services.ingest import envelope_parse, source_records_ingest

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
ALL_READ = [f"read:{d}" for d in ("customer", "legal_entity", "contract", "project", "resource", "rate_card")]


def at(hours: int = 0) -> str:
    return (T0 + dt.timedelta(hours=hours)).isoformat()


def rec(source_id: str, hours: int = 0, deleted: bool = False, **attributes: Any) -> dict[str, Any]:
    return {"source_id": source_id, "updated_at": at(hours), "deleted": deleted, "attributes": attributes}


def ingest(system: str, domain: str, *records: dict[str, Any], actor: str = "pytest"):
    spec = get_domain(domain)
    envelopes = [envelope_parse(r, spec=spec) for r in records]
    with audit_context(actor=actor, channel=Channel.JOB, reason=""):
        return source_records_ingest(system=system, domain=domain, envelopes=envelopes)


@pytest.fixture
def make_api():
    """make_api(*scopes, system=None, name=None) → an APIClient that sends a fresh key for those scopes."""
    counter = {"n": 0}

    def make(*scopes: str, system: str | None = None, name: str | None = None) -> APIClient:
        counter["n"] += 1
        client, key = api_client_create(name=name or f"client-{counter['n']}", system=system, scopes=list(scopes))
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        api.api_client = client
        api.key = key
        return api

    return make


@pytest.fixture
def reader(make_api):
    return make_api(*ALL_READ, name="reader")


@pytest.fixture
def acme(db):
    """One customer known to crm (commercial fields) and erp (billing address): a golden record with 2 xrefs."""
    crm = ingest("crm", "customer", rec("001A", 1, name="Acme Corp", website="acme.com", country="DE", industry="Tech"))
    ingest("erp", "customer", rec("C-100", 2, name="ACME Corporation GmbH", website="acme.com", city="Berlin"))
    from canonical.models import Customer

    return Customer.objects.get(pk=crm[0].golden_id)


@pytest.fixture
def root(db):
    """A client with every scope (ingesting as crm): garbage must be refused for what it is, not for a missing
    scope."""
    from canonical.api.clients import known_scopes

    _, key = api_client_create(name="root", system="crm", scopes=known_scopes())
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return api
