"""What customers and legal entities share: company names, web domains, phones, addresses."""

from __future__ import annotations

from typing import Any

from .. import normalize as norm
from .common import (
    LOCATION_DATA,
    Comparison,
    Features,
    levels,
    location_comparison,
    location_data,
    name_data,
    name_data_key,
    set_data,
    set_data_key,
    token_key,
)

NAME_DATA = name_data_key("name_core")
DOMAIN_DATA = set_data_key("domains")


def prepare_organisation(values: dict[str, Any]) -> Features:
    country = values.get("country") or None
    core = norm.company_name(values.get("name"))
    tokens = norm.company_tokens(core)
    domains = []
    for name in ("website", "email_domain"):
        domain = norm.registrable_domain(values.get(name))
        if domain and domain not in norm.FREE_MAIL and domain not in domains:
            domains.append(domain)
    domains = tuple(domains)
    postal = norm.postal_code(values.get("postal_code"))
    city = norm.simple_text(values.get("city"))
    address = norm.simple_text(values.get("address_line1"))
    return {
        "name_raw": values.get("name"),
        "name_core": core,
        "name_tokens": tokens,
        "acronym": norm.acronym(core),
        "domains": domains,
        "phone": norm.phone_tail(norm.phone_e164(values.get("phone"), country)),
        "country": country,
        "postal": postal,
        "city": city,
        "address": address,
        # what the comparisons need of this record, worked out once here rather than for every pair scored
        NAME_DATA: name_data(core, tokens) if core else None,
        DOMAIN_DATA: set_data(domains),
        LOCATION_DATA: location_data(address, postal, city),
    }


def organisation_keys(f: Features) -> list[tuple[str, str] | None]:
    core, tokens = f["name_core"], f["name_tokens"]
    squashed = "".join(tokens) if tokens else None
    keys: list[tuple[str, str] | None] = [token_key("n", core)]
    keys += [("nt", t) for t in tokens if len(t) >= 3]
    if squashed:
        keys.append(("np", norm.phonetic(squashed)))  # typo-tolerant: same sound, same key
        keys.append(("n4", squashed[:4]))
        if f["acronym"]:
            keys.append(("ac", f["acronym"]))
        if len(tokens) == 1 and 2 <= len(squashed) <= 5:
            keys.append(("ac", squashed))
    keys += [("d", d) for d in f["domains"]]
    keys.append(token_key("ph", f["phone"]))
    if f["postal"] and squashed:
        keys.append(("pc", f"{f['postal']}:{squashed[:2]}"))
    return keys


def address_comparisons() -> tuple[Comparison, ...]:
    return (location_comparison(says="address"),)


def country_comparison() -> Comparison:
    def compare(a: Features, b: Features):
        va, vb = a.get("country"), b.get("country")
        if not va or not vb:
            return None, va, vb
        return ("exact" if va == vb else "different"), va, vb

    return Comparison(
        "country",
        levels(("exact", 0.98, 0.3, "same country"), ("different", 0.02, 0.7, "different country")),
        compare,
    )
