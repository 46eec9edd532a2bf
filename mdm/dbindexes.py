"""Indexes the hub's tables do without: PostgreSQL's second index on indexed text columns, and foreign-key
indexes a unique key already leads with.

For every indexed text column (`CharField(db_index=True)`, a `SlugField`, a unique or primary-key text column)
and every foreign key to a text primary key (a system's code), Django's PostgreSQL backend makes two indexes: a
plain one and `<name>_like` with `varchar_pattern_ops`, which only `LIKE 'prefix%'` queries outside the C locale
can use. The hub never asks for a prefix of a status, a system code, a request id or an identifier (it looks
them up by equality, and its searches are `icontains`, which no btree serves), so each `_like` index was only
written: one more index entry for every source record, golden record, history row, exception and change event.

- `LikeIndexesDropped(app_label)` drops them from an app's tables (PostgreSQL only; reversing it makes them
  again). A later migration that adds such a field, or makes one unique, makes its `_like` index again:
  tests/canonical/test_db_indexes.py says so, and this operation, in a migration after it, drops it.
- `ForeignKeyIndexDropped` is `AlterField` for a foreign key going from `db_index=True` to `False` that, on
  PostgreSQL, only drops the two indexes: Django's own AlterField would also drop the foreign-key constraint
  and add it back, which checks every row of the table again under a lock.

Dropping an index locks its table for a moment; a migration with these holds the locks until it commits (a
second or so on a big hub: run it when ingest is quiet).
"""

from __future__ import annotations

from django.db import migrations
from django.db.migrations.operations.base import Operation


def _like_indexes(apps, schema_editor, app_label: str):
    """(model, field, index name) of every `_like` index the backend makes for the app's tables."""
    for model in apps.get_app_config(app_label).get_models(include_auto_created=True):
        if not model._meta.managed or model._meta.proxy:
            continue
        for field in model._meta.local_concrete_fields:
            if schema_editor._create_like_index_sql(model, field) is None:
                continue
            name = schema_editor._create_index_name(model._meta.db_table, [field.column], suffix="_like")
            yield model, field, name


class LikeIndexesDropped(Operation):
    """Drop the `_like` (varchar_pattern_ops) indexes of an app's tables; reversed, make them again."""

    reversible = True
    reduces_to_sql = False

    def __init__(self, app_label: str) -> None:
        self.app_label = app_label

    def deconstruct(self):
        return (self.__class__.__qualname__, [self.app_label], {})

    def state_forwards(self, app_label, state) -> None:
        pass  # the models are as they were: only the database loses the indexes

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for model, _, name in list(_like_indexes(to_state.apps, schema_editor, self.app_label)):
            schema_editor.execute(schema_editor._delete_index_sql(model, name))

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for model, field, _ in list(_like_indexes(to_state.apps, schema_editor, self.app_label)):
            schema_editor.execute(schema_editor._create_like_index_sql(model, field))

    def describe(self) -> str:
        return f"Drop the _like indexes of {self.app_label}'s tables"

    @property
    def migration_name_fragment(self) -> str:
        return f"{self.app_label}_like_indexes_dropped"


class ForeignKeyIndexDropped(migrations.AlterField):
    """`AlterField(model_name, name, field)` where `field` is the foreign key with `db_index=False`: on PostgreSQL
    its index and `_like` twin are dropped (reversed: made again) and the constraint is left alone; elsewhere it
    is AlterField."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        column = model._meta.get_field(self.name).column
        for suffix in ("", "_like"):
            name = schema_editor._create_index_name(model._meta.db_table, [column], suffix=suffix)
            schema_editor.execute(schema_editor._delete_index_sql(model, name))

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)  # as it was: indexed
        field = model._meta.get_field(self.name)
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))
        like = schema_editor._create_like_index_sql(model, field)
        if like is not None:
            schema_editor.execute(like)
