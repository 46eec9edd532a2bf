"""The hub's tables carry no index that only its writes use (mdm/dbindexes.py)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection, migrations
from django.db.migrations.loader import MigrationLoader

from canonical.models import CrossReference, SourceRecord

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

APPS = ("canonical", "connectors", "stewardship")
BEFORE, AFTER = "0002_history_indexes_for_history_reads", "0003_source_and_xref_system_indexes_and_like_indexes"


def _indexes(tables: list[str]) -> list[tuple[str, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = ANY(%s) ORDER BY 1, 2",
            [tables],
        )
        return cursor.fetchall()


def test_no_table_of_the_hub_has_a_pattern_ops_index():
    """A migration that adds an indexed text field (or a foreign key to a system) makes a `_like` index again:
    add `LikeIndexesDropped("<app>")` to a migration after it."""
    tables = [m._meta.db_table for a in APPS for m in apps.get_app_config(a).get_models(include_auto_created=True)]
    indexes = _indexes(tables)
    assert {t for t, _, _ in indexes} == set(tables)  # every table was looked at (each has its primary key)
    made_again = [(t, name) for t, name, d in indexes if "pattern_ops" in d]
    assert made_again == [], (
        f"{made_again}: a migration made these again; add LikeIndexesDropped('<app>') (mdm/dbindexes.py) to a "
        "migration after it"
    )
    # what the hub looks up by equality keeps its plain index
    assert any(t == "canonical_sourcerecord" and d.endswith("(status)") for t, _, d in indexes)
    assert any(t == "canonical_historicalcustomer" and d.endswith("(history_request_id)") for t, _, d in indexes)


@pytest.mark.parametrize("model", [SourceRecord, CrossReference])
def test_the_only_index_led_by_system_is_the_unique_key(model):
    led_by_system = [(name, d) for _, name, d in _indexes([model._meta.db_table]) if "(system_id" in d.replace('"', "")]
    assert len(led_by_system) == 1 and "UNIQUE" in led_by_system[0][1]
    assert "(system_id, domain, source_id)" in led_by_system[0][1]


def _collected(operation, forwards: bool) -> str:
    loader = MigrationLoader(connection)
    before, after = loader.project_state(("canonical", BEFORE)), loader.project_state(("canonical", AFTER))
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        if forwards:
            operation.database_forwards("canonical", editor, before, after)
        else:
            operation.database_backwards("canonical", editor, after, before)
    return "\n".join(editor.collected_sql)


def test_the_system_index_goes_without_the_foreign_key_being_checked_again():
    """Django's AlterField would drop the constraint and add it back (every row checked under a lock)."""
    operation = MigrationLoader(connection).get_migration("canonical", AFTER).operations[1]
    assert (operation.model_name, operation.name) == ("sourcerecord", "system")

    forwards = _collected(operation, forwards=True)
    assert forwards.count("DROP INDEX IF EXISTS") == 2
    assert '"canonical_sourcerecord_system_id_ed504530"' in forwards
    assert '"canonical_sourcerecord_system_id_ed504530_like"' in forwards
    assert "CONSTRAINT" not in forwards and "FOREIGN KEY" not in forwards
    backwards = _collected(operation, forwards=False)
    assert backwards.count("CREATE INDEX") == 2 and "varchar_pattern_ops" in backwards
    assert "CONSTRAINT" not in backwards

    plain = migrations.AlterField(model_name=operation.model_name, name=operation.name, field=operation.field)
    assert "FOREIGN KEY" in _collected(plain, forwards=True)
