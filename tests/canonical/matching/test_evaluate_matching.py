"""python manage.py evaluate_matching: the contract's last line, metrics that could be wrong, bad files."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from canonical.management.commands.evaluate_matching import evaluate_clusters

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "fixtures" / "labelled"))

import generate  # noqa: E402

pytestmark = pytest.mark.django_db
KEYS = ["domain", "records", "true_pairs", "predicted_pairs", "precision", "recall", "f1", "review_tasks", "seconds"]


def test_cluster_metrics_count_pairs_and_b_cubed():
    truth = {"a": "1", "b": "1", "c": "1", "d": "2"}
    predicted = {"a": "x", "b": "x", "c": "y", "d": "y"}
    m = evaluate_clusters(truth, predicted)
    assert (m["true_pairs"], m["predicted_pairs"], m["correct_pairs"]) == (3, 2, 1)
    assert (m["precision"], m["recall"]) == (0.5, 0.3333)
    assert m["bcubed_precision"] == round((1 + 1 + 0.5 + 0.5) / 4, 4)
    assert m["bcubed_recall"] == round((2 / 3 + 2 / 3 + 1 / 3 + 1) / 4, 4)


@pytest.mark.parametrize("domain", ["customer", "legal_entity", "resource"])
def test_evaluate_prints_the_contract_json_last_and_leaves_the_database_as_it_was(fuzzy, tmp_path, domain):
    from canonical.models import SourceRecord

    path = tmp_path / f"{domain}.csv"
    generate.main(["--domain", domain, "--entities", "40", "--seed", "5", "--out", str(path)])
    out, err = io.StringIO(), io.StringIO()
    call_command("evaluate_matching", "--domain", domain, str(path), stdout=out, stderr=err)
    last = out.getvalue().strip().splitlines()[-1]
    data = json.loads(last)
    assert list(data)[: len(KEYS)] == KEYS
    assert data["domain"] == domain
    rows = path.read_text().strip().splitlines()[1:]
    assert data["records"] == len(rows)
    assert data["true_pairs"] > 0
    assert data["f1"] >= 0.9
    assert 0 <= data["bcubed_f1"] <= 1
    assert SourceRecord.objects.count() == 0  # rolled back


def test_evaluate_through_the_bulk_path_measures_what_record_by_record_ingest_gives(fuzzy, tmp_path):
    from canonical.models import SourceRecord

    path = tmp_path / "resource.csv"
    generate.main(["--domain", "resource", "--entities", "40", "--seed", "6", "--out", str(path)])
    results = []
    for extra in ([], ["--bulk"]):
        out = io.StringIO()
        call_command("evaluate_matching", "--domain", "resource", str(path), "--no-progress", *extra, stdout=out)
        results.append(json.loads(out.getvalue().strip().splitlines()[-1]))
    by_record, bulk = results
    assert (by_record["path"], bulk["path"]) == ("record by record", "bulk")
    same = ("true_pairs", "predicted_pairs", "precision", "recall", "f1", "review_tasks", "bcubed_f1")
    assert {k: bulk[k] for k in same} == {k: by_record[k] for k in same}
    assert by_record["predicted_pairs"] > 0
    assert SourceRecord.objects.count() == 0  # rolled back


def test_evaluate_counts_pairs_sent_to_stewards(fuzzy, tmp_path):
    path = tmp_path / "review.csv"
    path.write_text(
        "source_id,cluster,system,name,city,country\n"
        "1,acme,crm,Sovereign Group,Marseille,FR\n"
        "2,acme,erp,Sovereign,Marseille,FR\n"
    )
    out = io.StringIO()
    call_command("evaluate_matching", "--domain", "customer", str(path), "--no-progress", stdout=out)
    data = json.loads(out.getvalue().strip().splitlines()[-1])
    assert (data["true_pairs"], data["predicted_pairs"], data["review_tasks"]) == (1, 0, 1)
    assert (data["precision"], data["recall"], data["f1"]) == (1.0, 0.0, 0.0)


def test_per_system_ingests_one_export_per_system_and_finds_the_same_clusters(fuzzy, tmp_path, monkeypatch):
    from canonical.management.commands import evaluate_matching as ev

    path = tmp_path / "customer.csv"
    generate.main(["--domain", "customer", "--entities", "40", "--seed", "7", "--out", str(path)])
    rows = ev.read_labelled(path, "customer")
    assert len({r["system"] for r in rows[:10]}) > 1  # the file interleaves systems
    calls: list[list[str]] = []
    real = ev._ingest

    def spy(batch, *args):
        calls.append([r["system"] for r in batch])
        return real(batch, *args)

    monkeypatch.setattr(ev, "_ingest", spy)
    file_order = ev.evaluate("customer", rows, progress=False, bulk=True)
    interleaved_calls, calls[:] = list(calls), []
    per_system = ev.evaluate("customer", rows, progress=False, bulk=True, per_system=True, batch_size=500)
    systems = sorted({r["system"] for r in rows})
    # one call per system (40 entities fit in a batch of 500), each all of one system's rows
    assert sorted(c[0] for c in calls) == systems and all(len(set(c)) == 1 for c in calls)
    assert [len(c) for c in calls] == [sum(1 for r in rows if r["system"] == c[0]) for c in calls]
    assert len(interleaved_calls) > len(systems)
    same = ("true_pairs", "predicted_pairs", "precision", "recall", "f1", "bcubed_f1")
    assert {k: per_system[k] for k in same} == {k: file_order[k] for k in same}


def test_batch_size_out_of_range_is_refused(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("source_id,cluster,name\n1,a,Acme\n")
    with pytest.raises(CommandError, match="--batch-size must be between 1 and 10,000"):
        call_command("evaluate_matching", "--domain", "customer", str(path), "--batch-size", "0")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("source_id,name\n1,Acme\n", "line 1: missing column(s) cluster"),
        ("source_id,cluster,name\n1,,Acme\n", "line 2: source_id and cluster must not be empty"),
        ("source_id,cluster,name\n1,a,Acme\n1,b,Acme\n", "line 3: duplicate source_id '1'"),
        ("source_id,cluster,name\n", "no records"),
    ],
)
def test_a_bad_file_is_refused_naming_the_line(fuzzy, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("evaluate_matching", "--domain", "customer", str(path))


@pytest.fixture
def no_evaluation(monkeypatch):
    """Fails the test if the evaluation starts: a refused file is refused while it is read, before any ingest."""
    from canonical.management.commands import evaluate_matching as ev

    def started(*args, **kwargs):
        raise AssertionError("the evaluation started on a file that should have been refused")

    monkeypatch.setattr(ev, "evaluate", started)


def refused(path: Path) -> str:
    """The CommandError's message for a refused file (the database untouched)."""
    from canonical.models import SourceRecord, System

    systems = set(System.objects.values_list("code", flat=True))
    with pytest.raises(CommandError) as caught:
        call_command("evaluate_matching", "--domain", "customer", str(path), "--no-progress", stderr=io.StringIO())
    assert SourceRecord.objects.count() == 0
    assert set(System.objects.values_list("code", flat=True)) == systems
    return str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # a latin-1 byte in the first row (read with the header, which was outside the error handling)
        (b"source_id,cluster,name,country\na,1,Caf\xe9,GB\n", "line 2: not UTF-8 text (invalid continuation byte)"),
        # the row numbers follow the file's lines: blank lines and a quoted value over two lines count
        (
            b'source_id,cluster,name\na,1,Acme\n\n\nb,1,"Multi\nline"\na,2,Acme\n',
            "line 7: duplicate source_id 'a'",
        ),
        (b'source_id,cluster,name\na,1,"Multi\nline"\n,2,Acme\n', "line 4: source_id and cluster must not be empty"),
        # what ingest refuses: a column named twice (the last one won), ragged rows, a quote never closed
        (b"source_id,cluster,name,name,country\na,1,Acme,Other,GB\n", "line 1: column(s) named more than once: name"),
        (b"source_id,cluster,name,country\na,1,Acme\n", "line 2: 3 cells but the header has 4 columns"),
        (b"source_id,cluster,name\na,1,Acme\n\nb,1,Acme,GB,extra\n", "line 4: 5 cells but the header has 3 columns"),
        (
            b'source_id,cluster,name,country\na,1,Acme,"GB\nb,1,Acme,GB\n',
            "line 2: a quoted value in this row is never closed",
        ),
    ],
)
def test_a_malformed_file_is_refused_naming_its_line_before_the_evaluation(tmp_path, no_evaluation, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    assert message in refused(path)


def test_a_bad_byte_deep_in_a_big_file_is_refused_naming_its_line(tmp_path, no_evaluation):
    good = "".join(f"r{i},{i},Name {i},GB\n" for i in range(3000))  # well past the first block decoded
    path = tmp_path / "late.csv"
    path.write_bytes(b"source_id,cluster,name,country\n" + good.encode() + b"late,1,Caf\xe9,GB\n")
    assert "line 3002: not UTF-8 text (invalid continuation byte); save the file as UTF-8" in refused(path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        # what envelope_parse refuses (it raised EnvelopeError from inside the evaluation)
        ("x" * 300 + ",2,Acme,,GB", "line 3: source_id: longer than 255 characters"),
        # what the database refuses as a System's code (DataError): too long, or not a slug
        (
            "b,2,Acme," + "s" * 100 + ",GB",
            "(100 characters) is not a system code (Ensure this value has at most 32 characters",
        ),
        ("b,2,Acme,new sys!,GB", "line 3: system 'new sys!' is not a system code"),
        # NUL cannot be stored in PostgreSQL text (DataError), in any cell
        ("b,2,Ac\x00me,,GB", "line 3: a NUL character (\\x00) in name"),
        ("b,2\x00,Acme,,GB", "line 3: a NUL character (\\x00) in cluster"),
    ],
)
def test_a_row_the_pipeline_or_database_would_refuse_is_refused_naming_its_line_before_the_evaluation(
    tmp_path, no_evaluation, row, message
):
    path = tmp_path / "bad.csv"
    path.write_text(f"source_id,cluster,name,system,country\na,1,Acme,,GB\n{row}\n")
    assert message in refused(path)


