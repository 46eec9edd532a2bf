"""`manage.py ingest`: CSV and JSON Lines files through the pipeline, checked first, idempotent, attributed."""

from __future__ import annotations

import gzip
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from simple_history.models import registered_models

from canonical.audit import Channel, audit_context
from canonical.management.commands.ingest import cli_actor
from canonical.models import (
    ChangeEvent,
    Contract,
    Customer,
    DataException,
    ExceptionStatus,
    RateCard,
    Resource,
    SourceRecord,
    SourceStatus,
)

pytestmark = pytest.mark.django_db

CUSTOMERS_CSV = """source_id,updated_at,name,website,industry,country
C1,2024-05-01T10:00:00Z,Acme,https://www.acme.example.com,Software,NL
C2,2024-05-01T10:00:00Z,Globex,globex.example.com,,DE
C3,2024-05-01T10:00:00Z,"Initech, Inc.",initech.example.com,Consulting,US
C4,2024-05-01T10:00:00Z,Umbrella,umbrella.example.com,Pharma,GB
C5,2024-05-01T10:00:00Z,Hooli,hooli.example.com,Software,US
"""


def history_counts() -> dict[str, int]:
    """Rows in the history table of every history-tracked model (whose table exists in this database)."""
    tables = set(connection.introspection.table_names())
    return {
        name: model.history.model.objects.count()
        for name, model in registered_models.items()
        if model.history.model._meta.db_table in tables
    }


