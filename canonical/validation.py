"""Canonical validation: turn a source record's attributes into normalised values, or field-level errors.

Values are normalised to JSON-safe canonical forms: ISO codes upper-case, dates `YYYY-MM-DD`, decimals as
strings (money is never a float), tax ids in python-stdnum's compact form, references as parsed dicts.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

import pycountry
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.util import get_cc_module

from canonical.domains import DomainSpec, FieldSpec

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
_DOMAIN_RE = re.compile(r"^(?=.{1,253}\Z)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z")


class FieldError(ValueError):
    pass


@cache
def _countries() -> dict[str, str]:
    index: dict[str, str] = {}
    for c in pycountry.countries:
        index[c.alpha_2] = c.alpha_2
    return index


@cache
def _alpha3_to_alpha2() -> dict[str, str]:
    return {c.alpha_3: c.alpha_2 for c in pycountry.countries}


@cache
def _currencies() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies)


def _as_text(value: Any) -> str:
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise FieldError("expected a text value")
    return str(value).strip()


def clean_country(value: Any) -> str:
    text = _as_text(value).upper()
    if text in _countries():
        return text
    hint = _alpha3_to_alpha2().get(text)
    if hint:
        raise FieldError(f"'{value}' is not an ISO 3166-1 alpha-2 country code (did you mean '{hint}'?)")
    raise FieldError(f"'{value}' is not an ISO 3166-1 alpha-2 country code")


def clean_currency(value: Any) -> str:
    text = _as_text(value).upper()
    if text in _currencies():
        return text
    raise FieldError(f"'{value}' is not an ISO 4217 currency code")


def clean_date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = _as_text(value)
    try:
        return dt.date.fromisoformat(text[:10] if len(text) > 10 and text[10] in "T " else text).isoformat()
    except ValueError:
        raise FieldError(f"'{value}' is not an ISO 8601 date (YYYY-MM-DD)") from None


_THOUSANDS_RE = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?\Z")


def clean_decimal(value: Any, spec: FieldSpec) -> str:
    """An exact decimal string with the field's places. Money is never a float and never silently rounded.

    A JSON float is read from its shortest repr (0.1 → "0.10", not its binary expansion) and binary noise
    beyond the field's places (0.1 + 0.2) is rounded; a string or integer with more places is refused.
    Commas are accepted only as thousands separators ("1,234.50"); a decimal comma ("1,5") is refused.
    """
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise FieldError("expected a decimal number")
    if isinstance(value, Decimal):
        number = value
    else:
        text = str(value).strip()
        if "," in text:
            if not _THOUSANDS_RE.match(text):
                raise FieldError(f"'{value}' is not a decimal number (use a point for decimals)")
            text = text.replace(",", "")
        try:
            number = Decimal(text)
        except (InvalidOperation, ValueError):
            raise FieldError(f"'{value}' is not a decimal number") from None
    if not number.is_finite():
        raise FieldError(f"'{value}' is not a finite number")
    quantum = Decimal(1).scaleb(-spec.decimal_places)
    try:
        rounded = number.quantize(quantum)
    except InvalidOperation:
        raise FieldError(f"'{value}' is too large") from None
    if rounded != number and not isinstance(value, float):
        raise FieldError(f"'{value}' has more than {spec.decimal_places} decimal places")
    number = rounded
    if len(number.as_tuple().digits) > spec.max_digits:
        raise FieldError(f"'{value}' has more than {spec.max_digits - spec.decimal_places} digits before the point")
    return str(number)


def clean_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FieldError(f"'{value}' is not a boolean (true/false)")


def clean_email(value: Any) -> str:
    text = _as_text(value).lower()
    try:
        validate_email(text)
    except DjangoValidationError:
        raise FieldError(f"'{value}' is not a valid email address") from None
    return text


def clean_domain_name(value: Any) -> str:
    text = _as_text(value).lower().removeprefix("@")
    if not _DOMAIN_RE.match(text):
        raise FieldError(f"'{value}' is not a domain name")
    return text


def clean_url(value: Any) -> str:
    text = _as_text(value)
    bare = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text.lower()).split("/")[0].split(":")[0]
    if not _DOMAIN_RE.match(bare):
        raise FieldError(f"'{value}' is not a web address")
    return text if "://" in text else f"https://{text}"


def _tax_module(country: str):
    for name in ("vat", "tin"):
        try:
            module = get_cc_module(country.lower(), name)
        except (ImportError, AttributeError):
            module = None
        if module is not None:
            return module
    return None


def clean_tax_id(value: Any, country: str | None) -> str:
    """Validate with python-stdnum where the country has a VAT/TIN scheme; return the compact form."""
    text = _as_text(value)
    # The national module strips its own country prefix (DE…, EL… for Greece), so "DE136695976" and
    # "136695976" give the same compact form and match each other.
    module = _tax_module(country) if country else None
    if module is None:
        return re.sub(r"[\s.\-/]", "", text).upper()
    try:
        return module.validate(text)
    except StdnumError as exc:
        raise FieldError(f"'{value}' is not a valid tax id for {country}: {exc}") from None
    except (ValueError, TypeError):  # what a scheme's own arithmetic raises on text it was not meant for
        raise FieldError(f"'{value}' is not a valid tax id for {country}") from None


def clean_list_str(value: Any) -> list[str]:
    if isinstance(value, str):
        items = [item.strip() for item in re.split(r"[;|]", value)]
    elif isinstance(value, list):
        items = []
        for item in value:
            if not isinstance(item, (str, int, float)) or isinstance(item, bool):
                raise FieldError("expected a list of strings")
            items.append(str(item).strip())
    else:
        raise FieldError("expected a list of strings")
    seen: dict[str, None] = {}
    for item in items:
        if item:
            seen.setdefault(item, None)
    return list(seen)


_LINE_UNITS = ("hour", "day")
_RATE = FieldSpec("rate", "decimal", max_digits=12)


def clean_lines(value: Any) -> list[dict]:
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply to be lines at all
            raise FieldError("expected a JSON list of {role, grade, unit, rate}") from None
    if not isinstance(value, list):
        raise FieldError("expected a list of {role, grade, unit, rate}")
    lines = []
    for i, line in enumerate(value):
        if not isinstance(line, dict):
            raise FieldError(f"line {i + 1}: expected an object")
        unknown = set(line) - {"role", "grade", "unit", "rate"}
        if unknown:
            raise FieldError(f"line {i + 1}: unknown key(s) {', '.join(sorted(unknown))}")
        role = str(line.get("role") or "").strip()
        if not role:
            raise FieldError(f"line {i + 1}: role is required")
        if line.get("rate") in (None, ""):
            raise FieldError(f"line {i + 1}: rate is required")
        unit = str(line.get("unit") or "hour").strip().lower()
        if unit not in _LINE_UNITS:
            raise FieldError(f"line {i + 1}: unit must be hour or day")
        try:
            rate = clean_decimal(line["rate"], _RATE)
        except FieldError as exc:
            raise FieldError(f"line {i + 1}: rate {exc}") from None
        grade = line.get("grade")
        lines.append(
            {"role": role, "grade": str(grade).strip() if grade not in (None, "") else None, "unit": unit, "rate": rate}
        )
    return sorted(lines, key=lambda item: (item["role"], item["grade"] or "", item["unit"]))


def parse_reference(value: Any, *, system: str) -> dict:
    """A reference attribute → {"golden_id": ..} or {"system": .., "source_id": ..}."""
    if isinstance(value, dict):
        if "golden_id" in value:
            import uuid

            try:
                return {"golden_id": str(uuid.UUID(str(value["golden_id"])))}
            except ValueError:
                raise FieldError(f"'{value['golden_id']}' is not a golden id (UUID)") from None
        if "source_id" in value:
            target_system = str(value.get("system") or system).strip()
            source_id = str(value["source_id"]).strip()
            if not source_id:
                raise FieldError("reference source_id is empty")
            if len(source_id) > 255 or len(target_system) > 32:
                raise FieldError("reference source_id is longer than 255 characters (or system longer than 32)")
            return {"system": target_system, "source_id": source_id}
        raise FieldError('a reference is a source_id, {"system", "source_id"} or {"golden_id"}')
    if isinstance(value, (bool, list, float)):
        raise FieldError('a reference is a source_id, {"system", "source_id"} or {"golden_id"}')
    text = str(value).strip()
    if not text:
        raise FieldError("reference is empty")
    if len(text) > 255:
        raise FieldError("reference source_id is longer than 255 characters")
    return {"system": system, "source_id": text}


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


# Kinds whose value is one text, stored in a column of the field's max_length: a longer text is refused before
# it is parsed (python-stdnum turns a tax id's digits into an int: 5,000 of them raise ValueError), and what the
# cleaning gives must fit too (a web address gains "https://").
_TEXT_KINDS = frozenset({"str", "country", "currency", "enum", "email", "domain", "url", "tax_id"})


def clean_value(spec: FieldSpec, value: Any, *, system: str, country: str | None) -> Any:
    """The field's value as stored, or FieldError. Whoever calls it (ingest, search, a steward's override or merge
    choice) gets the same refusal of what cannot be stored, as sent and, for rate-card lines given as JSON text,
    once decoded."""
    if not (type(value) is str and value.isascii() and "\x00" not in value):  # a plain text needs no walk
        _storable_or_refuse(value)
    cleaned = _clean_value(spec, value, system=system, country=country)
    if spec.kind == "lines":  # decoded from JSON text: "\u0000" there is a NUL here (other kinds add no characters)
        _storable_or_refuse(cleaned)
    return cleaned


def _storable_or_refuse(value: Any) -> None:
    bad = unstorable(value)
    if bad is not None:
        raise FieldError(f"{bad[0].lstrip('.')}: {bad[1]}" if bad[0] else bad[1])


def _clean_value(spec: FieldSpec, value: Any, *, system: str, country: str | None) -> Any:
    if _is_blank(value):
        return [] if spec.kind in ("list_str", "lines") else None
    kind = spec.kind
    if kind in _TEXT_KINDS:
        if isinstance(value, str) and len(value.strip()) > spec.max_length:
            raise FieldError(f"longer than {spec.max_length} characters")
        cleaned = _clean_text_kind(spec, value, country)
        if isinstance(cleaned, str) and len(cleaned) > spec.max_length:
            raise FieldError(f"longer than {spec.max_length} characters as stored ({len(cleaned)})")
        return cleaned
    if kind == "date":
        return clean_date(value)
    if kind == "decimal":
        return clean_decimal(value, spec)
    if kind == "bool":
        return clean_bool(value)
    if kind == "ref":
        return parse_reference(value, system=system)
    if kind == "list_str":
        return clean_list_str(value)
    if kind == "lines":
        return clean_lines(value)
    raise AssertionError(f"unknown field kind {kind}")


def _clean_text_kind(spec: FieldSpec, value: Any, country: str | None) -> Any:
    kind = spec.kind
    if kind == "str":  # its length is checked by the caller (_clean_value), as sent and as stored
        return _as_text(value)
    if kind == "country":
        return clean_country(value)
    if kind == "currency":
        return clean_currency(value)
    if kind == "enum":
        text = _as_text(value).lower()
        if text not in spec.choices:
            raise FieldError(f"'{value}' is not one of {', '.join(spec.choices)}")
        return text
    if kind == "email":
        return clean_email(value)
    if kind == "domain":
        return clean_domain_name(value)
    if kind == "url":
        return clean_url(value)
    if kind == "tax_id":
        return clean_tax_id(value, country)
    raise AssertionError(f"unknown field kind {kind}")


# How deep an attribute's value may nest (a rate card's lines are a list of objects: three levels), and how large
# a whole number in it may be: anything beyond is refused as a shape no canonical field has, before it reaches the
# JSON encoder (Python's int-to-text limit) or PostgreSQL (jsonb's nesting).
_MAX_NESTING = 16
_MAX_INT = 10**100


def refuse_json_constant(name: str) -> Any:
    """`parse_constant` for json.loads: NaN, Infinity and -Infinity are not JSON numbers and no column holds them."""
    raise ValueError(f"{name} is not a JSON number")


def text_problem(text: str) -> str | None:
    """Why no database can store this text, else None: a NUL character, or an unpaired surrogate."""
    if text.isascii() and "\x00" not in text:
        return None
    if "\x00" in text:
        return "holds a NUL character (\\u0000), which cannot be stored; remove it at the source"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "holds an unpaired surrogate (\\ud800–\\udfff), which is not Unicode text"
    return None


def unstorable_at(
    value: Any, *, max_levels: int = _MAX_NESTING, level: int = 1
) -> tuple[tuple[str | int, ...], str] | None:
    """(path, what) of the first part of `value` that cannot be stored as text or JSON, else None: a text with a
    NUL or an unpaired surrogate (`text_problem`), in a value or a key (reported at its object: "has a key
    that ..."); a number that is not finite (NaN, Infinity: not JSON) or has more than 100 digits; objects and
    lists nested past `max_levels` (`level` is that of `value` itself). The path holds keys and indexes.
    Iterative, so no nesting a JSON parser accepted can exhaust the stack here."""
    kind = type(value)
    if kind is str:  # most values are a text: no stack for them (called for every attribute of every record)
        problem = text_problem(value)
        return None if problem is None else ((), problem)
    if value is None or kind is bool:
        return None
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(value, (), level)]
    while stack:
        value, path, level = stack.pop()
        kind = type(value)
        if kind is str:
            if (problem := text_problem(value)) is not None:
                return path, problem
        elif kind is float:
            if not math.isfinite(value):
                return path, "holds NaN or Infinity, which is not a number JSON can carry"
        elif kind is int:
            if not -_MAX_INT < value < _MAX_INT:
                return path, "holds a number of more than 100 digits"
        elif kind is dict or kind is list:
            if level > max_levels:
                return path, f"nests deeper than {max_levels} levels"
            if kind is dict:
                for key in value:
                    if isinstance(key, str) and (problem := text_problem(key)) is not None:
                        return path, "has a key that " + problem
            items = value.items() if kind is dict else enumerate(value)
            stack.extend((item, (*path, key), level + 1) for key, item in reversed(list(items)))
    return None


def path_text(where: tuple[str | int, ...]) -> str:
    """("records", 0, "name") → "records[0].name"."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where)
    return text[1:] if text.startswith(".") else text


def unstorable(value: Any) -> tuple[str, str] | None:
    """`unstorable_at` for an attribute's value (16 levels), its path as text ("[2].rate", ".name"; "" for the
    value itself)."""
    found = unstorable_at(value)
    if found is None:
        return None
    where, what = found
    text = path_text(where)
    return (f".{text}" if text and not text.startswith("[") else text), what


def storable_text(value: Any) -> Any:
    """`value` (a text, or lists and dicts of them) with what no database column holds written out instead: a NUL
    as `\\x00`, an unpaired surrogate as `\\udXXX`. For text the hub writes about input it did not accept (run
    errors, a remote system's error body): the record of a failure must not fail to save."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "\\x00")
        if not value.isascii():
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, list):
        return [storable_text(v) for v in value]
    if isinstance(value, dict):
        return {storable_text(k): storable_text(v) for k, v in value.items()}
    return value


def validate_attributes(spec: DomainSpec, attributes: dict, *, system: str) -> tuple[dict, dict[str, list[str]]]:
    """Return (values, errors). `values` has only the attributes that were sent (absent stays absent)."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    country = None
    if "country" in attributes and not _is_blank(attributes["country"]):
        try:
            country = clean_country(attributes["country"])
        except FieldError:
            country = None
    for name, raw in attributes.items():
        field_spec = spec.get(name)
        if field_spec is None:
            continue
        try:
            values[name] = clean_value(field_spec, raw, system=system, country=country)
        except FieldError as exc:
            errors.setdefault(name, []).append(str(exc))
    return values, errors


def unknown_attributes(spec: DomainSpec, attributes: dict) -> list[str]:
    return sorted(name for name in attributes if spec.get(name) is None)
