"""Contract, project and rate card: matched by their identifiers first, with a fuzzy fallback on title/name,
the customer they belong to, currency and dates.

Hard rule: two records with different identifiers (contract number, project code, rate-card code) from the
same numbering are not the same.
"""

from __future__ import annotations

from typing import Any

from .. import normalize as norm
from ..scoring import HardRule
from .common import Features, MatchDefinition, compact_keys, exact_or_different, fuzzy_text


def _prepare(values: dict[str, Any], *, ident: str, title: str) -> Features:
    text = norm.simple_text(values.get(title))
    return {
        "ident": norm.identifier(values.get(ident)),
        "title": text,
        "title_tokens": tuple(t for t in (text or "").split() if len(t) >= 4),
        "customer": norm.ref_id(values.get("customer")),
        "currency": values.get("currency") or None,
        "start": norm.date_text(values.get("start_date") or values.get("valid_from")),
    }


def _keys(f: Features) -> list[tuple[str, str]]:
    out: list[tuple[str, str] | None] = [("id", f["ident"]) if f["ident"] else None]
    if f["customer"]:
        out += [("ct", f"{f['customer']}:{t}") for t in f["title_tokens"]]
    elif f["title"]:
        out.append(("t", f["title"]))
    return compact_keys(out)


def _different_ids(what: str):
    def check(a: Features, b: Features) -> str | None:
        if a["ident"] and b["ident"] and a["ident"] != b["ident"]:
            return f"different {what}s ({a['ident']} vs {b['ident']})"
        return None

    return check


def _definition(domain: str, noun: str, *, ident: str, title: str, what: str) -> MatchDefinition:
    return MatchDefinition(
        domain=domain,
        noun=noun,
        prepare=lambda values: _prepare(values, ident=ident, title=title),
        keys=_keys,
        comparisons=(
            exact_or_different(what, "ident", m=0.95, u=1e-7, says=what, m_diff=0.05),
            fuzzy_text(
                title.replace("_", " "),
                "title",
                says=title.replace("_", " "),
                exact=(0.7, 0.001),
                similar=(0.15, 0.002),
                somewhat=(0.1, 0.02),
                different=(0.05, 0.977),
            ),
            exact_or_different("customer", "customer", m=0.95, u=0.001, says="customer", m_diff=0.05),
            exact_or_different("currency", "currency", m=0.95, u=0.3, says="currency", m_diff=0.05),
            exact_or_different("start", "start", m=0.8, u=0.003, says="start date", m_diff=0.2),
        ),
        hard_rules=(HardRule(f"different {what}s", _different_ids(what)),),
        prior=1e-4,
        identifiers=frozenset({what}),
    )


CONTRACT = _definition("contract", "contract", ident="contract_number", title="title", what="contract number")
PROJECT = _definition("project", "project", ident="project_code", title="name", what="project code")
RATE_CARD = _definition("rate_card", "rate card", ident="code", title="name", what="rate-card code")
