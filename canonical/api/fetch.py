"""One golden record with its references and cross-references, in one query, for the retrieve endpoint.

The ORM would build and compile the same SELECT on every request (select_related of the references, then a
second query for the cross-references), which costs more CPU than the database spends answering. Here the SQL
is written once per domain from the model's metadata: the record's columns, each referenced record's columns
(LEFT JOIN, as select_related), and on PostgreSQL the record's cross-references as a JSON array (a subquery,
in `xrefs_by_golden`'s order). Rows become model instances through `Model.from_db` with each column's own
database converters, as the ORM does, so the record behaves exactly like one the ORM read. On other databases
the cross-references are a second query (`xrefs_by_golden`).
"""

from __future__ import annotations

import json
import uuid
import weakref
from dataclasses import dataclass

from django.db import connections, router

from canonical.domains import DOMAINS
from canonical.models import CrossReference

_SKIPPED_TARGET_COLUMNS = ("provenance",)  # a referenced record's display never needs its provenance


@dataclass(frozen=True)
class _Part:
    model: type
    attnames: tuple[str, ...]
    converters: tuple[tuple, ...]  # per column: ((converter, expression), ...)
    width: int
    pk_index: int


@dataclass(frozen=True)
class _Plan:
    sql: str
    record: _Part
    refs: tuple[tuple[object, _Part], ...]  # (the foreign key field, the referenced model's part)
    xrefs_in_row: bool


def _part(model, alias: str, connection, skip: tuple[str, ...] = ()) -> tuple[_Part, list[str]]:
    qn = connection.ops.quote_name
    fields = [f for f in model._meta.concrete_fields if f.name not in skip]
    converters = []
    for f in fields:
        col = f.get_col(alias)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        converters.append(tuple((c, col) for c in found))
    columns = [f"{qn(alias)}.{qn(f.column)}" for f in fields]
    pk_index = fields.index(model._meta.pk)
    return _Part(model, tuple(f.attname for f in fields), tuple(converters), len(fields), pk_index), columns


_plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # connection -> {domain: plan}


def _plan(domain: str, connection) -> _Plan:
    """The plan of a domain on one connection (its converters are the connection's: one per thread)."""
    plans = _plans.get(connection)
    if plans is None:
        plans = _plans[connection] = {}
    plan = plans.get(domain)
    if plan is None:
        plan = plans[domain] = _plan_make(domain, connection)
    return plan


def _plan_make(domain: str, connection) -> _Plan:
    spec = DOMAINS[domain]
    qn = connection.ops.quote_name
    model = spec.model
    record, columns = _part(model, "g", connection)
    joins, refs = [], []
    for i, f in enumerate(spec.ref_fields):
        fk = model._meta.get_field(f.name)
        target = fk.related_model
        part, cols = _part(target, f"r{i}", connection, skip=_SKIPPED_TARGET_COLUMNS)
        columns += cols
        refs.append((fk, part))
        joins.append(
            f"LEFT OUTER JOIN {qn(target._meta.db_table)} {qn(f'r{i}')} "
            f"ON {qn(f'r{i}')}.{qn(fk.target_field.column)} = {qn('g')}.{qn(fk.column)}"
        )
    xrefs_in_row = connection.vendor == "postgresql"
    if xrefs_in_row:
        xt = CrossReference._meta
        system, source_id, golden_id, domain_col = (
            qn(xt.get_field(name).column) for name in ("system", "source_id", "golden_id", "domain")
        )
        columns.append(
            f"(SELECT json_agg(json_build_array(x.{system}, x.{source_id}) ORDER BY x.{system}, x.{source_id}) "
            f"FROM {qn(xt.db_table)} x WHERE x.{domain_col} = %s AND x.{golden_id} = {qn('g')}.{qn('id')})"
        )
    sql = (
        f"SELECT {', '.join(columns)} FROM {qn(model._meta.db_table)} {qn('g')} {' '.join(joins)} "
        f"WHERE {qn('g')}.{qn(model._meta.pk.column)} = %s"
    )
    return _Plan(sql, record, tuple(refs), xrefs_in_row)


def _instance(part: _Part, values, alias: str, connection):
    converted = []
    for value, converters in zip(values, part.converters, strict=True):
        for converter, expression in converters:
            value = converter(value, expression, connection)
        converted.append(value)
    return part.model.from_db(alias, part.attnames, converted)


def golden_fetch(domain: str, pk: uuid.UUID):
    """(the golden record with its references loaded, its xrefs [{system, source_id}] or None) — or (None, None).

    xrefs is None when the database cannot return them in the same query: the caller reads them itself.
    """
    model = DOMAINS[domain].model
    alias = router.db_for_read(model)
    connection = connections[alias]
    plan = _plan(domain, connection)
    params = [model._meta.pk.get_db_prep_value(pk, connection)]
    if plan.xrefs_in_row:
        params.insert(0, domain)
    with connection.cursor() as cursor:
        cursor.execute(plan.sql, params)
        row = cursor.fetchone()
    if row is None:
        return None, None
    start = plan.record.width
    record = _instance(plan.record, row[:start], alias, connection)
    for fk, part in plan.refs:
        values = row[start : start + part.width]
        start += part.width
        target = None if values[part.pk_index] is None else _instance(part, values, alias, connection)
        fk.set_cached_value(record, target)
    if not plan.xrefs_in_row:
        return record, None
    raw = row[start]
    if isinstance(raw, str):
        raw = json.loads(raw)
    return record, [{"system": system, "source_id": source_id} for system, source_id in raw or ()]