def test_unknown_domain_and_missing_file_are_clear_errors(tmp_path):
    with pytest.raises(CommandError, match="unknown domain 'client'"):
        call_command("evaluate_matching", "--domain", "client", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match="cannot read"):
        call_command("evaluate_matching", "--domain", "customer", str(tmp_path / "missing.csv"))


def test_retry_held_runs_records_held_as_incomplete_once_more(fuzzy, tmp_path):
    path = tmp_path / "held.csv"
    path.write_text(
        "source_id,cluster,system,name,website,city\n"
        "1,acme,erp,,acme-analytics.de,Berlin\n"  # no name: held as incomplete, nothing to join yet
        "2,acme,crm,Acme Analytics GmbH,https://www.acme-analytics.de,\n"
    )
    plain, retried = io.StringIO(), io.StringIO()
    call_command("evaluate_matching", "--domain", "customer", str(path), "--no-progress", stdout=plain)
    call_command(
        "evaluate_matching", "--domain", "customer", str(path), "--no-progress", "--retry-held", stdout=retried
    )
    plain_data = json.loads(plain.getvalue().strip().splitlines()[-1])
    retried_data = json.loads(retried.getvalue().strip().splitlines()[-1])
    assert (plain_data["predicted_pairs"], plain_data["not_in_a_golden_record"]) == (0, 1)
    assert (retried_data["predicted_pairs"], retried_data["reprocessed_incomplete"]) == (1, 1)


