"""survive(): pure per-field survivorship. Override > owner > recency > completeness > system priority."""

from __future__ import annotations

import datetime as dt

from canonical.domains import get_domain
from canonical.services.survivorship import Contribution, missing_required, survive

SPEC = get_domain("customer")
T = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
PRIORITIES = {"crm": 10, "erp": 20, "psa": 30, "hr": 40}


def c(pk: int, system: str, hours: int = 0, **values) -> Contribution:
    return Contribution(
        source_record_id=pk,
        system=system,
        source_id=f"{system}-{pk}",
        updated_at=T + dt.timedelta(hours=hours),
        values=values,
    )


def run(*contributions, owners=None, overrides=None):
    return survive(
        spec=SPEC,
        contributions=list(contributions),
        owners=owners or {},
        overrides=overrides or {},
        priorities=PRIORITIES,
    )


def test_owner_beats_a_more_recent_non_owner_and_the_non_owner_is_a_conflict():
    s = run(c(1, "crm", 0, name="Acme"), c(2, "erp", 9, name="ACME Inc"), owners={"name": "crm"})
    assert s.values["name"] == "Acme"
    assert s.provenance["name"] == {
        "system": "crm",
        "source_record": 1,
        "source_id": "crm-1",
        "rule": "owner",
        "at": "2024-01-01T00:00:00+00:00",
    }
    assert s.conflicts == {2: {"name": {"value": "ACME Inc", "owner": "crm", "owner_value": "Acme"}}}


def test_non_owner_with_the_same_value_is_not_a_conflict():
    s = run(c(1, "crm", name="Acme"), c(2, "erp", name="Acme"), owners={"name": "crm"})
    assert s.conflicts == {}


def test_most_recent_of_several_owner_records_wins():
    s = run(c(1, "crm", 0, name="Old"), c(2, "crm", 3, name="New"), owners={"name": "crm"})
    assert s.values["name"] == "New" and s.provenance["name"]["source_record"] == 2


def test_owner_clearing_a_field_wins_over_a_non_owner_value():
    s = run(c(1, "crm", 0, industry=None), c(2, "erp", 5, industry="IT"), owners={"industry": "crm"})
    assert s.values["industry"] is None
    assert s.provenance["industry"]["rule"] == "owner"
    assert s.conflicts == {2: {"industry": {"value": "IT", "owner": "crm", "owner_value": None}}}


def test_when_the_owner_never_sent_a_field_the_best_other_value_fills_in_as_fallback():
    s = run(c(1, "crm", 0, name="Acme"), c(2, "erp", 1, phone="+1 555"), owners={"name": "crm", "phone": "crm"})
    assert s.values["phone"] == "+1 555"
    assert s.provenance["phone"]["rule"] == "fallback" and s.provenance["phone"]["system"] == "erp"
    assert s.conflicts == {}


def test_without_an_owner_the_most_recent_value_wins():
    s = run(c(1, "crm", 0, industry="Software"), c(2, "erp", 1, industry="IT"))
    assert s.values["industry"] == "IT" and s.provenance["industry"]["rule"] == "recency"


def test_on_equal_time_the_more_complete_record_wins():
    s = run(c(1, "crm", 0, industry="Software"), c(2, "psa", 0, industry="IT", city="Berlin", phone="1"))
    assert s.values["industry"] == "IT"


def test_on_equal_time_and_completeness_the_system_with_the_lower_priority_number_wins():
    s = run(c(1, "psa", 0, industry="Consulting"), c(2, "erp", 0, industry="IT"))
    assert s.values["industry"] == "IT"
    s = run(c(2, "erp", 0, industry="IT"), c(1, "psa", 0, industry="Consulting"))
    assert s.values["industry"] == "IT"  # input order does not matter


def test_empty_values_never_win_recency_over_a_present_value():
    s = run(c(1, "crm", 0, industry="Software"), c(2, "erp", 5, industry=""), c(3, "psa", 6, industry=None))
    assert s.values["industry"] == "Software"


def test_steward_override_beats_the_owner():
    s = run(c(1, "crm", 0, name="Acme"), owners={"name": "crm"}, overrides={"name": "Acme Corporation"})
    assert s.values["name"] == "Acme Corporation"
    assert s.provenance["name"] == {
        "system": None,
        "source_record": None,
        "source_id": None,
        "rule": "steward_override",
    }
    assert s.conflicts == {}


def test_fields_nobody_sent_are_empty_without_provenance():
    s = run(c(1, "crm", 0, name="Acme"))
    assert s.values["industry"] is None and "industry" not in s.provenance
    assert set(s.values) == set(SPEC.field_names)


def test_list_fields_default_to_an_empty_list():
    s = survive(spec=get_domain("resource"), contributions=[c(1, "hr", first_name="A")], owners={}, overrides={})
    assert s.values["skills"] == []


def test_missing_required_lists_empty_required_fields():
    assert missing_required(SPEC, {"name": ""}) == ["name"]
    assert missing_required(SPEC, {"name": "Acme"}) == []
    assert missing_required(get_domain("contract"), {"contract_number": "1"}) == ["customer"]


def test_survive_is_deterministic_under_any_input_order():
    items = [c(1, "crm", 1, industry="A"), c(2, "erp", 1, industry="B"), c(3, "psa", 1, industry="C")]
    results = {run(*order).values["industry"] for order in (items, items[::-1], items[1:] + items[:1])}
    assert results == {"A"}


def test_provenance_changed_ignores_only_the_times():
    """golden.py's `_provenance_changed` says what comparing the provenance without each entry's `at` says."""
    from canonical.services.golden import _provenance_changed

    def without_times(provenance):
        return {name: {k: v for k, v in entry.items() if k != "at"} for name, entry in (provenance or {}).items()}

    entry = {"system": "crm", "source_record": 1, "source_id": "C1", "rule": "owner", "at": "2024-01-01T00:00:00"}
    override = {"system": None, "source_record": None, "source_id": None, "rule": "steward_override"}
    base = {"name": entry, "phone": {**entry, "rule": "recency"}, "industry": override}
    variants = [
        None,
        {},
        base,
        {**base, "name": {**entry, "at": "2025-01-01T00:00:00"}},  # a later time of the same source: no change
        {**base, "name": {k: v for k, v in entry.items() if k != "at"}},  # the time gone: no change
        {**base, "name": {**entry, "rule": "fallback"}},
        {**base, "name": {**entry, "source_record": 2}},
        {**base, "name": {**entry, "extra": 1}},
        {k: v for k, v in base.items() if k != "phone"},
        {**base, "city": entry},
        {**base, "industry": {**override, "rule": "owner"}},
    ]
    for old in variants:
        for new in variants:
            assert _provenance_changed(old, new) == (without_times(old) != without_times(new)), (old, new)
    assert not _provenance_changed(base, variants[3]) and _provenance_changed(base, variants[5])
