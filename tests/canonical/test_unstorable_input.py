"""What cannot be stored is refused where it comes in, by every channel, with a message naming the field (or the
file line) and nothing written: NUL characters, unpaired surrogates, NaN and Infinity, numbers of hundreds of
digits, absurd nesting, an `updated_at` past the year 9999 in UTC, text too long for its column before a
validator chokes on it. Before, each of these reached the database (a 500, a traceback, or a partial load)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from canonical.domains import get_domain
from canonical.models import ChangeEvent, Customer, DataException, SourceRecord
from canonical.services.ingest import EnvelopeError, envelope_parse
from canonical.validation import validate_attributes
from connectors.base import envelopes_parse

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER = get_domain("customer")


def refused(payload: dict, spec=CUSTOMER) -> dict[str, list[str]]:
    with pytest.raises(EnvelopeError) as excinfo:
        envelope_parse(payload, spec=spec)
    return excinfo.value.errors


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"source_id": "C\x001", "attributes": {"name": "Acme"}}, "source_id", "holds a NUL character"),
        ({"source_id": "C1", "attributes": {"name": "Ac\x00me"}}, "attributes", "name: holds a NUL character"),
        ({"source_id": "C1", "attributes": {"name": "Ac\ud800me"}}, "attributes", "name: holds an unpaired surrogate"),
        ({"source_id": "C\udfff", "attributes": {"name": "Acme"}}, "source_id", "holds an unpaired surrogate"),
        ({"source_id": "C1", "attributes": {"name": float("nan")}}, "attributes", "name: holds NaN or Infinity"),
        ({"source_id": "C1", "attributes": {"phone": float("-inf")}}, "attributes", "phone: holds NaN or Infinity"),
        ({"source_id": "C1", "attributes": {"name": 10**100}}, "attributes", "name: holds a number of more than 100"),
        ({"source_id": "C1", "updated_at": "9999-12-31T23:00:00-12:00", "attributes": {"name": "Acme"}},
         "updated_at", "between the years 1 and 9999 (in UTC)"),
        ({"source_id": "C1", "updated_at": "0001-01-01T00:00:00+01:00", "attributes": {"name": "Acme"}},
         "updated_at", "between the years 1 and 9999 (in UTC)"),
    ],
)  # fmt: skip
def test_an_envelope_holding_what_cannot_be_stored_is_refused_naming_the_field(payload, field, message):
    errors = refused(payload)

    assert list(errors) == [field]
    assert any(message in text for text in errors[field]), errors


def test_the_path_inside_a_nested_value_is_named_and_deep_nesting_is_refused():
    rate_card = get_domain("rate_card")
    lines = [{"role": "Consultant", "rate": "100"}, {"role": "Partner", "rate": "2\x0000"}]

    errors = refused({"source_id": "R1", "attributes": {"name": "Std", "lines": lines}}, spec=rate_card)
    assert errors == {"attributes": ["lines[1].rate: holds a NUL character (\\u0000), which cannot be stored; "
                                     "remove it at the source"]}  # fmt: skip

    errors = refused({"source_id": "R1", "attributes": {"name": "Std", "lines": [{"ro\x00le": "x"}]}}, spec=rate_card)
    assert errors["attributes"][0].startswith("lines[0]: has a key that holds a NUL character")

    deep: list = []
    for _ in range(40):
        deep = [deep]
    errors = refused({"source_id": "R1", "attributes": {"name": "Std", "lines": deep}}, spec=rate_card)
    assert "nests deeper than 16 levels" in errors["attributes"][0]


def test_what_can_be_stored_still_goes_through():
    envelope = envelope_parse(
        {
            "source_id": "Ç-1 ☃",
            "updated_at": "9999-12-31T10:00:00+09:00",
            "attributes": {"name": "Société Générale 😀", "phone": 10**99},
        },
        spec=CUSTOMER,
    )

    assert envelope.source_id == "Ç-1 ☃"
    assert envelope.attributes == {"name": "Société Générale 😀", "phone": 10**99}


def test_a_connector_row_holding_a_nul_is_an_error_naming_it_and_the_other_rows_go_on():
    ok = {"source_id": "A1", "attributes": {"name": "Acme"}}
    bad = {"source_id": "A2", "attributes": {"name": "Nul\x00Corp"}}

    envelopes, errors = envelopes_parse("customer", [("Account A1", ok), ("Account A2", bad)])

    assert [e.source_id for e in envelopes] == ["A1"]
    assert errors == ["Account A2: attributes: name: holds a NUL character (\\u0000), which cannot be stored; "
                      "remove it at the source"]  # fmt: skip


# --- validation: text too long for its column is refused before a validator parses it -------------------------


def test_a_tax_id_of_thousands_of_digits_is_a_field_error_not_a_crash():
    values, errors = validate_attributes(
        get_domain("legal_entity"), {"name": "X", "country": "BE", "tax_id": "1" * 5000}, system="erp"
    )

    assert errors == {"tax_id": ["longer than 64 characters"]}
    assert "tax_id" not in values


def test_rate_card_lines_nested_past_the_parsers_limit_are_a_field_error():
    _, errors = validate_attributes(
        get_domain("rate_card"), {"name": "X", "currency": "EUR", "lines": "[" * 5000}, system="erp"
    )

    assert errors == {"lines": ["expected a JSON list of {role, grade, unit, rate}"]}


def test_a_web_address_that_outgrows_its_column_once_written_with_its_scheme_is_refused():
    labels = ".".join(["a" * 61] * 4)  # 247 characters: fits 255 as sent, not with "https://" in front
    _, errors = validate_attributes(CUSTOMER, {"name": "X", "website": f"{labels}.com"}, system="crm")

    assert errors == {"website": ["longer than 255 characters as stored (259)"]}


# --- the same, end to end, on the database ------------------------------------------------------------------


def written() -> tuple[int, ...]:
    return (
        SourceRecord.objects.count(),
        Customer.objects.count(),
        ChangeEvent.objects.count(),
        DataException.objects.count(),
    )


def ingest_file(path: Path | str, *args: str) -> str:
    out = StringIO()
    call_command("ingest", "--system", "crm", "--domain", "customer", "--no-progress", *args, str(path), stdout=out,
                 stderr=StringIO())  # fmt: skip
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("bulk", [False, True])
def test_a_file_with_a_nul_on_a_later_line_is_refused_whole_even_in_batches_of_one(tmp_path, bulk):
    path = tmp_path / "accounts.csv"
    path.write_text("source_id,name,country\np1,One,GB\np2,Two,DE\np3,Bad\x00Name,GB\np4,Four,FR\n", encoding="utf-8")

    with pytest.raises(CommandError) as excinfo:
        ingest_file(path, "--batch-size", "1", *(["--bulk"] if bulk else []))

    assert f"{path}:4: attributes: name: holds a NUL character" in str(excinfo.value)
    assert written() == (0, 0, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"source_id": "n1", "attributes": {"name": NaN}}', "attributes: name: holds NaN or Infinity"),
        ('{"source_id": "n1", "attributes": {"name": "Ac\\ud800me"}}', "attributes: name: holds an unpaired surrogate"),
        ('{"source_id": "n1", "updated_at": "9999-12-31T23:00:00-12:00", "attributes": {"name": "A"}}',
         "updated_at: '9999-12-31T23:00:00-12:00' is not an ISO 8601 date-time between the years 1 and 9999"),
        ('{"source_id": ' + "9" * 5000 + ', "attributes": {"name": "A"}}',
         "invalid JSON: a number of more than 4,300 digits"),
    ],
)  # fmt: skip
def test_jsonl_lines_that_cannot_be_stored_name_their_line_and_nothing_is_written(tmp_path, line, message):
    path = tmp_path / "accounts.jsonl"
    good = json.dumps({"source_id": "g1", "attributes": {"name": "Good"}})
    path.write_text(f"{good}\n{line}\n", encoding="utf-8")

    with pytest.raises(CommandError) as excinfo:
        ingest_file(path, "--batch-size", "1")

    assert f"{path}:2: {message}" in str(excinfo.value)
    assert written() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_a_corrupt_gzip_file_is_a_clear_error(tmp_path):
    rows = "".join(f"C{i},Company {i} with a long enough name,GB\n" for i in range(2000))
    packed = bytearray(gzip.compress(("source_id,name,country\n" + rows).encode()))
    middle = len(packed) // 2
    packed[middle : middle + 5] = bytes(b ^ 0xFF for b in packed[middle : middle + 5])
    path = tmp_path / "accounts.csv.gz"
    path.write_bytes(bytes(packed))

    with pytest.raises(CommandError, match=r"cannot read the file: .*is it a whole, uncorrupted gzip file"):
        ingest_file(path)
    assert written() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_lines_ended_by_a_bare_carriage_return_get_advice_not_the_csv_modules_words(tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_bytes(b"source_id,name,country\rA1,Acme,GB\rA2,Beta,DE\r")

    with pytest.raises(CommandError) as excinfo:
        ingest_file(path)

    text = str(excinfo.value)
    assert "lines end with a bare carriage return (CR); save the file with LF or CRLF line ends" in text
    assert "universal-newline" not in text
    assert written() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_a_carriage_return_inside_one_value_is_named_as_such_not_as_the_file_s_line_ends(tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_bytes(b"source_id,name,country\nA1,Acme,GB\nA2,Be\rta,DE\nA3,Gamma,FR\n")

    with pytest.raises(CommandError) as excinfo:
        ingest_file(path)

    text = str(excinfo.value)
    assert f"{path}:3: unreadable CSV row: a carriage return (CR) inside an unquoted value" in text
    assert "line ends" not in text
    assert written() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_control_characters_in_column_names_and_source_ids_are_printed_escaped(tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_text("source_id,na\x1b[31mme,web\x00site\nA1,Acme,x\n", encoding="utf-8")
    with pytest.raises(CommandError) as excinfo:
        ingest_file(path)
    assert "none of the columns (source_id, na\\x1b[31mme, web\\x00site)" in str(excinfo.value)
    assert "\x1b" not in str(excinfo.value)

    path.write_text("source_id,name,country,no\x07te\nA1,Acme,XX,1\nB\x1b2,Beta,YY,2\n", encoding="utf-8")
    err = StringIO()
    out = StringIO()
    call_command("ingest", "--system", "crm", "--domain", "customer", "--no-progress", str(path), stdout=out,
                 stderr=err)  # fmt: skip
    assert "ignoring column(s) that are not customer fields: no\\x07te" in err.getvalue()
    assert "    B\\x1b2: exception: country:" in out.getvalue()
    assert "\x1b" not in out.getvalue() and "\x07" not in err.getvalue()


@pytest.mark.django_db
def test_an_empty_file_argument_is_named_as_such(tmp_path):
    with pytest.raises(CommandError, match="the file path is empty"):
        ingest_file("")  # str(Path("")) would be "."


def test_dev_demo_refuses_a_bad_port_before_setting_anything_up():
    done = subprocess.run(
        [sys.executable, "dev.py", "demo", "--port", "abc"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 2
    assert "argument --port: 'abc' is not a port number" in done.stderr
    assert "preparing the database" not in done.stdout + done.stderr


@pytest.mark.django_db
def test_run_records_quoting_refused_input_still_save_with_what_it_held_written_out():
    # a run's errors quote what was refused (a NUL in updated_at, a remote system's error body): saving them
    # raised, and the run stayed "running"
    from connectors.models import ProcessedFile, SyncRun

    with pytest.raises(EnvelopeError) as refused:
        envelope_parse({"source_id": "C1", "updated_at": "2026-01-01\x00", "attributes": {"name": "A"}}, spec=CUSTOMER)
    message = str(refused.value)
    assert "\x00" not in message and "'2026-01-01\\x00' is not an ISO 8601 date-time" in message

    run = SyncRun.objects.create(system_id="crm", direction="pull", errors=["row 1: bad \x00 value", "A\ud800"])
    file = ProcessedFile.objects.create(system_id="crm", domain="customer", name="x.csv", sha256="0" * 64,
                                        errors=["x.csv:2: na\x00me"])  # fmt: skip

    run.refresh_from_db()
    file.refresh_from_db()
    assert run.errors == ["row 1: bad \\x00 value", "A\\ud800"]
    assert file.errors == ["x.csv:2: na\\x00me"]


@pytest.mark.django_db
@pytest.mark.parametrize("bulk", [False, True])
def test_a_quote_left_open_is_refused_naming_its_row_not_swallowing_the_rows_after_it(tmp_path, bulk):
    path = tmp_path / "accounts.csv"
    path.write_text('source_id,country,name\nq1,DE,"Acme\nq2,DE,Foo\nq3,FR,Bar\n', encoding="utf-8")

    with pytest.raises(CommandError) as excinfo:
        ingest_file(path, *(["--bulk"] if bulk else []))

    text = str(excinfo.value)
    assert f"{path}:2:" in text and "a quoted value that starts in this row is never closed" in text
    assert written() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_a_quoted_value_followed_by_more_text_is_refused_with_advice(tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_text('source_id,country,name\nq1,DE,"Acme" Ltd\nq2,DE,Foo\n', encoding="utf-8")

    with pytest.raises(CommandError) as excinfo:
        ingest_file(path)

    assert 'write "" for a quote inside a quoted value' in str(excinfo.value)
    assert written() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_a_named_pipe_is_refused_up_front_not_read_twice_or_waited_on(tmp_path):
    import os

    path = tmp_path / "accounts.csv"
    os.mkfifo(path)  # nothing writes to it: opening it would wait for ever

    with pytest.raises(CommandError) as excinfo:
        ingest_file(path)

    assert "not a regular file (a pipe or a device)" in str(excinfo.value) and "save it to a file" in str(excinfo.value)
    assert written() == (0, 0, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "text"), [("accounts.csv", ""), ("accounts.jsonl", ""), ("accounts.jsonl", "\n \n")])
def test_an_empty_file_is_refused_the_same_whatever_its_format(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")

    with pytest.raises(CommandError, match=r":1: the file is empty"):
        ingest_file(path)
    assert written() == (0, 0, 0, 0)