def written() -> tuple[int, int, int, dict[str, int]]:
    return SourceRecord.objects.count(), Customer.objects.count(), ChangeEvent.objects.count(), history_counts()


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("ingest", *args, "--no-progress", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(*objects: dict) -> str:
    return "".join(json.dumps(o) + "\n" for o in objects)


def test_same_csv_twice_second_run_is_all_unchanged_and_writes_no_history(tmp_path):
    path = write(tmp_path, "customers.csv", CUSTOMERS_CSV)

    first, _ = run("--system", "crm", "--domain", "customer", str(path))
    assert "created 5, linked 0, updated 0, unchanged 0" in first
    assert Customer.objects.count() == 5
    sources_before = list(SourceRecord.objects.order_by("pk").values("pk", "status", "values", "golden_id"))
    versions = dict(Customer.objects.values_list("pk", "version"))
    before = written()

    second, _ = run("--system", "crm", "--domain", "customer", str(path))

    assert "created 0, linked 0, updated 0, unchanged 5, stale 0, deleted 0, exception 0, held 0" in second
    assert written() == before
    assert list(SourceRecord.objects.order_by("pk").values("pk", "status", "values", "golden_id")) == sources_before
    assert dict(Customer.objects.values_list("pk", "version")) == versions


def test_history_rows_say_the_cli_user_the_job_channel_and_the_file(tmp_path):
    path = write(tmp_path, "customers.csv", CUSTOMERS_CSV)
    run("--system", "crm", "--domain", "customer", str(path))

    acme = Customer.objects.get(name="Acme")
    row = acme.history.get()
    assert row.history_actor == cli_actor()
    assert row.history_channel == "job"
    assert row.history_change_reason == "ingest customers.csv"
    assert row.history_request_id
    xref_row = SourceRecord.objects.get(source_id="C1").xref.history.get()
    assert (xref_row.history_actor, xref_row.history_request_id) == (cli_actor(), row.history_request_id)


def test_empty_cell_is_blank_and_values_are_normalised(tmp_path):
    path = write(tmp_path, "customers.csv", CUSTOMERS_CSV)
    run("--system", "crm", "--domain", "customer", str(path))

    globex = SourceRecord.objects.get(source_id="C2")
    assert globex.attributes["industry"] is None
    assert Customer.objects.get(pk=globex.golden_id).industry is None
    assert Customer.objects.get(name="Initech, Inc.").website == "https://initech.example.com"


def test_jsonl_in_the_rest_shape_is_ingested_and_idempotent(tmp_path):
    path = write(
        tmp_path,
        "accounts.jsonl",
        jsonl(
            {"source_id": "A1", "updated_at": "2024-05-01T10:00:00Z", "attributes": {"name": "Acme", "country": "NL"}},
            {"source_id": "A2", "updated_at": "2024-05-01T10:00:00Z", "attributes": {"name": "Acme Retail",
                                                                                     "parent": "A1"}},
            {"source_id": "A3", "updated_at": "2024-05-01T11:00:00Z", "deleted": False, "attributes": {
                "name": "Globex", "parent": {"system": "crm", "source_id": "A1"}}},
        ),
    )  # fmt: skip

    first, _ = run("--system", "crm", "--domain", "customer", str(path))
    assert "created 3" in first
    acme = Customer.objects.get(name="Acme")
    assert set(Customer.objects.filter(parent=acme).values_list("name", flat=True)) == {"Acme Retail", "Globex"}
    before = written()

    second, _ = run("--system", "crm", "--domain", "customer", str(path))

    assert "unchanged 3" in second
    assert written() == before


def test_later_file_with_a_deleted_row_and_an_older_row(tmp_path):
    run("--system", "crm", "--domain", "customer", str(write(tmp_path, "customers.csv", CUSTOMERS_CSV)))
    delta = write(
        tmp_path,
        "delta.csv",
        "source_id,updated_at,deleted,name\n"
        "C1,2024-06-01T00:00:00Z,true,Acme\n"
        "C2,2024-01-01T00:00:00Z,,Globex (old name)\n"
        "C3,2024-06-01T00:00:00Z,false,Initech\n",
    )

    out, _ = run("--system", "crm", "--domain", "customer", str(delta))

    assert "updated 1, unchanged 0, stale 1, deleted 1" in out
    assert Customer.objects.get(name="Acme").status == "inactive"
    assert Customer.objects.filter(name="Globex").exists()


@pytest.mark.parametrize(
    ("name", "text", "line", "message"),
    [
        (
            "bad_json.jsonl",
            jsonl({"source_id": "A1", "attributes": {"name": "Acme"}}, {"source_id": "A2", "attributes": {}})
            + '{"source_id": "A3", "attributes": {"name": "Gl\n'
            + jsonl({"source_id": "A4", "attributes": {"name": "Hooli"}}),
            3,
            "invalid JSON",
        ),
        ("not_object.jsonl", jsonl({"source_id": "A1", "attributes": {"name": "Acme"}}) + "[1, 2]\n", 2,
         "expected a JSON object"),
        ("no_source_id.jsonl", jsonl({"source_id": "A1", "attributes": {"name": "A"}}, {"attributes": {"name": "B"}}),
         2, "source_id: this field is required"),
        ("bad_time.csv", CUSTOMERS_CSV.replace("C4,2024-05-01T10:00:00Z", "C4,01/05/2024 10:00"), 5,
         "updated_at: '01/05/2024 10:00' is not an ISO 8601 date-time"),
        ("bad_deleted.csv", "source_id,deleted,name\nC1,,Acme\nC2,maybe,Globex\n", 3, "deleted: must be true or false"),
        ("empty_id.csv", "source_id,name\nC1,Acme\n ,Globex\n", 3, "source_id: this field is required"),
        ("ragged.csv", "source_id,name,website\nC1,Acme,acme.com\nC2,Globex, Inc,globex.com\n", 3,
         "4 cells but the header has 3 columns"),
        ("no_id_column.csv", "id,name\nC1,Acme\n", 1, "no source_id column"),
        ("other_domain.csv", "source_id,first_name,last_name\nR1,Ada,Lovelace\n", 1,
         "none of the columns (source_id, first_name, last_name) is a field of customer"),
        ("duplicate_column.csv", "source_id,name,name\nC1,Acme,Acme\n", 1, "column(s) named more than once: name"),
        ("empty.csv", "", 1, "the file is empty"),
    ],
)  # fmt: skip
def test_structural_error_names_file_and_line_and_nothing_is_written(tmp_path, name, text, line, message):
    path = write(tmp_path, name, text)
    before = written()

    with pytest.raises(CommandError) as excinfo:
        run("--system", "crm", "--domain", "customer", str(path))

    text = str(excinfo.value)
    assert f"{path}:{line}: {message}" in text
    assert "nothing was ingested" in text
    assert written() == before == (0, 0, 0, before[3])


def test_every_problem_is_reported_up_to_twenty_then_a_count(tmp_path):
    rows = "".join(f"C{i},not-a-time,Name {i}\n" for i in range(1, 31))
    path = write(tmp_path, "many.csv", "source_id,updated_at,name\n" + rows)

    with pytest.raises(CommandError) as excinfo:
        run("--system", "crm", "--domain", "customer", str(path))

    text = str(excinfo.value)
    assert "30 structural problem(s)" in text
    assert f"{path}:2: updated_at" in text and f"{path}:21: updated_at" in text
    assert f"{path}:22:" not in text
    assert "… and 10 more problem(s)" in text
    assert SourceRecord.objects.count() == 0


def test_invalid_utf8_is_a_structural_error(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("source_id,name\nC1,Acme\nC2,Société Générale\n".encode("latin-1"))

    with pytest.raises(CommandError, match=r"latin1\.csv:3: not UTF-8 text"):
        run("--system", "crm", "--domain", "customer", str(path))
    assert SourceRecord.objects.count() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--system", "sap", "--domain", "customer"], "unknown system 'sap'; known systems: crm, erp, hr, psa"),
        (["--system", "crm", "--domain", "account"], "unknown domain 'account'; expected one of legal_entity"),
        (["--system", "crm", "--domain", "customer", "--format", "csv", "/nonexistent/x.csv"], "cannot read the file"),
    ],
)
def test_unknown_system_domain_or_unreadable_file_is_refused(tmp_path, args, message):
    if not args[-1].startswith("/"):
        args = [*args, str(write(tmp_path, "customers.csv", CUSTOMERS_CSV))]
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert SourceRecord.objects.count() == 0


