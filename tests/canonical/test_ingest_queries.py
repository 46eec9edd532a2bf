"""What the per-record path costs in database queries (a regression guard; no timings are asserted).

Measured on this code: a new customer 8 queries of the pipeline's own (read the match index, update the
source record, insert golden row + history + outbox event, insert xref + history, insert match keys) plus
what outbox subscribers add per event; an update about 12; an unchanged re-send about 1.
The limits below leave a little room; a jump means something went back to per-record reads.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from canonical.models import ChangeEvent, Customer
from tests.factories import ingest, record

pytestmark = pytest.mark.django_db

N = 40


def customers(hours: int, industry: str) -> list[dict]:
    return [
        record(f"C{i}", hours, name=f"Customer {i}", website=f"c{i}.example.com", country="DE", industry=industry)
        for i in range(N)
    ]


def queries_per_record(system: str, records: list[dict]) -> float:
    with CaptureQueriesContext(connection) as ctx:
        ingest(system, "customer", *records)
    return len(ctx.captured_queries) / len(records)


def test_new_records_cost_a_bounded_number_of_queries_each():
    assert queries_per_record("crm", customers(0, "IT")) <= 12
    assert Customer.objects.count() == N and ChangeEvent.objects.count() == N


def test_updates_cost_a_bounded_number_of_queries_each():
    ingest("crm", "customer", *customers(0, "IT"))
    assert queries_per_record("crm", customers(1, "Software")) <= 16
    assert set(Customer.objects.values_list("industry", flat=True)) == {"Software"}


def test_unchanged_records_cost_about_one_query_each():
    ingest("crm", "customer", *customers(0, "IT"))
    assert queries_per_record("crm", customers(0, "IT")) <= 1.5


def test_rules_are_read_once_per_batch_not_per_record():
    with CaptureQueriesContext(connection) as ctx:
        ingest("crm", "customer", *customers(0, "IT"))
    sql = [q["sql"] for q in ctx.captured_queries]
    assert sum('FROM "canonical_ownershiprule"' in s for s in sql) == 1
    assert (
        sum(s.startswith('SELECT "canonical_system"."code" AS "code", "canonical_system"."priority"') for s in sql) == 1
    )
    assert sum('FROM "canonical_dataexception"' in s for s in sql) == 0  # nothing is open for new records
