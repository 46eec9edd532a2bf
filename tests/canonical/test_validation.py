"""Canonical validation: ISO codes, tax ids (python-stdnum), dates, decimals, enums, emails; and what ingest does
with a record that fails it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from canonical.domains import get_domain
from canonical.models import Contract, Customer, DataException, LegalEntity, RateCard, SourceRecord, SourceStatus
from canonical.validation import FieldError, clean_decimal, clean_tax_id, clean_value, validate_attributes
from tests.factories import ingest, record


def field(domain: str, name: str):
    return get_domain(domain).get(name)


def clean(domain: str, name: str, value, country=None):
    return clean_value(field(domain, name), value, system="crm", country=country)


# --- pure validation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [("de", "DE"), (" GB ", "GB"), ("us", "US")])
def test_country_is_iso_alpha2_normalised(raw, expected):
    assert clean("legal_entity", "country", raw) == expected


@pytest.mark.parametrize(("raw", "hint"), [("DEU", "did you mean 'DE'?"), ("Germany", None), ("XX", None), (1, None)])
def test_country_that_is_not_iso_alpha2_is_refused(raw, hint):
    with pytest.raises(FieldError) as info:
        clean("legal_entity", "country", raw)
    assert "ISO 3166-1 alpha-2" in str(info.value)
    if hint:
        assert hint in str(info.value)


@pytest.mark.parametrize("raw", ["eur", "USD", "gbp", "CHF"])
def test_currency_is_iso_4217(raw):
    assert clean("contract", "currency", raw) == raw.upper()


@pytest.mark.parametrize("raw", ["EURO", "€", "XYZ", "US"])
def test_currency_that_is_not_iso_4217_is_refused(raw):
    with pytest.raises(FieldError, match="ISO 4217"):
        clean("contract", "currency", raw)


@pytest.mark.parametrize(
    ("country", "raw", "compact"),
    [
        ("DE", "DE 136 695 976", "136695976"),
        ("DE", "136695976", "136695976"),
        ("GB", "GB980780684", "980780684"),
        ("GB", "980 7806 84", "980780684"),
        ("FR", "FR 40 303 265 045", "40303265045"),
        ("NL", "NL004495445B01", "004495445B01"),
        ("NL", "004495445B01", "004495445B01"),
        ("US", "04-2103594", "042103594"),  # EIN
        ("GR", "EL 094259216", "094259216"),
    ],
)
def test_valid_tax_ids_are_kept_in_one_compact_form_with_or_without_prefix(country, raw, compact):
    assert clean_tax_id(raw, country) == compact


@pytest.mark.parametrize(
    ("country", "raw"),
    [
        ("DE", "DE136695977"),  # check digit
        ("DE", "12345"),
        ("GB", "GB980780685"),
        ("FR", "FR41303265045"),
        ("NL", "NL004495446B01"),
        ("US", "07-1234567"),  # EIN prefix 07 is not assigned
        ("US", "12-34"),
    ],
)
def test_invalid_tax_ids_are_refused_naming_the_country(country, raw):
    with pytest.raises(FieldError, match=f"not a valid tax id for {country}"):
        clean_tax_id(raw, country)


def test_tax_id_of_a_country_without_a_scheme_is_compacted_not_checked():
    assert clean_tax_id("ab-12.34 5", "AQ") == "AB12345"


def test_tax_id_is_checked_against_the_records_own_country():
    values, errors = validate_attributes(
        get_domain("legal_entity"), {"name": "X", "country": "de", "tax_id": "980780684"}, system="erp"
    )
    assert "tax_id" in errors and "DE" in errors["tax_id"][0]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("2024-02-29", "2024-02-29"), ("2024-03-01T10:00:00Z", "2024-03-01"), ("2024-03-01 10:00", "2024-03-01")],
)
def test_dates_are_iso_8601(raw, expected):
    assert clean("contract", "start_date", raw) == expected


@pytest.mark.parametrize("raw", ["2023-02-29", "01/03/2024", "March 1st", "2024-13-01", True])
def test_dates_that_are_not_iso_8601_are_refused(raw):
    with pytest.raises(FieldError):
        clean("contract", "start_date", raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1234567.89", "1234567.89"),
        ("1,234,567.89", "1234567.89"),
        (0.1, "0.10"),  # a JSON float is read from its shortest repr, never its binary expansion
        (0.1 + 0.2, "0.30"),  # binary noise in a float is rounded to the field's precision
        (10, "10.00"),
        ("-5.5", "-5.50"),
        (Decimal("99.990"), "99.99"),
        ("9999999999999999.99", "9999999999999999.99"),
    ],
)
def test_decimals_are_exact_strings(raw, expected):
    assert clean("contract", "total_value", raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("12.345", "more than 2 decimal places"),  # money is never silently rounded
        ("1,5", "not a decimal number"),  # a decimal comma is ambiguous: refused, not read as 15
        ("1.234,56", "not a decimal number"),
        ("abc", "not a decimal number"),
        ("NaN", "not a finite number"),
        ("Infinity", "not a finite number"),
        ("99999999999999999.00", "more than 16 digits"),
        (True, "expected a decimal number"),
    ],
)
def test_decimals_that_are_not_exact_money_are_refused(raw, message):
    with pytest.raises(FieldError, match=message):
        clean("contract", "total_value", raw)


@pytest.mark.parametrize(("raw", "expected"), [("Fixed_Fee", "fixed_fee"), ("retainer", "retainer")])
def test_enum_values(raw, expected):
    assert clean("contract", "contract_type", raw) == expected


def test_enum_value_outside_the_choices_is_refused_listing_them():
    with pytest.raises(FieldError, match="not one of time_and_materials, fixed_fee, milestone, retainer"):
        clean("contract", "contract_type", "hourly")


@pytest.mark.parametrize(("raw", "expected"), [("Ada@Firm.Example.com", "ada@firm.example.com")])
def test_emails_are_lower_cased(raw, expected):
    assert clean("resource", "email", raw) == expected


@pytest.mark.parametrize("raw", ["ada", "ada@", "@firm.example.com", "ada@@firm.example.com", "a b@x.com"])
def test_invalid_emails_are_refused(raw):
    with pytest.raises(FieldError, match="not a valid email"):
        clean("resource", "email", raw)


def test_booleans_lists_and_rate_card_lines():
    assert clean("legal_entity", "is_internal", "yes") is True
    assert clean("resource", "skills", "python; django;python") == ["python", "django"]
    lines = clean("rate_card", "lines", [{"role": "Dev", "rate": "100.5"}, {"role": "Arch", "unit": "day", "rate": 1}])
    assert lines == [
        {"role": "Arch", "grade": None, "unit": "day", "rate": "1.00"},
        {"role": "Dev", "grade": None, "unit": "hour", "rate": "100.50"},
    ]
    with pytest.raises(FieldError, match="line 1: unit must be hour or day"):
        clean("rate_card", "lines", [{"role": "Dev", "unit": "week", "rate": 1}])


def test_blank_values_are_none():
    assert clean("customer", "industry", "  ") is None
    assert clean("resource", "skills", "") == []


def test_clean_decimal_respects_each_fields_precision():
    assert clean_decimal("12.5", field("resource", "capacity_hours_per_week")) == "12.50"
    with pytest.raises(FieldError):
        clean_decimal("12345.00", field("resource", "capacity_hours_per_week"))


# --- what ingest does with invalid and incomplete records -------------------------------------------------------


@pytest.mark.django_db
def test_invalid_record_is_kept_as_a_validation_exception_not_applied():
    (result,) = ingest(
        "erp",
        "legal_entity",
        record("L1", 0, name="Acme GmbH", country="Germany", tax_id="DE136695976"),
        request_id="r-bad",
    )
    assert result.outcome == "exception" and result.golden_id is None
    assert set(result.errors) == {"country"}
    sr = SourceRecord.objects.get()
    assert sr.status == SourceStatus.INVALID and sr.attributes["country"] == "Germany"
    assert sr.errors == result.errors
    exc = DataException.objects.get()
    assert (exc.kind, exc.status, exc.source_record) == ("validation", "open", sr)
    assert exc.detail == {"errors": result.errors}
    assert exc.history.get().history_request_id == "r-bad"
    assert LegalEntity.objects.count() == 0


@pytest.mark.django_db
def test_invalid_new_version_keeps_the_golden_record_at_the_last_valid_values():
    (first,) = ingest("crm", "contract", record("K1", 0, contract_number="SOW-1", customer="C0"))
    ingest("crm", "customer", record("C0", 0, name="Acme"))
    contract = Contract.objects.get()
    ingest("crm", "contract", record("K1", 1, contract_number="SOW-1", customer="C0", total_value="1000.00"))
    contract.refresh_from_db()
    version = contract.version

    (bad,) = ingest(
        "crm", "contract", record("K1", 2, contract_number="SOW-1", customer="C0", total_value="lots", currency="EURO")
    )

    contract.refresh_from_db()
    assert bad.outcome == "exception" and bad.golden_id == str(contract.pk)
    assert set(bad.errors) == {"total_value", "currency"}
    assert contract.total_value == Decimal("1000.00") and contract.version == version
    sr = SourceRecord.objects.get(domain="contract")
    assert sr.status == SourceStatus.APPLIED and sr.values["total_value"] == "1000.00"
    assert DataException.objects.get(kind="validation").status == "open"

    (fixed,) = ingest("crm", "contract", record("K1", 3, contract_number="SOW-1", customer="C0", total_value="1200"))
    contract.refresh_from_db()
    assert fixed.outcome == "updated" and contract.total_value == Decimal("1200.00")
    assert DataException.objects.get(kind="validation").status == "resolved"


@pytest.mark.django_db
def test_incomplete_new_record_is_held_as_an_incomplete_exception():
    (result,) = ingest("erp", "rate_card", record("R1", 0, code="STD", name="Standard"))
    assert result.outcome == "exception" and result.errors == {"currency": ["this field is required"]}
    sr = SourceRecord.objects.get()
    assert sr.status == SourceStatus.INCOMPLETE
    exc = DataException.objects.get()
    assert exc.kind == "incomplete" and exc.detail == {"missing": ["currency"]}
    assert RateCard.objects.count() == 0

    (done,) = ingest("erp", "rate_card", record("R1", 1, code="STD", name="Standard", currency="EUR"))
    assert done.outcome == "created"
    exc.refresh_from_db()
    assert exc.status == "resolved" and SourceRecord.objects.get().status == SourceStatus.APPLIED


@pytest.mark.django_db
def test_owner_emptying_a_required_field_is_an_incomplete_exception_and_keeps_the_value():
    (first,) = ingest("crm", "customer", record("C1", 0, name="Acme"))
    (emptied,) = ingest("crm", "customer", record("C1", 1, name=""))
    assert emptied.outcome == "exception" and emptied.errors == {"name": ["this field is required"]}
    assert Customer.objects.get().name == "Acme"
    assert DataException.objects.get(kind="incomplete").golden_id == Customer.objects.get().pk


def _money_round_trip(large: str) -> None:
    ingest("crm", "customer", record("C0", 0, name="Acme"))
    ingest(
        "crm",
        "contract",
        record("K1", 0, contract_number="A", customer="C0", total_value="0.10"),
        record("K2", 0, contract_number="B", customer="C0", total_value=0.2),
        record("K3", 0, contract_number="C", customer="C0", total_value=large),
    )
    values = dict(Contract.objects.values_list("contract_number", "total_value"))
    assert all(isinstance(v, Decimal) for v in values.values())
    assert values["A"] + values["B"] == Decimal("0.30")
    assert values["C"] == Decimal(large)
    assert SourceRecord.objects.get(source_id="K3").values["total_value"] == large


@pytest.mark.django_db
def test_money_round_trips_exactly_through_the_database():
    _money_round_trip("1234567890123.45")  # 15 significant digits: exact even on embedded SQLite


@pytest.mark.postgres
@pytest.mark.django_db
def test_money_with_all_eighteen_digits_round_trips_exactly_on_postgresql():
    _money_round_trip("9999999999999999.99")  # SQLite stores decimals as REAL and cannot hold this exactly