def test_format_comes_from_the_extension_or_the_option(tmp_path):
    path = write(tmp_path, "export.txt", jsonl({"source_id": "A1", "attributes": {"name": "Acme"}}))
    with pytest.raises(CommandError, match="cannot tell the format from the extension '.txt'"):
        run("--system", "crm", "--domain", "customer", str(path))

    out, _ = run("--system", "crm", "--domain", "customer", "--format", "jsonl", str(path))
    assert "created 1" in out

    ndjson = write(tmp_path, "export.ndjson", jsonl({"source_id": "A2", "attributes": {"name": "Globex"}}))
    assert "created 1" in run("--system", "crm", "--domain", "customer", str(ndjson))[0]

    gz = tmp_path / "export.csv.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        fh.write("source_id,name\nC9,Hooli\n")
    assert "created 1" in run("--system", "crm", "--domain", "customer", str(gz))[0]


def test_unknown_columns_are_ignored_with_one_warning_naming_them(tmp_path):
    path = write(
        tmp_path,
        "accounts.csv",
        "source_id,name,AnnualRevenue,OwnerId,website\nC1,Acme,1000000,005X,acme.com\nC2,Globex,2000,005Y,globex.com\n",
    )

    out, err = run("--system", "crm", "--domain", "customer", str(path))

    assert "created 2" in out
    warnings = [line for line in err.splitlines() if "ignoring" in line]
    assert warnings == [f"{path}: ignoring column(s) that are not customer fields: AnnualRevenue, OwnerId"]
    assert SourceRecord.objects.get(source_id="C1").attributes == {"name": "Acme", "website": "acme.com"}


def test_unknown_jsonl_attributes_are_ignored_with_one_warning(tmp_path):
    path = write(
        tmp_path,
        "accounts.jsonl",
        jsonl(
            {"source_id": "A1", "attributes": {"name": "Acme", "Rating": "Hot"}},
            {"source_id": "A2", "attributes": {"name": "Globex", "Rating": "Cold", "Tier": 2}},
        ),
    )

    out, err = run("--system", "crm", "--domain", "customer", str(path))

    assert "created 2" in out
    assert err.count("ignoring") == 1
    assert "ignoring column(s) that are not customer fields: Rating, Tier" in err
    assert SourceRecord.objects.get(source_id="A2").attributes == {"name": "Globex"}


def test_record_level_data_problems_become_counted_exceptions_not_structural_errors(tmp_path):
    path = write(
        tmp_path,
        "customers.csv",
        "source_id,name,country\nC1,Acme,NL\nC2,Globex,UK\nC3,,DE\n",
    )

    out, _ = run("--system", "crm", "--domain", "customer", str(path))

    assert "created 1, linked 0, updated 0, unchanged 0, stale 0, deleted 0, exception 2, held 0" in out
    assert "/admin/canonical/dataexception/?status__exact=open&system__code__exact=crm&domain__exact=customer" in out
    assert "C2: exception: country: 'UK' is not an ISO 3166-1 alpha-2 country code" in out
    open_kinds = dict(
        DataException.objects.filter(status=ExceptionStatus.OPEN).values_list("source_record__source_id", "kind")
    )
    assert open_kinds == {"C2": "validation", "C3": "incomplete"}
    assert SourceRecord.objects.get(source_id="C2").status == SourceStatus.INVALID


