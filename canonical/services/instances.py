"""Model instances built in memory, cheaply (the bulk path builds several a record)."""

from __future__ import annotations

import functools
from typing import Any

from django.db.models.base import Model, ModelState
from django.db.models.signals import post_init, pre_init


@functools.cache
def _defaults(model) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """The pk's attname, and each concrete field's (attname, Field.get_default) in field order."""
    meta = model._meta
    return meta.pk.attname, tuple((f.attname, f.get_default) for f in meta.concrete_fields)


def new_instance(model, /, **values):
    """`model(**values)` for a model instance built in memory (the bulk path builds several a record), less its
    cost: `Model.__init__` took 12-25 µs an instance (it looks every argument up by name, sends pre_init and
    post_init). The same instance: every concrete field's attname set, in field order, to the value given (by
    attname, or `pk`) or to its default as `Field.get_default` gives it, and a fresh ModelState (adding, no
    database). Arguments must be attnames or `pk` (a related instance by field name is for `Model.__init__`);
    a model with pre_init or post_init receivers, or its own __init__, goes through `Model.__init__`."""
    if pre_init.has_listeners(model) or post_init.has_listeners(model) or model.__init__ is not Model.__init__:
        return model(**values)
    pk_attname, fields = _defaults(model)
    if "pk" in values:
        values[pk_attname] = values.pop("pk")
    instance = model.__new__(model)
    instance._state = ModelState()
    found = values.pop
    missing = _MISSING
    instance.__dict__.update(
        [
            (attname, value if (value := found(attname, missing)) is not missing else default())
            for attname, default in fields
        ]
    )
    if values:
        raise TypeError(f"{model.__name__}() got unexpected keyword arguments: {', '.join(sorted(values))}")
    return instance


_MISSING = object()