def test_statistics_are_refreshed_inside_the_rolled_back_run_as_the_hub_doubles(fuzzy, tmp_path, monkeypatch):
    """Autovacuum never sees the evaluation's uncommitted rows, so the run ANALYZEs the tables matching reads
    itself: once `_ANALYZE_FROM` records are in, then each time the hub has doubled (PostgreSQL only)."""
    from django.db import connection

    from canonical.management.commands import evaluate_matching as ev

    path = tmp_path / "customer.csv"
    generate.main(["--domain", "customer", "--entities", "16", "--seed", "8", "--out", str(path)])
    rows = ev.read_labelled(path, "customer")
    monkeypatch.setattr(ev, "_ANALYZE_FROM", 4)
    ingested, batch_ends, analyzed = [0], [], []
    real = ev._ingest

    def counting(batch, *args):
        real(batch, *args)
        ingested[0] += len(batch)
        batch_ends.append(ingested[0])

    def spy(execute, sql, params, many, context):
        if sql.startswith("ANALYZE"):
            assert '"canonical_sourcerecord"' in sql and '"canonical_matchkey"' in sql
            analyzed.append(ingested[0])
        return execute(sql, params, many, context)

    monkeypatch.setattr(ev, "_ingest", counting)
    with connection.execute_wrapper(spy):
        ev.evaluate("customer", rows, progress=False, batch_size=3)
    assert batch_ends[-1] == len(rows) >= 20
    if connection.vendor != "postgresql":
        assert analyzed == []
        return
    expected, at = [], 4
    for done in batch_ends[:-1]:  # the last batch is followed by the measurement, not by more matching
        if done >= at:
            expected.append(done)
            at = 2 * done
    assert analyzed == expected and len(expected) >= 2


def test_the_run_weighs_term_frequencies_by_its_own_records_not_the_hubs_cached_count(fuzzy, tmp_path, monkeypatch):
    """The hub's cached population (its live records, which the run clears) is not the run's: the run counts its
    own records, and neither reads nor moves the hub's count (other processes keep matching against it)."""
    from django.core.cache import cache

    from canonical.management.commands import evaluate_matching as ev
    from canonical.matching import batch, scoring
    from canonical.matching import fuzzy as fuzzy_module

    monkeypatch.setattr(fuzzy_module, "_POPULATION_CACHE_FROM", 30)
    monkeypatch.setattr(scoring, "MIN_TF_POPULATION", 10)
    monkeypatch.setattr(batch, "MIN_TF_POPULATION", 10)
    key = fuzzy_module.population_cache_key("customer")
    fuzzy_module._population_memo.clear()  # (what earlier tests left in this process)
    cache.set(key, 50_000, 300)  # a big hub's count, as another process left it
    path = tmp_path / "customer.csv"
    generate.main(["--domain", "customer", "--entities", "40", "--seed", "5", "--out", str(path)])
    rows = ev.read_labelled(path, "customer")
    read, seen = fuzzy_module._population, []
    monkeypatch.setattr(fuzzy_module, "_population", lambda domain: seen.append(read(domain)) or seen[-1])
    ev.evaluate("customer", rows, progress=False)
    assert seen and max(seen) <= len(rows) and max(seen) >= 30  # crossed the (patched) cache threshold
    assert cache.get(key) == 50_000 and key not in fuzzy_module._population_memo
