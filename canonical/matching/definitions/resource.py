"""Resource (a person who delivers work): names (nicknames, initials, swapped first/last), e-mail, employee
number, national id, date of birth, address.

Hard rule: two resources with different employee numbers are not the same person.
"""

from __future__ import annotations

from typing import Any

from .. import normalize as norm
from ..scoring import Comparison, HardRule
from .common import (
    LOCATION_DATA,
    Features,
    MatchDefinition,
    compact_keys,
    date_comparison,
    exact_or_different,
    jw,
    levels,
    location_comparison,
    location_data,
)


def prepare(values: dict[str, Any]) -> Features:
    first_raw = norm.simple_text(values.get("first_name"))
    email = norm.email_parts(values.get("email"))
    postal = norm.postal_code(values.get("postal_code"))
    city = norm.simple_text(values.get("city"))
    address = norm.simple_text(" ".join(str(values.get(k) or "") for k in ("address_line1", "address_line2")))
    return {
        "first": norm.person_first(values.get("first_name")),
        "first_raw": first_raw.split()[0] if first_raw else None,
        "last": norm.person_last(values.get("last_name")),
        # the same names read the other way round, for records with first and last name swapped
        "last_as_first": norm.person_first(values.get("last_name")),
        "first_as_last": norm.person_last(values.get("first_name")),
        "email": (values.get("email") or "").lower() or None,
        "email_local": email[0] if email else None,
        "employee_number": norm.identifier(values.get("employee_number")),
        "national_id": norm.identifier(values.get("national_id")),
        "dob": norm.date_text(values.get("date_of_birth")),
        "postal": postal,
        "city": city,
        "address": address,
        "country": values.get("country") or None,
        LOCATION_DATA: location_data(address, postal, city),  # worked out once, not for every pair scored
    }


def keys(f: Features) -> list[tuple[str, str]]:
    first, last = f["first"], f["last"]
    out: list[tuple[str, str] | None] = [
        ("emp", f["employee_number"]) if f["employee_number"] else None,
        ("em", f["email"]) if f["email"] else None,
        ("el", f["email_local"]) if f["email_local"] and len(f["email_local"]) >= 5 else None,
        ("nid", f["national_id"]) if f["national_id"] else None,
        ("ln", last) if last else None,
    ]
    if first and last:
        pf, pl = norm.phonetic(first), norm.phonetic(last)
        out.append(("nm", "|".join(sorted((pf, pl)))))  # first/last in either order
        out.append(("lf", f"{pl}:{first[0]}"))
        out.append(("lf", f"{pf}:{last[0]}"))  # swapped
    if f["dob"]:
        out.append(("dob", f["dob"]))
    if f["postal"] and last:
        out.append(("pc", f"{f['postal']}:{last[0]}"))
    house = norm.house_number(f["address"])
    if f["postal"] and house:  # same address whatever the names say (swapped, misspelt, married name)
        out.append(("ad", f"{f['postal']}:{house}"))
    return compact_keys(out)


def _align(a: Features, b: Features) -> tuple[bool, str | None, str | None]:
    """Is b's name written the other way round (first ↔ last)? Returns (swapped, b's first, b's last)."""
    if not (a["first"] and a["last"] and b["first"] and b["last"]):
        return False, b["first"], b["last"]
    straight = jw(a["first"], b["first"]) + jw(a["last"], b["last"])
    if straight + 0.2 >= 2.0:  # read the other way round it could not score more (at most 1 + 1)
        return False, b["first"], b["last"]
    swapped = jw(a["first"], b["last_as_first"]) + jw(a["last"], b["first_as_last"])
    if swapped > straight + 0.2:
        return True, b["last_as_first"], b["first_as_last"]
    return False, b["first"], b["last"]


def compare_first(a: Features, b: Features):
    swapped, b_first, _ = _align(a, b)
    va, vb = a["first"], b_first
    raw_b = b["last"] if swapped else b["first_raw"]
    shown_b = f"{raw_b} (swapped)" if swapped else raw_b
    if not va or not vb:
        return None, a["first_raw"], shown_b
    if va == vb:
        level = "exact" if a["first_raw"] == (b["last"] if swapped else b["first_raw"]) else "nickname"
        return level, a["first_raw"], shown_b
    if len(a["first_raw"] or "") == 1 or len(raw_b or "") == 1:
        return ("initial" if va[0] == vb[0] else "different"), a["first_raw"], shown_b
    sim = jw(va, vb)
    if sim >= 0.92:
        return "similar", a["first_raw"], shown_b
    if sim >= 0.80:
        return "somewhat similar", a["first_raw"], shown_b
    return "different", a["first_raw"], shown_b


def compare_last(a: Features, b: Features):
    swapped, _, b_last = _align(a, b)
    va, vb = a["last"], b_last
    shown_b = f"{vb} (swapped)" if swapped else vb
    if not va or not vb:
        return None, va, shown_b
    if va == vb:
        return "exact", va, shown_b
    sim = jw(va, vb)
    if sim >= 0.92:
        return "similar", va, shown_b
    if sim >= 0.80:
        return "somewhat similar", va, shown_b
    return "different", va, shown_b


def compare_email(a: Features, b: Features):
    va, vb = a["email"], b["email"]
    if not va or not vb:
        return None, va, vb
    if va == vb:
        return "exact", va, vb
    if a["email_local"] and a["email_local"] == b["email_local"]:
        return "same local part", va, vb
    return "different", va, vb


def different_employee_numbers(a: Features, b: Features) -> str | None:
    ea, eb = a["employee_number"], b["employee_number"]
    if ea and eb and ea != eb:
        return f"different employee numbers ({ea} vs {eb})"
    return None


DEFINITION = MatchDefinition(
    domain="resource",
    noun="person",
    prepare=prepare,
    keys=keys,
    comparisons=(
        Comparison(
            "first name",
            levels(
                ("exact", 0.70, 0.006, "same first name"),
                ("nickname", 0.06, 0.0005, "first name is a nickname of the other"),
                ("initial", 0.03, 0.005, "first name matches an initial"),
                ("similar", 0.12, 0.004, "similar first name"),
                ("somewhat similar", 0.04, 0.02, "somewhat similar first name"),
                ("different", 0.05, 0.9645, "different first name"),
            ),
            compare_first,
        ),
        Comparison(
            "last name",
            levels(
                ("exact", 0.75, 0.002, "same last name"),
                ("similar", 0.15, 0.002, "similar last name"),
                ("somewhat similar", 0.05, 0.01, "somewhat similar last name"),
                ("different", 0.05, 0.986, "different last name"),
            ),
            compare_last,
            tf_key="ln",
            tf_feature="last",
        ),
        Comparison(
            "email",
            levels(
                ("exact", 0.8, 0.00005, "same e-mail"),
                ("same local part", 0.1, 0.0002, "same e-mail name at another domain"),
                ("different", 0.1, 0.99975, "different e-mail"),
            ),
            compare_email,
        ),
        exact_or_different(
            "employee number", "employee_number", m=0.95, u=0.00001, says="employee number", m_diff=0.01
        ),
        exact_or_different("national id", "national_id", m=0.75, u=0.00005, says="national id", m_diff=0.1, typo=True),
        date_comparison("date of birth", "dob", says="date of birth"),
        location_comparison(says="address"),
    ),
    hard_rules=(HardRule("different employee numbers", different_employee_numbers),),
    prior=1e-4,
    identifiers=frozenset({"employee number", "email"}),
    personal=frozenset({"national id", "date of birth", "address"}),
)
