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
