"""Normalisers: what two spellings of the same thing have in common."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from anyascii import anyascii
from cleanco import basename as cleanco_basename
from hypothesis import given, settings
from hypothesis import strategies as st

from canonical.matching import normalize as norm

LABELLED = Path(__file__).resolve().parents[3] / "fixtures" / "labelled"


@pytest.mark.parametrize(
    ("raw", "core"),
    [
        ("ACME Holdings GmbH & Co. KG", "acme holdings"),
        ("Acme Holdings G.m.b.H.", "acme holdings"),
        ("Intl. Business Machines Corp.", "international business machines"),
        ("I.B.M. Corp", "ibm"),
        ("Siemens Aktiengesellschaft", "siemens"),
        ("Müller S.A.R.L.", "mueller"),
        ("Mueller SARL", "mueller"),
        ("Société Générale S.A.", "societe generale"),
        ("Smith & Sons Ltd", "smith and sons"),
        ("Газпром", "gazprom"),
    ],
)
def test_company_names_lose_legal_forms_accents_and_abbreviations(raw, core):
    assert norm.company_name(raw) == core


def test_company_tokens_drop_words_that_say_nothing_and_acronyms_come_from_the_rest():
    assert norm.company_tokens("the acme group") == ("acme",)
    assert norm.acronym("international business machines") == "ibm"
    assert norm.acronym("acme") is None


@pytest.mark.parametrize(
    ("first", "formal"),
    [("Bill", "william"), ("Peggy", "margaret"), ("Dmitriy", "dmitry"), ("Jürgen", "juergen"), ("Juergen", "juergen")],
)
def test_given_names_map_nicknames_and_transliterations_to_one_form(first, formal):
    assert norm.person_first(first) == formal


def test_family_names_fold_spaces_hyphens_and_scripts():
    assert norm.person_last("van der Berg") == "vanderberg"
    assert norm.person_last("Иванов") == "ivanov"
    assert norm.phonetic("katherine") == norm.phonetic("catherine")


@pytest.mark.parametrize(
    ("raw", "country", "e164"),
    [
        ("030 1234567", "DE", "+49301234567"),
        ("+49 (0)30 123-4567", None, "+49301234567"),
        ("(212) 555-0123", "US", "+12125550123"),
        ("020 7946 0958", "GB", "+442079460958"),
    ],
)
def test_phone_numbers_become_e164(raw, country, e164):
    assert norm.phone_e164(raw, country) == e164


def test_phone_tail_matches_a_number_written_without_its_country():
    assert norm.phone_tail(norm.phone_e164("+49 30 1234567")) == norm.phone_tail(norm.phone_e164("030 1234567"))


@pytest.mark.parametrize(
    ("raw", "domain"),
    [
        ("https://www.Acme.com/about", "acme.com"),
        ("shop.acme.co.uk", "acme.co.uk"),
        ("http://acme.de:8080/x", "acme.de"),
        ("sales@mail.acme.fr", "acme.fr"),
        ("", None),
    ],
)
def test_websites_reduce_to_their_registrable_domain_without_network(raw, domain):
    assert norm.registrable_domain(raw) == domain


def test_email_parts_ignore_dots_tags_and_subdomains():
    assert norm.email_parts("Jane.Doe+crm@Mail.ACME.com") == ("janedoe", "acme.com")
    assert norm.email_parts("not-an-email") is None


def test_tax_ids_are_compacted_with_their_validity():
    assert norm.tax_id("DE 136 695 976", "DE") == ("136695976", True)
    assert norm.tax_id("136695976", "DE") == ("136695976", True)
    assert norm.tax_id("DE 136 695 977", "DE") == ("136695977", False)


def test_identifiers_and_house_numbers():
    assert norm.identifier("e-01234 ") == "E01234"
    assert norm.house_number("hauptstrasse 12a") == "12"
    assert norm.house_number("po box") is None


@pytest.mark.parametrize("junk", [None, "", "   ", {"a": 1}, ["x"], True])
def test_normalisers_tolerate_junk(junk):
    assert norm.company_name(junk) is None
    assert norm.person_first(junk) is None
    assert norm.phone_e164(junk) is None
    assert norm.registrable_domain(junk) is None
    assert norm.email_parts(junk) is None
    assert norm.identifier(junk) is None


_LEGAL_WORDS = ["GmbH", "Co.", "KG", "Ltd", "Ltd.", "S.A.", "de", "C.V.", "sp.", "z", "o.o.", "Sdn", "Bhd", "AG", "Inc"]
_WORDS = ["Acme", "Müller", "Société", "Øster", "ÅB", "Газпром", "&", "-", ",", "Co", "Holding", "İstanbul", "ﬁne"]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(_LEGAL_WORDS + _WORDS) | st.text(max_size=6), max_size=6),
    st.sampled_from(["", ".", " ,", "!"]),
)
def test_legal_basename_is_cleancos_basename(words, tail):
    """cleanco given only the terms that could match (by their last word) removes what it removes given all."""
    name = " ".join(words) + tail
    assert norm.legal_basename(name) == cleanco_basename(name)


def test_legal_basename_is_cleancos_basename_on_the_labelled_names():
    names = []
    for domain in ("customer", "legal_entity"):
        with open(LABELLED / f"{domain}.csv", newline="", encoding="utf-8") as fh:
            names += [row["name"] for row in csv.DictReader(fh) if row.get("name")]
    names += [anyascii(name) for name in names]
    assert [norm.legal_basename(n) for n in names] == [cleanco_basename(n) for n in names]


def test_house_numbers_and_caches_clear():
    assert norm.house_number("hauptstrasse 12a") == "12"
    assert norm.house_number(None) is None
    norm.caches_clear()
    assert norm.house_number.cache_info().currsize == 0
