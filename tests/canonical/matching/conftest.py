"""Matching tests run the real pipeline with the fuzzy matcher configured, on the real database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from canonical.audit import Channel, audit_context
from canonical.domains import get_domain
from canonical.services.ingest import envelope_parse, source_records_ingest

FUZZY = "canonical.matching.fuzzy.FuzzyMatcher"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def fuzzy(settings):
    settings.MDM_MATCHER = FUZZY
    from canonical.matching.fuzzy import FuzzyMatcher

    return FuzzyMatcher()


def rec(source_id: str, **attributes: Any) -> dict[str, Any]:
    return {"source_id": source_id, "updated_at": T0.isoformat(), "attributes": attributes}


def ingest(system: str, domain: str, *records: dict[str, Any]):
    spec = get_domain(domain)
    envelopes = [envelope_parse(r, spec=spec) for r in records]
    with audit_context(actor="pytest", channel=Channel.JOB, reason="matching test"):
        return source_records_ingest(system=system, domain=domain, envelopes=envelopes)


def golden_of(system: str, domain: str, source_id: str):
    from canonical.models import SourceRecord

    return SourceRecord.objects.get(system_id=system, domain=domain, source_id=source_id).golden_id
