"""The hub's tables carry no index that only its writes use (mdm/dbindexes.py)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection

from canonical.models import CrossReference, SourceRecord

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

APPS = ("canonical", "connectors", "stewardship")


def _indexes(tables: list[str]) -> list[tuple[str, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = ANY(%s) ORDER BY 1, 2",
            [tables],
        )
        return cursor.fetchall()


def _tables() -> list[str]:
    return [m._meta.db_table for label in APPS for m in apps.get_app_config(label).get_models()]


def test_no_table_of_the_hub_has_a_pattern_ops_index():
    """A migration that adds an indexed text field (or a foreign key to a system) makes a `_like` index again:
    add `LikeIndexesDropped("<app>")` to a migration after it."""
    indexes = _indexes(_tables())
    assert len({t for t, _, _ in indexes}) > 40  # the tables are there and were looked at
    assert [(t, name) for t, name, d in indexes if "pattern_ops" in d] == []
    # Django's own tables keep theirs (the operation is the hub's apps' only)
    assert any("pattern_ops" in d for _, _, d in _indexes(["auth_user"]))


@pytest.mark.parametrize("model", [SourceRecord, CrossReference])
def test_lookups_by_system_use_the_unique_key_it_leads(model):
    led_by_system = [
        (name, d) for _, name, d in _indexes([model._meta.db_table]) if "(system_id" in d.replace('"', "")
    ]
    assert len(led_by_system) == 1 and "UNIQUE" in led_by_system[0][1]
    assert "(system_id, domain, source_id)" in led_by_system[0][1]
