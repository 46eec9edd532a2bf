"""PostgreSQL's second index on indexed text columns, dropped from the hub's tables.

For every `CharField(db_index=True)`, unique text column and foreign key to a text primary key (a system's
code), Django's PostgreSQL backend makes two indexes: a plain one and `<name>_like` with `varchar_pattern_ops`,
which only `LIKE 'prefix%'` queries outside the C locale can use. The hub never asks for a prefix of a
status, a system code, a request id or an identifier (it looks them up by equality, and its searches are
`icontains`, which no btree serves), so each `_like` index was only written: one more index entry for every
source record, golden record, history row, exception and change event of a load.

`LikeIndexesDropped(app_label)` is the migration operation that drops them from an app's tables (PostgreSQL
only; reversing it makes them again). A migration that adds such a field later makes its `_like` index again:
tests/test_db_indexes.py says so, and this operation, in a migration after it, drops it.
"""

from __future__ import annotations

from django.db import migrations


def _like_indexes(apps, schema_editor, app_label: str):
    """(model, field, index name) of every `_like` index the backend made for the app's tables."""
    for model in apps.get_app_config(app_label).get_models():
        if not model._meta.managed or model._meta.proxy:
            continue
        for field in model._meta.local_concrete_fields:
            if schema_editor._create_like_index_sql(model, field) is None:
                continue
            name = schema_editor._create_index_name(model._meta.db_table, [field.column], suffix="_like")
            yield model, field, name


def LikeIndexesDropped(app_label: str) -> migrations.RunPython:  # noqa: N802 - reads as an operation
    def drop(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for model, _, name in list(_like_indexes(apps, schema_editor, app_label)):
            schema_editor.execute(schema_editor._delete_index_sql(model, name))

    def make(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for model, field, _ in list(_like_indexes(apps, schema_editor, app_label)):
            schema_editor.execute(schema_editor._create_like_index_sql(model, field))

    return migrations.RunPython(drop, make, elidable=False)
