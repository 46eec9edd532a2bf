"""The file-drop connector: CSV and JSON Lines files in a folder, each ingested once, bad lines named."""

import json

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
    assert any("people.jsonl line 2" in e for e in run.errors)
    assert any("people.jsonl line 3" in e and "source_id" in e for e in run.errors)
    assert Resource.objects.count() == 1
