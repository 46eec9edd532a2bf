"""MatchKey rows hang off their source record without a foreign-key constraint in the database (its deferred check
was a bulk load's dearest commit work): the ORM still takes them with their source record."""

from __future__ import annotations

import pytest

from canonical.models import MatchKey, SourceRecord

from .conftest import ingest, rec

pytestmark = pytest.mark.django_db


def test_a_source_records_match_keys_go_with_it_and_only_its(fuzzy):
    ingest("crm", "customer", rec("a1", name="Harbour Logistics Ltd", website="harbour.example", country="GB"))
    ingest("crm", "customer", rec("a2", name="Meridian Analytics GmbH", website="meridian.example", country="DE"))
    first, second = SourceRecord.objects.get(source_id="a1"), SourceRecord.objects.get(source_id="a2")
    kept = MatchKey.objects.filter(source_record=second).count()
    assert MatchKey.objects.filter(source_record=first).exists() and kept
    first.delete()
    assert not MatchKey.objects.filter(source_record_id=first.pk).exists()
    assert MatchKey.objects.filter(source_record=second).count() == kept
