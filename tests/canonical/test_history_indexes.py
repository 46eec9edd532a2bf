"""History tables carry the indexes history is read by, not every index of the model they copy."""

from __future__ import annotations

import pytest
from django.db import connection

from canonical.domains import DOMAINS, get_domain
from canonical.models import CrossReference, DataException

pytestmark = pytest.mark.django_db

SIMPLE_HISTORY_OWN = {"history_date", "history_user_id", "history_request_id"}


def _indexed_columns(model) -> set[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return {
        column
        for c in constraints.values()
        if (c["index"] or c["unique"]) and not c["primary_key"]
        for column in c["columns"]
    }


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_golden_records_history_is_indexed_by_record_and_time_only(domain):
    history = get_domain(domain).model.history.model
    assert _indexed_columns(history) == {"id", *SIMPLE_HISTORY_OWN}
    # the golden record's own table keeps its indexes
    assert {"status", "updated_at"} <= _indexed_columns(get_domain(domain).model)


def test_cross_reference_history_keeps_its_golden_id_index_for_as_of_reads():
    assert _indexed_columns(CrossReference.history.model) == {"id", "golden_id", *SIMPLE_HISTORY_OWN}


def test_exception_history_is_indexed_by_record_and_time_only():
    assert _indexed_columns(DataException.history.model) == {"id", *SIMPLE_HISTORY_OWN}
    assert {"kind", "status", "source_record_id"} <= _indexed_columns(DataException)
