"""Each domain's rules: what scores as the same, what never can, and how the explanation reads."""

from __future__ import annotations

import pytest

from canonical.matching.definitions import get_definition

pytestmark = pytest.mark.django_db


def explain(fuzzy, domain, a, b):
    return fuzzy.explain(domain=domain, values_a=a, values_b=b)


def levels(candidate) -> dict[str, str]:
    return {c.field: c.level for c in candidate.comparisons}


def test_customer_with_legal_form_phone_format_and_website_variants_is_a_link(fuzzy):
    c = explain(
        fuzzy,
        "customer",
        {"name": "ACME Holdings GmbH", "website": "https://www.acme.de", "phone": "030 1234567", "country": "DE"},
        {"name": "Acme Holdings G.m.b.H.", "website": "http://shop.acme.de/en", "phone": "+49 30 1234567"},
    )
    assert c.score >= get_definition("customer").link_probability
    assert levels(c)["name"] == "exact"
    assert levels(c)["web domain"] == "exact"
    assert levels(c)["phone"] == "exact"
    assert c.reason.startswith("very likely the same customer")
    assert "same name" in c.reason and "same web domain" in c.reason


def test_customer_sharing_only_a_common_first_word_is_not_a_link(fuzzy):
    c = explain(
        fuzzy,
        "customer",
        {"name": "Kestrel Logistics Ltd", "country": "GB", "city": "London", "website": "kestrel-logistics.co.uk"},
        {"name": "Kestrel Pharma Ltd", "country": "GB", "city": "Leeds", "website": "kestrelpharma.co.uk"},
    )
    assert c.score < get_definition("customer").review_probability
    assert levels(c)["web domain"] == "different"
    assert "different web domain" in c.reason


def test_acronym_of_a_company_name_is_its_own_level(fuzzy):
    c = explain(fuzzy, "customer", {"name": "International Business Machines Corp."}, {"name": "IBM"})
    assert levels(c)["name"] == "acronym"
    assert [f.weight for f in c.comparisons if f.field == "name"][0] > 0


def test_legal_entities_with_different_valid_tax_ids_in_one_country_are_never_the_same(fuzzy):
    c = explain(
        fuzzy,
        "legal_entity",
        {"name": "Acme GmbH", "country": "DE", "tax_id": "DE136695976", "city": "Berlin"},
        {"name": "Acme GmbH", "country": "DE", "tax_id": "DE129273398", "city": "Berlin"},
    )
    assert c.score == 0.0
    assert c.reason == "never the same: different valid tax ids in DE (136695976 vs 129273398)"


def test_a_mistyped_tax_id_is_not_a_hard_no_but_a_typo_level(fuzzy):
    c = explain(
        fuzzy,
        "legal_entity",
        {"name": "Acme GmbH", "country": "DE", "tax_id": "DE136695976"},
        {"name": "Acme GmbH", "country": "DE", "tax_id": "DE136695967"},
    )
    assert c.score > 0
    assert levels(c)["tax id"] == "one typo apart"


def test_legal_entity_same_tax_id_written_differently_links(fuzzy):
    c = explain(
        fuzzy,
        "legal_entity",
        {"name": "Nordwind Energy AG", "country": "DE", "tax_id": "DE 136 695 976"},
        {"name": "Nordwind Energie Aktiengesellschaft", "country": "DE", "tax_id": "136695976"},
    )
    assert levels(c)["tax id"] == "exact"
    assert c.score >= get_definition("legal_entity").link_probability


def test_same_company_name_in_another_country_is_not_a_link(fuzzy):
    c = explain(
        fuzzy,
        "legal_entity",
        {"name": "Helios Capital Ltd", "country": "GB"},
        {"name": "Helios Capital SA", "country": "FR"},
    )
    assert levels(c)["country"] == "different"
    assert c.score < get_definition("legal_entity").review_probability


def test_resources_with_different_employee_numbers_are_not_the_same(fuzzy):
    c = explain(
        fuzzy,
        "resource",
        {"first_name": "John", "last_name": "Smith", "employee_number": "E100001", "email": "john.smith@firm.com"},
        {"first_name": "John", "last_name": "Smith", "employee_number": "E100002", "email": "john.smith@firm.com"},
    )
    assert c.score == 0.0
    assert "different employee numbers (E100001 vs E100002)" in c.reason


def test_nickname_and_swapped_names_with_the_same_email_name_link(fuzzy):
    c = explain(
        fuzzy,
        "resource",
        {
            "first_name": "William",
            "last_name": "Smith",
            "email": "william.smith@firm.com",
            "date_of_birth": "1980-02-03",
        },
        {"first_name": "Smith", "last_name": "Bill", "email": "william.smith@gmail.com", "date_of_birth": "1980-02-03"},
    )
    by_field = {f.field: f for f in c.comparisons}
    assert by_field["first name"].level == "nickname"
    assert by_field["first name"].value_b == "bill (swapped)"
    assert by_field["last name"].level == "exact"
    assert by_field["email"].level == "same local part"
    assert c.score >= get_definition("resource").link_probability


def test_transliterated_names_match(fuzzy):
    c = explain(
        fuzzy,
        "resource",
        {"first_name": "Дмитрий", "last_name": "Иванов", "date_of_birth": "1975-05-06"},
        {"first_name": "Dmitry", "last_name": "Ivanov", "date_of_birth": "1975-05-06"},
    )
    assert levels(c)["first name"] in ("nickname", "exact")
    assert levels(c)["last name"] == "exact"


def test_family_members_at_one_address_are_not_linked(fuzzy):
    c = explain(
        fuzzy,
        "resource",
        {
            "first_name": "Anna",
            "last_name": "Weber",
            "postal_code": "10115",
            "address_line1": "Hauptstraße 5",
            "date_of_birth": "1970-01-01",
        },
        {
            "first_name": "Lukas",
            "last_name": "Weber",
            "postal_code": "10115",
            "address_line1": "Hauptstrasse 5",
            "date_of_birth": "2001-09-09",
        },
    )
    assert c.score < get_definition("resource").link_probability
    assert levels(c)["first name"] == "different"


def test_missing_values_are_neutral_and_shown_as_missing(fuzzy):
    c = explain(fuzzy, "customer", {"name": "Acme"}, {"name": "Acme", "phone": "+49 30 1"})
    phone = next(f for f in c.comparisons if f.field == "phone")
    assert (phone.level, phone.weight) == ("missing", 0.0)


def test_contracts_with_different_numbers_are_not_the_same(fuzzy):
    c = explain(
        fuzzy, "contract", {"contract_number": "C-1", "title": "Run"}, {"contract_number": "C-2", "title": "Run"}
    )
    assert c.score == 0.0 and "different contract numbers" in c.reason
    same = explain(
        fuzzy, "project", {"project_code": "p 1", "name": "Alpha"}, {"project_code": "P1", "name": "Alpha rollout"}
    )
    assert same.score >= get_definition("project").link_probability


def test_every_comparison_carries_both_values_a_level_and_a_weight(fuzzy):
    c = explain(
        fuzzy,
        "customer",
        {"name": "Acme GmbH", "city": "Berlin", "postal_code": "10115", "country": "DE"},
        {"name": "Acme", "city": "Munich", "postal_code": "80331", "country": "DE"},
    )
    address = next(f for f in c.comparisons if f.field == "address")
    assert (address.value_a, address.value_b, address.level) == ("10115, berlin", "80331, munich", "different")
    assert address.weight < 0
    assert "but different address" in c.reason
    assert "\n" not in c.reason