def test_list_cells_json_cells_and_reference_columns(tmp_path):
    run("--system", "crm", "--domain", "customer", str(write(tmp_path, "customers.csv", CUSTOMERS_CSV)))
    resources = write(
        tmp_path,
        "resources.csv",
        "source_id,first_name,last_name,email,skills\nR1,Ada,Lovelace,ada@example.com,Python; SAP FI;Power BI\n",
    )
    cards = write(
        tmp_path,
        "rate_cards.csv",
        "source_id,code,currency,customer,lines\n"
        'RC1,ACME-2024,EUR,C1,"[{""role"": ""Consultant"", ""unit"": ""hour"", ""rate"": ""120""}]"\n',
    )
    contracts = write(tmp_path, "contracts.csv", "source_id,contract_number,customer\nK1,HR-2024-0001,C3\n")

    run("--system", "psa", "--domain", "resource", str(resources))
    run("--system", "crm", "--domain", "rate_card", str(cards))
    run("--system", "crm", "--domain", "contract", str(contracts))

    assert Resource.objects.get().skills == ["Python", "SAP FI", "Power BI"]
    card = RateCard.objects.get()
    assert card.lines == [{"role": "Consultant", "grade": None, "unit": "hour", "rate": "120.00"}]
    assert card.customer.name == "Acme"
    assert Contract.objects.get().customer.name == "Initech, Inc."


def test_small_batches_give_the_same_result_as_one(tmp_path):
    path = write(tmp_path, "customers.csv", CUSTOMERS_CSV)
    out, _ = run("--system", "crm", "--domain", "customer", "--batch-size", "2", str(path))
    assert "5 record(s)" in out and "created 5" in out


def test_progress_bar_goes_to_stderr_unless_turned_off(tmp_path, capsys):
    path = write(tmp_path, "customers.csv", CUSTOMERS_CSV)
    call_command("ingest", "--system", "crm", "--domain", "customer", str(path), stdout=StringIO())
    assert "ingesting customers.csv" in capsys.readouterr().err

    call_command("ingest", "--system", "crm", "--domain", "customer", "--no-progress", str(path), stdout=StringIO())
    assert "ingesting" not in capsys.readouterr().err


@pytest.mark.django_db
def test_an_interrupt_says_what_was_committed_and_that_running_again_is_safe(tmp_path):
    """Ctrl-C mid-file (KeyboardInterrupt, raised here when the 25th record has been matched): the batch in progress
    rolls back, the ones before it stay; the message says so instead of a traceback, and running again finishes."""
    from canonical.matching.signals import match_decided
    from canonical.models import SourceRecord

    path = tmp_path / "accounts.csv"
    path.write_text("source_id,name,country\n" + "".join(f"A{i},Firm {i},GB\n" for i in range(40)), encoding="utf-8")
    seen = [0]

    def interrupt(sender, **kwargs):
        seen[0] += 1
        if seen[0] == 25:
            raise KeyboardInterrupt

    match_decided.connect(interrupt)
    try:
        with pytest.raises(CommandError) as excinfo:
            call_command("ingest", "--system", "crm", "--domain", "customer", "--batch-size", "10", "--no-progress",
                         str(path), stdout=StringIO(), stderr=StringIO())  # fmt: skip
    finally:
        match_decided.disconnect(interrupt)

    message = str(excinfo.value)
    assert message.startswith("interrupted: the batches before the one in progress were committed (about ")
    assert "of 40 records" in message and "Run the command again" in message
    assert SourceRecord.objects.count() == 20  # two batches of 10; the third rolled back

    out = StringIO()
    call_command("ingest", "--system", "crm", "--domain", "customer", "--no-progress", str(path), stdout=out)
    assert "created 20" in out.getvalue() and "unchanged 20" in out.getvalue()
    assert SourceRecord.objects.count() == 40


@pytest.mark.django_db
@pytest.mark.parametrize("bulk", [False, True])
def test_a_rerun_says_which_unchanged_records_are_still_exceptions(tmp_path, bulk):
    """The same file again: its invalid records come back "unchanged", not "exception", and the summary says they
    are still in the exception queue rather than letting "exception 0" read as resolved."""
    path = tmp_path / "accounts.csv"
    path.write_text("source_id,name,country\nA1,Acme,GB\nA2,Beta,XX\nA3,Gamma,ZZ\n", encoding="utf-8")
    args = ["--system", "crm", "--domain", "customer", *(["--bulk"] if bulk else []), str(path)]
    first, _ = run(*args)
    assert "exception 2" in first

    again, _ = run(*args)

    assert "unchanged 3" in again and "exception 0" in again
    assert "2 record(s) came again unchanged and are still data-quality exceptions or held" in again
    assert "/admin/canonical/dataexception/?status__exact=open" in again


