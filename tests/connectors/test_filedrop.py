"""The file-drop connector: CSV and JSON Lines files in a folder, each ingested once, bad lines named."""

import json

import pytest

from canonical.models import Customer, Resource
from connectors.models import ProcessedFile
from connectors.services.pull import pull_run


def drop(db, tmp_path):
    from canonical.audit import Channel, audit_context
    from canonical.models import System
    from connectors.services.connections import connection_configure

    with audit_context(actor="pytest", channel=Channel.JOB, reason="test"):
        System.objects.create(code="files", name="Nightly exports", kind="file")
        connection_configure(system="files", kind="filedrop", base_url=str(tmp_path))
    return tmp_path


def test_a_dropped_csv_is_ingested_once_and_moved_to_done(db, tmp_path):
    folder = drop(db, tmp_path)
    (folder / "customer").mkdir()
    csv = "source_id,name,website,colour\nF1,Acme,https://acme.example,red\nF2,Globex,https://globex.example,blue\n"
    (folder / "customer" / "export.csv").write_text(csv)
    run = pull_run(system="files", domain="customer")
    assert run.counts == {"created": 2}
    assert "ignored column(s) colour" in run.errors[0]
    assert (folder / "customer" / "done" / "export.csv").exists()
    (folder / "customer" / "again.csv").write_text(csv)  # the same content under another name
    assert pull_run(system="files", domain="customer").counts == {}
    assert Customer.objects.count() == 2 and ProcessedFile.objects.count() == 1


def test_json_lines_with_a_bad_line_ingest_the_good_lines_and_name_the_bad_one(db, tmp_path):
    folder = drop(db, tmp_path)
    (folder / "resource").mkdir()
    good = {"source_id": "P1", "attributes": {"first_name": "Ada", "last_name": "Lovelace"}}
    lines = [json.dumps(good), "{not json", json.dumps({"attributes": {"first_name": "No id"}})]
    (folder / "resource" / "people.jsonl").write_text("\n".join(lines) + "\n")
    run = pull_run(system="files", domain="resource")
    assert run.counts == {"created": 1}
    assert any("people.jsonl:2" in e for e in run.errors)
    assert any("people.jsonl:3" in e and "source_id" in e for e in run.errors)
    assert Resource.objects.count() == 1


GOOD_CUSTOMERS = "source_id,name\nG1,Good One\nG2,Good Two\n"


def _pull_twice_with_a_good_file(folder, domain: str, name: str, content: bytes, good: tuple[str, str]):
    """Drop a bad file beside a good one and pull twice: the second pull must not trip on the bad file again."""
    (folder / domain).mkdir(exist_ok=True)
    (folder / domain / name).write_bytes(content)
    (folder / domain / good[0]).write_text(good[1])
    first = pull_run(system="files", domain=domain)
    second = pull_run(system="files", domain=domain)
    return first, second


def test_a_latin1_byte_names_its_line_and_the_good_lines_and_file_are_ingested(db, tmp_path):
    folder = drop(db, tmp_path)
    content = "source_id,name\nB1,Before\nB2,Caf\xe9\nB3,After\n".encode("latin-1")
    run, again = _pull_twice_with_a_good_file(folder, "customer", "bad.csv", content, ("good.csv", GOOD_CUSTOMERS))
    assert run.status == "succeeded" and run.counts == {"created": 3}
    assert any("bad.csv:3" in e and "UTF-8" in e and "not read" in e for e in run.errors), run.errors
    assert again.status == "succeeded" and again.errors == [] and again.counts == {}
    assert set(Customer.objects.values_list("name", flat=True)) == {"Before", "Good One", "Good Two"}


def test_a_file_not_utf8_from_the_start_is_recorded_as_failed_and_not_retried(db, tmp_path):
    folder = drop(db, tmp_path)
    (folder / "customer").mkdir()
    (folder / "customer" / "bad.csv").write_bytes(b"\xff\xfes\x00o\x00u\x00")  # UTF-16
    run = pull_run(system="files", domain="customer")
    assert run.status == "failed" and any("bad.csv:1" in e and "UTF-8" in e for e in run.errors)
    processed = ProcessedFile.objects.get()
    assert processed.records == 0 and "UTF-8" in processed.errors[0]
    again = pull_run(system="files", domain="customer")
    assert again.status == "succeeded" and again.errors == []


def test_a_lines_cell_that_is_not_json_names_its_line(db, tmp_path):
    from canonical.models import RateCard

    folder = drop(db, tmp_path)
    content = 'source_id,code,currency,lines\nR1,STD,EUR,"[{""role"": ""Dev"", ""rate"": ""100""}]"\nR2,BAD,EUR,[oops\n'
    good = "source_id,code,currency\nR3,OTHER,EUR\n"
    run, again = _pull_twice_with_a_good_file(folder, "rate_card", "cards.csv", content.encode(), ("good.csv", good))
    assert run.counts == {"created": 2}
    assert any("cards.csv:3" in e and "lines" in e for e in run.errors), run.errors
    assert again.status == "succeeded" and again.errors == []
    assert set(RateCard.objects.values_list("code", flat=True)) == {"STD", "OTHER"}


@pytest.mark.parametrize(
    ("name", "lines", "line", "phrase"),
    [
        ("deep.jsonl", [json.dumps({"source_id": "J1", "attributes": {"name": "Fine"}}), "[" * 5000 + "]" * 5000],
         2, "nested too deeply"),
        ("big.jsonl", ['{"source_id": "N1", "attributes": {"name": ' + "9" * 5000 + "}}",
                       json.dumps({"source_id": "N2", "attributes": {"name": "Fine"}})], 1, "digits"),
    ],
)  # fmt: skip
def test_a_json_line_the_parser_refuses_names_its_line(db, tmp_path, name, lines, line, phrase):
    folder = drop(db, tmp_path)
    content = ("\n".join(lines) + "\n").encode()
    run, again = _pull_twice_with_a_good_file(folder, "customer", name, content, ("good.csv", GOOD_CUSTOMERS))
    assert run.counts == {"created": 3}
    assert any(f"{name}:{line}" in e and phrase in e for e in run.errors), run.errors
    assert again.status == "succeeded" and again.errors == []


def test_a_nul_in_a_column_name_is_reported_escaped_and_saved(db, tmp_path):
    folder = drop(db, tmp_path)
    content = b"source_id,name,na\x00me\nZ1,Zed,x\n"
    run, again = _pull_twice_with_a_good_file(folder, "customer", "nul.csv", content, ("good.csv", GOOD_CUSTOMERS))
    run.refresh_from_db()
    assert run.status == "succeeded" and run.counts == {"created": 3}
    assert any("nul.csv" in e and "na\\x00me" in e for e in run.errors), run.errors
    assert not any("\x00" in e for e in run.errors)
    assert not any("\x00" in e for p in ProcessedFile.objects.all() for e in p.errors)
    assert again.status == "succeeded" and again.errors == []
