"""The demo: a deterministic generator, and `manage.py load_demo` loading it through the pipeline, idempotently."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from simple_history.models import registered_models

from canonical.api.clients import api_client_authenticate
from canonical.domains import DOMAINS
from canonical.models import (
    ApiClient,
    ChangeEvent,
    CrossReference,
    DataException,
    ExceptionStatus,
    SourceRecord,
    SourceStatus,
)
from canonical.validation import FieldError, clean_tax_id

DEMO = Path(settings.BASE_DIR) / "fixtures" / "demo"


def _generator():
    spec = importlib.util.spec_from_file_location(
        "generate_demo", Path(settings.BASE_DIR) / "fixtures" / "generate_demo.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manifest() -> list[dict]:
    return json.loads((DEMO / "manifest.json").read_text())["files"]


def demo_rows(name: str) -> list[dict]:
    path = DEMO / name
    if name.endswith(".csv"):
        with path.open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def history_counts() -> dict[str, int]:
    tables = set(connection.introspection.table_names())
    return {
        name: model.history.model.objects.count()
        for name, model in registered_models.items()
        if model.history.model._meta.db_table in tables
    }


def golden_of(system: str, domain: str, source_id: str):
    return CrossReference.objects.get(system_id=system, domain=domain, source_id=source_id).golden_id


def load_demo(*args: str) -> str:
    out = StringIO()
    call_command("load_demo", "--no-progress", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_generator_is_deterministic_and_the_committed_files_are_its_output(tmp_path):
    generator = _generator()
    demo = generator.Demo()
    demo.build()
    generator.write(demo, tmp_path)

    produced = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(DEMO) for p in DEMO.rglob("*") if p.is_file())
    assert produced == committed
    for rel in produced:
        assert (tmp_path / rel).read_bytes() == (DEMO / rel).read_bytes(), f"{rel} differs: run the generator"


def test_demo_has_a_few_hundred_records_in_every_domain_from_all_four_systems():
    entries = manifest()
    assert 250 <= sum(e["records"] for e in entries) <= 600
    assert {e["domain"] for e in entries} == set(DOMAINS)
    assert {e["system"] for e in entries} == {"crm", "erp", "psa", "hr"}
    assert {Path(e["file"]).suffix for e in entries} == {".csv", ".jsonl"}
    for e in entries:
        assert len(demo_rows(e["file"])) == e["records"]


def test_tax_ids_pass_stdnum_except_the_one_deliberate_typo():
    invalid = []
    for name in ("erp/legal_entities.csv", "hr/companies.csv", "crm/legal_entities.jsonl"):
        for row in demo_rows(name):
            values = row.get("attributes", row)
            if not values.get("tax_id"):
                continue
            country = values["country"] if values["country"] != "UK" else "GB"
            try:
                clean_tax_id(values["tax_id"], country)
            except FieldError:
                invalid.append((name, row["source_id"]))
    assert invalid == [("erp/legal_entities.csv", "LE-0108")]


@pytest.mark.django_db
def test_load_demo_links_duplicates_keeps_every_record_and_a_second_run_changes_nothing():
    out = load_demo("--admin", "--api-client")

    # Every record of every file arrived.
    expected = {(e["system"], e["domain"], row["source_id"]) for e in manifest() for row in demo_rows(e["file"])}
    assert set(SourceRecord.objects.values_list("system_id", "domain", "source_id")) == expected

    # Duplicates across systems were linked: fewer golden records than source records.
    for domain in ("legal_entity", "customer", "contract", "resource"):
        golden = DOMAINS[domain].model.objects.count()
        assert 0 < golden < SourceRecord.objects.filter(domain=domain).count(), domain
    assert golden_of("crm", "customer", "0015g0000000TIuAAC") == golden_of("erp", "customer", "CUST-10001")
    assert golden_of("crm", "customer", "0015g0000000VMdAAC") == golden_of("erp", "customer", "CUST-10002")  # via LE
    assert golden_of("hr", "legal_entity", "CO-NL01") == golden_of("erp", "legal_entity", "LE-0002")
    assert golden_of("hr", "resource", "W100300") == golden_of("psa", "resource", "u-2000")
    crm_contract = DOMAINS["contract"].model.objects.get(pk=golden_of("crm", "contract", "8005g0000000XQMAAC"))
    assert {x.system_id for x in CrossReference.objects.filter(domain="contract", golden_id=crm_contract.pk)} == {
        "crm",
        "erp",
    }

    # Invariant 1: each source record is part of a golden record, deleted in its system, or in an open exception.
    open_exceptions = set(
        DataException.objects.filter(status=ExceptionStatus.OPEN).values_list("source_record_id", flat=True)
    )
    for sr in SourceRecord.objects.all():
        if sr.status == SourceStatus.APPLIED:
            assert DOMAINS[sr.domain].model.objects.filter(pk=sr.golden_id).exists(), sr
            assert CrossReference.objects.filter(source_record=sr, golden_id=sr.golden_id).exists(), sr
        elif sr.status != SourceStatus.DELETED:
            assert sr.pk in open_exceptions, f"{sr} ({sr.status}) is neither applied nor in an open exception"
    assert SourceRecord.objects.filter(status=SourceStatus.INVALID).count() >= 5
    assert SourceRecord.objects.filter(status=SourceStatus.INCOMPLETE).count() >= 1
    # The held contract and the project waiting on it were released by the later CRM export.
    assert not SourceRecord.objects.filter(status=SourceStatus.PENDING_REFERENCE).exists()
    deleted = SourceRecord.objects.get(status=SourceStatus.DELETED)
    assert DOMAINS["customer"].model.objects.get(pk=deleted.golden_id).status == "inactive"

    # The demo login and API key.
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("admin")
    key = re.search(r"^\s+(mdm_\S+)$", out, re.MULTILINE).group(1)
    client = api_client_authenticate(key=key)
    assert client is not None and client.name == "demo"
    assert set(client.scopes) == {f"read:{d}" for d in DOMAINS} | {"read:personal"}
    assert "Admin: http://127.0.0.1:8000/admin/  login admin / admin" in out

    history, events = history_counts(), ChangeEvent.objects.count()
    sources = list(SourceRecord.objects.order_by("pk").values("pk", "status", "values", "golden_id", "conflicts"))

    again = load_demo("--admin")

    totals = re.search(r"^Demo loaded: .*$", again, re.MULTILINE).group(0)
    assert "created 0, linked 0, updated 0," in totals
    assert "deleted 0, exception 0, held 0" in totals
    # Rows superseded by a later export come back older than the version held: stale, ignored.
    assert int(re.search(r"stale (\d+)", totals).group(1)) == 4
    assert history_counts() == history
    assert ChangeEvent.objects.count() == events
    assert list(SourceRecord.objects.order_by("pk").values("pk", "status", "values", "golden_id", "conflicts")) == (
        sources
    )
    assert ApiClient.objects.filter(name="demo").count() == 1


@pytest.mark.django_db
def test_load_demo_checks_every_file_before_writing_anything(tmp_path):
    shutil.copytree(DEMO, tmp_path / "demo")
    broken = tmp_path / "demo" / "psa" / "projects.jsonl"
    lines = broken.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[4] = lines[4][:40] + "\n"
    broken.write_text("".join(lines), encoding="utf-8")

    with pytest.raises(CommandError, match=r"projects\.jsonl:5: invalid JSON"):
        load_demo("--manifest", str(tmp_path / "demo" / "manifest.json"))
    assert SourceRecord.objects.count() == 0


@pytest.mark.django_db
def test_load_demo_explains_a_missing_manifest(tmp_path):
    with pytest.raises(CommandError, match="cannot read the manifest .*give the path of a manifest with --manifest"):
        load_demo("--manifest", str(tmp_path / "nope.json"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"system": "nope", "domain": "customer", "file": "b.csv"},
         r"files entry 2 \(b\.csv\): unknown system 'nope'; known systems: crm, erp, hr, psa"),
        ({"system": "crm", "domain": ["customer"], "file": "b.csv"}, "files entry 2: domain missing or not a text"),
        ({"system": "crm", "domain": "account", "file": "b.csv"}, r"files entry 2 \(b\.csv\): unknown domain 'account'"),
        ("b.csv", "files entry 2: expected an object"),
        ({"system": "crm", "domain": "customer", "file": "b\x00.csv"}, "files entry 2: the file name holds a NUL"),
    ],
)  # fmt: skip
def test_load_demo_checks_every_manifest_entry_before_loading_any_file(tmp_path, entry, message):
    for name, row in (("a.csv", "A1,Acme,DE"), ("b.csv", "B1,Globex,NL")):
        (tmp_path / name).write_text(f"source_id,name,country\n{row}\n", encoding="utf-8")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"files": [{"system": "crm", "domain": "customer", "file": "a.csv"}, entry]}))

    with pytest.raises(CommandError, match=message):
        load_demo("--manifest", str(manifest))
    assert SourceRecord.objects.count() == 0
