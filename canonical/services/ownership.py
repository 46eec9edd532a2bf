"""Ownership rules as a lookup: which system owns each field of a domain; system priorities and codes.

These are read for every record the pipeline processes. Inside `rules_cached()` (entered by a batch ingest)
each is read once per batch instead of once per record; outside it they are read fresh every time.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from canonical.domains import get_domain

_cache: contextvars.ContextVar[dict | None] = contextvars.ContextVar("mdm_rules_cache", default=None)


@contextmanager
def rules_cached() -> Iterator[None]:
    """Read ownership rules, system priorities and system codes once for the duration of the block."""
    if _cache.get() is not None:
        yield
        return
    token = _cache.set({})
    try:
        yield
    finally:
        _cache.reset(token)


def _cached(key: tuple, compute: Callable[[], Any]) -> Any:
    cache = _cache.get()
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def _ownership_map(domain: str) -> dict[str, str]:
    from canonical.models import OwnershipRule

    rules = dict(OwnershipRule.objects.filter(domain=domain).values_list("field", "system_id"))
    domain_owner = rules.get("")
    owners = {}
    for name in get_domain(domain).field_names:
        owner = rules.get(name, domain_owner)
        if owner:
            owners[name] = owner
    return owners


def ownership_map(domain: str) -> dict[str, str]:
    """{field: owning system code} for every field of the domain that has an owner."""
    return _cached(("owners", domain), lambda: _ownership_map(domain))


def system_priorities() -> dict[str, int]:
    from canonical.models import System

    return _cached(("priorities",), lambda: dict(System.objects.values_list("code", "priority")))


def system_codes() -> frozenset[str]:
    """Codes of every known system (references may name any of them)."""
    from canonical.models import System

    return _cached(("codes",), lambda: frozenset(System.objects.values_list("code", flat=True)))