MIXED_CSV = "source_id,updated_at,name,website,unknown_column\n" + "".join(
    f"K{i},2024-05-01T10:00:00Z,Firm {i},firm{i}.example.com,x\n" + ("\n" if i % 3 == 0 else "") for i in range(10)
)
MIXED_JSONL = "".join(
    json.dumps({"source_id": f"K{i}", "updated_at": "2024-05-01T10:00:00Z", "attributes": {"name": f"F {i}", "x": 1}})
    + "\n"
    + ("\n" * (i % 2))
    for i in range(10)
)


@pytest.mark.parametrize(("name", "text"), [("mixed.csv", MIXED_CSV), ("mixed.jsonl", MIXED_JSONL)])
@pytest.mark.parametrize("keep", [0, 1, 4, 10, 25])
def test_a_check_keeps_the_first_records_and_a_read_skips_them(tmp_path, name, text, keep):
    """What the check pass keeps (`keep`) is the first records' envelopes, and a read that skips as many gives the
    rest: together, every record once, in order, as one read gives them (blank lines and ignored columns too)."""
    from canonical.services.files import source_file_check, source_file_records

    path = write(tmp_path, name, text)
    whole = [r.envelope for r in source_file_records(path=path, domain="customer")]
    assert len(whole) == 10
    check = source_file_check(path=path, domain="customer", keep=keep)
    assert check.ok and check.records == 10
    assert check.head == whole[:keep]
    rest = [r.envelope for r in source_file_records(path=path, domain="customer", skip=len(check.head))]
    assert check.head + rest == whole


@pytest.mark.parametrize("batch_size", ["2", "3", "5", "50"])
def test_bulk_batches_from_the_checks_head_give_the_same_result(tmp_path, batch_size):
    """`--bulk` takes its first batch from the check pass and reads the file from after it: the same outcome
    (counts, every source record once) whatever the batch size, and a second run is all unchanged."""
    path = write(tmp_path, "customers.csv", CUSTOMERS_CSV)
    out, _ = run("--system", "crm", "--domain", "customer", "--bulk", "--batch-size", batch_size, str(path))
    assert "5 record(s)" in out and "created 5" in out
    assert sorted(SourceRecord.objects.values_list("source_id", flat=True)) == ["C1", "C2", "C3", "C4", "C5"]
    out, _ = run("--system", "crm", "--domain", "customer", "--bulk", "--batch-size", batch_size, str(path))
    assert "unchanged 5" in out


UNDATED_CSV = "source_id,name,website\n" + "".join(f"U{i},Firm {i},firm{i}.example.com\n" for i in range(6))


@pytest.mark.parametrize(
    "text",
    [
        UNDATED_CSV,  # no updated_at column at all
        MIXED_CSV.replace("K2,2024-05-01T10:00:00Z,", "K2,,", 1),  # one record among the first without it
    ],
)
def test_a_check_keeps_nothing_when_a_record_it_would_keep_gave_no_updated_at(tmp_path, text):
    """Such a record's updated_at is the time it is read: it is read again when it is ingested, not kept from the
    check (whose time is earlier), so the whole first batch is read again."""
    from canonical.services.files import source_file_check

    path = write(tmp_path, "undated.csv", text)
    check = source_file_check(path=path, domain="customer", keep=5)
    assert check.ok and check.records >= 6
    assert check.head == []


def test_a_file_changed_after_its_check_is_read_again_from_its_start(tmp_path):
    """The first batch the check kept is the checked file's: a file written to since is read again whole, so the
    records ingested are the file's as it is now (none of the old, none of the new skipped)."""
    from canonical.services.files import source_file_check, source_file_ingest

    path = write(tmp_path, "customers.csv", CUSTOMERS_CSV)
    check = source_file_check(path=path, domain="customer", keep=3)
    assert len(check.head) == 3
    newer = CUSTOMERS_CSV.replace("C1,", "N1,").replace("C2,", "N2,") + (
        "C6,2024-05-01T10:00:00Z,Wayne,wayne.example.com,Steel,US\n"
    )
    path.write_text(newer, encoding="utf-8")
    with audit_context(actor="pytest", channel=Channel.JOB):
        summary = source_file_ingest(path=path, system="crm", domain="customer", check=check, bulk=True, batch_size=3)
    assert summary.records == 6 and check.head == []
    assert sorted(SourceRecord.objects.values_list("source_id", flat=True)) == ["C3", "C4", "C5", "C6", "N1", "N2"]
