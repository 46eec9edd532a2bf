"""The benchmark scripts' own pieces: the generated exports are real ingest input, and the docs block is targeted."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import _common as common  # noqa: E402
import ingest_customers as data  # noqa: E402

from canonical.models import SourceRecord  # noqa: E402
from canonical.services.files import source_file_check, source_file_ingest  # noqa: E402


def test_results_block_replaces_only_its_own_block(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# Benchmarks\n\n## Someone else's\nkept\n\n## Mine\n<!-- results:mine -->\nold\n<!-- /results:mine -->\nafter\n"
    )

    common.results_block_write("mine", "| new |", doc=doc)

    text = doc.read_text()
    assert "## Someone else's\nkept\n" in text
    assert "<!-- results:mine -->\n| new |\n<!-- /results:mine -->\nafter\n" in text
    assert "old" not in text


def test_results_block_is_appended_when_the_doc_has_none(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nother\n")

    common.results_block_write("fresh", "figures", doc=doc)

    assert doc.read_text() == "# Benchmarks\n\nother\n\n<!-- results:fresh -->\nfigures\n<!-- /results:fresh -->\n"


def test_nearest_rank_percentile():
    values = sorted(float(v) for v in range(1, 101))
    assert common.percentile(values, 50) == 50.0
    assert common.percentile(values, 99) == 99.0
    assert common.percentile(values, 100) == 100.0


def test_generated_exports_pass_the_structural_check_with_the_requested_rows(tmp_path):
    files = data.files_generate(200, tmp_path)

    crm = source_file_check(path=files["crm"], domain="customer")
    erp = source_file_check(path=files["erp"], domain="customer")

    assert crm.ok and erp.ok, crm.problems + erp.problems
    assert (crm.records, erp.records) == (120, 80)
    assert crm.ignored == [] and erp.ignored == []


def _domains(path: Path) -> set[str]:
    with path.open() as fh:
        return {data_domain(row["website"]) for row in csv.DictReader(fh) if row["website"]}


def data_domain(website: str) -> str:
    return website.split("://")[-1].removeprefix("www.").rstrip("/")


@pytest.mark.django_db
def test_erp_rows_of_crm_companies_link_to_the_crm_golden_record(tmp_path, audit):
    files = data.files_generate(60, tmp_path, seed=3)
    shared_domains = _domains(files["crm"]) & _domains(files["erp"])
    assert shared_domains, "the generator should repeat some CRM companies in the ERP export"

    source_file_ingest(path=files["crm"], system="crm", domain="customer")
    summary = source_file_ingest(path=files["erp"], system="erp", domain="customer")

    assert summary.counts["linked"] >= len(shared_domains)
    for domain in shared_domains:
        goldens = {
            sr.golden_id
            for sr in SourceRecord.objects.filter(domain="customer", attributes__website__icontains=domain)
            if data_domain(sr.attributes["website"]) == domain
        }
        assert len(goldens) == 1, f"{domain}: the CRM and ERP records should share one golden record"


@pytest.mark.django_db
def test_the_breakdown_times_statements_counts_memo_look_ups_and_collections_then_puts_everything_back(settings):
    """benchmarks/_breakdown.py around two bulk ingest calls: the second's candidate (the first call's record) is
    looked up in the feature memo; every statement is timed, its wait no more than its wall time."""
    import gc

    import _breakdown

    from canonical.audit import Channel, audit_context
    from canonical.domains import get_domain
    from canonical.matching import fuzzy
    from canonical.services import bulk
    from canonical.services.ingest import envelope_parse

    settings.MDM_MATCHER = "canonical.matching.fuzzy.FuzzyMatcher"
    spec = get_domain("customer")

    def ingest(source_id: str, name: str) -> None:
        row = {
            "source_id": source_id,
            "updated_at": "2024-01-01T00:00:00+00:00",
            "attributes": {"name": name, "country": "GB", "website": "quorra.example"},
        }
        with audit_context(actor="pytest", channel=Channel.JOB):
            bulk.source_records_ingest_bulk(system="crm", domain="customer", envelopes=[envelope_parse(row, spec=spec)])

    fuzzy.prepared_cache.clear()
    copy, memo = bulk._copy, fuzzy.prepared_cache._memo
    with _breakdown.breakdown() as report:
        ingest("q1", "Quorra Trading Ltd")
        ingest("q2", "Quorra Trading Limited")
        gc.collect()
    assert report["statements"] and all(0 <= row["wait_s"] <= row["wall_s"] for row in report["statements"])
    assert sum(row["count"] for row in report["statements"]) >= 4
    from django.db import connection

    if connection.vendor == "postgresql":  # the bulk path's writes are COPY there
        assert any(row["label"] == "COPY canonical_sourcerecord" for row in report["statements"])
    assert sum(report["feature_memo"].values()) >= 1  # q1 as q2's candidate
    assert report["gc"]["2"]["runs"] >= 1
    assert any("waiting for the database" in line for line in _breakdown.report_lines(report))
    # everything put back
    assert bulk._copy is copy and fuzzy.prepared_cache._memo == memo and "_memo" not in vars(fuzzy.prepared_cache)
    assert not any(getattr(cb, "__name__", "") == "collected" for cb in gc.callbacks)


def test_the_breakdown_counts_each_memo_tier(monkeypatch):
    import _breakdown

    from canonical.matching import fuzzy
    from canonical.matching.definitions import get_definition

    defn = get_definition("customer")
    cache = fuzzy._PreparedCache(1, 10)  # one entry as it is, the rest packed
    monkeypatch.setattr(fuzzy, "prepared_cache", cache)
    a, b = {"name": "Quorra Ltd", "country": "GB"}, {"name": "Zebedee Plc", "country": "GB"}
    with _breakdown.breakdown() as report:
        cache.get(defn, a)  # prepared
        cache.get(defn, a)  # as it is
        cache.get(defn, b)  # prepared; a packed
        cache.get(defn, a)  # unpacked
    assert report["feature_memo"] == {"first_tier": 1, "packed": 1, "prepared": 2}


def test_the_breakdown_puts_everything_back_when_nested_and_when_the_block_fails():
    import gc

    import _breakdown

    from canonical.matching import fuzzy
    from canonical.services import bulk

    copy, callbacks = bulk._copy, list(gc.callbacks)
    with pytest.raises(RuntimeError, match="boom"):
        with _breakdown.breakdown() as outer:
            with _breakdown.breakdown() as inner:
                assert bulk._copy is not copy
            assert inner["statements"] == [] and "_memo" in vars(fuzzy.prepared_cache)  # the outer's still in place
            raise RuntimeError("boom")
    assert outer["feature_memo"] == {"first_tier": 0, "packed": 0, "prepared": 0}  # filled in on the way out
    assert bulk._copy is copy and "_memo" not in vars(fuzzy.prepared_cache) and gc.callbacks == callbacks


def test_statement_labels_add_up_savepoints_and_in_lists():
    from _breakdown import statement_label

    assert statement_label('SAVEPOINT "s1401_x6"') == statement_label('SAVEPOINT "s1401_x7"') == 'SAVEPOINT "s…"'
    assert statement_label("SELECT a FROM t WHERE id IN (%s, %s)") == statement_label(
        "SELECT a FROM t\n  WHERE id IN (%s, %s, %s)"
    )
    assert statement_label("SELECT a FROM t WHERE x = %s") != statement_label("SELECT a FROM t WHERE y = %s")
