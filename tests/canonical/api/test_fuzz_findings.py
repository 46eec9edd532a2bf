"""What an API fuzz sweep (schemathesis plus hand-made requests) answered with a 500: each is now a JSON 4xx, or
a normal answer where the input was fine after all, and changes nothing it should not."""

from __future__ import annotations

import json

import pytest

from canonical.models import Customer, DataException, SourceRecord

from .conftest import ingest, rec

pytestmark = pytest.mark.django_db


def error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"detail", "errors"}, body
    return body


@pytest.mark.parametrize("offset", ["+16:00", "-16:00", "+23:59"])
def test_utc_offsets_postgresql_does_not_take_are_read_as_the_instant_they_name(root, offset):
    (made,) = ingest("crm", "customer", rec("C1", 0, name="Acme"))
    when = f"2030-01-01T00:00:00{offset}"

    listed = root.get("/api/v1/customers/", {"updated_before": when})
    assert listed.status_code == 200 and [r["id"] for r in listed.json()["results"]] == [made.golden_id]
    assert root.get("/api/v1/customers/", {"updated_after": when}).json()["results"] == []
    past = root.get(f"/api/v1/customers/{made.golden_id}/", {"as_of": when})
    assert past.status_code == 200 and past.json()["name"] == "Acme"
    assert past.json()["as_of"].endswith("Z") and past["Content-Location"].endswith(f"?as_of={past.json()['as_of']}")
    for queue in ("exceptions", "review-tasks"):
        assert root.get(f"/api/v1/{queue}/", {"created_after": when}).status_code == 200

    ingested = root.post(
        "/api/v1/ingest/crm/customer/",
        {"source_id": "C2", "updated_at": f"2024-01-01T00:00:00{offset}", "attributes": {"name": "Globex"}},
        format="json",
    )
    assert ingested.status_code == 200 and ingested.json()["results"][0]["outcome"] == "created"


def test_a_time_past_the_year_9999_in_utc_is_a_field_error(root):
    (made,) = ingest("crm", "customer", rec("C1", 0, name="Acme"))

    body = error(root.get("/api/v1/customers/", {"updated_after": "9999-12-31T23:59:59-01:00"}), 400)
    assert "between the years 1 and 9999" in body["errors"]["updated_after"][0]
    body = error(root.get(f"/api/v1/customers/{made.golden_id}/", {"as_of": "0001-01-01T00:00:00+01:00"}), 400)
    assert "before the year 1 or after 9999 in UTC" in body["errors"]["as_of"][0]
    body = error(root.get("/api/v1/exceptions/", {"created_before": "9999-12-31T23:59:59-01:00"}), 400)
    assert body["errors"]["created_before"]


def test_a_body_bigger_than_djangos_default_cap_is_read(root):
    # 3 MiB: over Django's default 2.5 MiB (a 500 from inside DRF before), under the API's 20 MiB
    body = {"source_id": "big", "attributes": {"name": "x" * (3 * 1024 * 1024)}}

    response = root.post("/api/v1/ingest/crm/customer/", body, format="json")

    assert response.status_code == 200, response.content[:300]
    (result,) = response.json()["results"]
    assert result["outcome"] == "exception" and result["errors"] == {"name": ["longer than 255 characters"]}


def test_a_body_over_the_cap_is_a_413_in_json(root, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = root.post("/api/v1/ingest/crm/customer/", {"source_id": "b", "attributes": {"name": "x" * 5000}},
                         format="json")  # fmt: skip

    assert "larger than 1000 bytes" in error(response, 413)["detail"]
    assert SourceRecord.objects.count() == 0


DEEP = b"[" * 100_000 + b"]" * 100_000


def test_json_nested_too_deeply_is_a_400_on_every_endpoint_that_reads_a_body(root):
    (made,) = ingest("crm", "customer", rec("C1", 0, name="Acme"))
    for url in (
        "/api/v1/customers/explain/",
        f"/api/v1/customers/{made.golden_id}/merge/",
        f"/api/v1/customers/{made.golden_id}/unmerge/",
        "/api/v1/review-tasks/bulk-accept/",
    ):
        body = error(root.post(url, DEEP, content_type="application/json"), 400)
        assert "nested too deeply" in body["detail"], url


@pytest.mark.parametrize("field", ["registration_number", "tax_id", "name"])
def test_a_nul_in_a_search_before_create_parameter_is_a_field_error(root, field):
    body = error(root.get("/api/v1/legal-entities/match/", {field: "ab\x00cd", "country": "NL"}), 400)

    assert "holds a NUL character" in body["errors"][field][0]


def test_a_nul_or_lone_surrogate_escaped_inside_rate_card_lines_text_is_a_data_quality_exception(root):
    lines = [json.dumps([{"role": "Partner\u0000", "rate": "1"}]), '[{"role": "Partner\\ud800", "rate": "1"}]']
    records = [
        {"source_id": f"R{i}", "attributes": {"name": "Standard", "currency": "EUR", "lines": text}}
        for i, text in enumerate(lines)
    ]

    response = root.post("/api/v1/ingest/crm/rate_card/", records, format="json")

    assert response.status_code == 200, response.content[:300]
    first, second = response.json()["results"]
    assert first["outcome"] == second["outcome"] == "exception"
    assert "[0].role: holds a NUL character" in first["errors"]["lines"][0]
    assert "[0].role: holds an unpaired surrogate" in second["errors"]["lines"][0]
    assert DataException.objects.count() == 2


@pytest.mark.parametrize("charset", ["zlib", "bz2", "rot13"])
def test_a_charset_that_is_not_a_text_encoding_is_refused(root, charset):
    import zlib

    raw = zlib.compress(json.dumps({"source_id": "z", "attributes": {"name": "Zed"}}).encode())

    response = root.post("/api/v1/ingest/crm/customer/", raw, content_type=f"application/json; charset={charset}")

    assert 400 <= response.status_code < 500, response.status_code
    assert set(response.json()) == {"detail", "errors"}
    assert Customer.objects.count() == 0


def test_a_nul_in_a_form_encoded_body_or_a_query_string_is_a_json_400(root):
    (a,) = ingest("crm", "customer", rec("C1", 0, name="Acme"))
    (b,) = ingest("erp", "customer", rec("E1", 0, name="Globex"))

    body = error(
        root.post(f"/api/v1/customers/{a.golden_id}/merge/", {"others": b.golden_id, "reason": "same\x00"}), 400
    )  # APIClient's default: multipart
    assert body["errors"] == {"reason": ["holds a NUL character (\\u0000), which cannot be stored; remove it"]}
    assert Customer.objects.filter(status="active").count() == 2
    body = error(root.get("/api/v1/customers/", {"sys\x00tem": "crm"}), 400)
    assert list(body["errors"]) == ["(a field name)"]


def test_a_merge_choosing_rate_card_lines_that_decode_to_a_nul_is_a_field_error(root):
    from stewardship.models import MergeDecision

    cards = [
        ingest(system, "rate_card", rec(sid, 0, name="Std", code=f"RC-{sid}", currency="EUR"))[0].golden_id
        for system, sid in (("crm", "R1"), ("erp", "R2"))
    ]
    lines = json.dumps([{"role": "Partner\u0000", "rate": "100"}])

    response = root.post(f"/api/v1/rate-cards/{cards[0]}/merge/",
                         {"others": [cards[1]], "reason": "same card", "field_choices": {"lines": lines}},
                         format="json")  # fmt: skip

    body = error(response, 400)
    assert "holds a NUL character" in json.dumps(body["errors"])
    assert not MergeDecision.objects.exists()


def test_a_steward_override_holding_a_nul_is_refused():
    from stewardship.services.overrides import OverrideError, field_override_set

    (made,) = ingest("crm", "customer", rec("C1", 0, name="Acme"))

    with pytest.raises(OverrideError, match="holds a NUL character"):
        field_override_set(domain="customer", golden_id=made.golden_id, field="name", value="Acme\x00Corp",
                           reason="typo")  # fmt: skip
    assert Customer.objects.get().name == "Acme"


# --- the fuzz sweep of 29 Nov 2026: bodies Django parses as forms, ids past a bigint, an inactive system -----


def _multipart(fields: int, boundary: str = "X") -> bytes:
    parts = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nv\r\n' for i in range(fields))
    return f"{parts}--{boundary}--\r\n".encode()


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("multipart/form-data; boundary=X", _multipart(1001)),
        ("application/x-www-form-urlencoded", "&".join(f"a{i}=1" for i in range(1001)).encode()),
    ],
    ids=["multipart", "urlencoded"],
)
def test_a_form_of_more_fields_than_django_takes_is_a_400_naming_the_limit(root, content_type, body, caplog):
    for path in ("/api/v1/ingest/crm/customer/", "/api/v1/customers/explain/"):
        refused = error(root.generic("POST", path, body, content_type), 400)
        assert "more than 1000 fields" in refused["errors"]["form"][0]
    assert any(r.name == "django.security.TooManyFieldsSent" for r in caplog.records), "logged as Django logs it"
    assert not SourceRecord.objects.exists()


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("multipart/form-data; boundary=X; charset=zlib", _multipart(1)),  # a codec, but not a text encoding
        ("multipart/form-data", b"x"),  # no boundary
    ],
    ids=["zlib-charset", "no-boundary"],
)
def test_a_form_body_django_cannot_parse_is_a_json_400(root, content_type, body):
    refused = error(root.generic("POST", "/api/v1/ingest/crm/customer/", body, content_type), 400)
    assert "cannot be read" in refused["errors"]["form"][0]
    assert not SourceRecord.objects.exists()


def test_row_ids_past_a_bigint_are_not_found_or_a_field_error(make_api):
    steward = make_api("steward", "read:customer")
    big = 2**63
    for path in (f"/api/v1/exceptions/{big}/resolve/", f"/api/v1/review-tasks/{big}/defer/"):
        error(steward.post(path, {"note": "x", "reason": "x"}, format="json"), 404)
    error(steward.post(f"/api/v1/exceptions/{big - 1}/resolve/", {"note": "x"}, format="json"), 404)
    body = error(steward.post("/api/v1/review-tasks/bulk-accept/", {"tasks": [big], "reason": "x"}, format="json"), 400)
    assert "tasks" in body["errors"]


def test_a_feed_cursor_past_a_bigint_is_a_400(make_api):
    client = make_api("read:customer")
    body = error(client.get("/api/v1/changes", {"after": f"0.{2**63}"}), 400)
    assert "cursor" in body["detail"] or "after" in body["errors"]
    assert client.get("/api/v1/changes", {"after": f"0.{2**63 - 1}"}).status_code == 200


def test_ingest_as_an_inactive_system_is_a_403_saying_so(make_api):
    from canonical.models import System

    System.objects.filter(code="psa").update(is_active=False)
    psa = make_api("ingest", system="psa")
    body = error(psa.post("/api/v1/ingest/psa/project/", {"source_id": "x", "attributes": {}}, format="json"), 403)
    assert "inactive" in body["detail"]
    assert not SourceRecord.objects.exists()


def test_a_host_not_allowed_is_a_json_400_under_the_api(root, settings):
    settings.ALLOWED_HOSTS = ["hub.example"]
    answer = root.get("/api/v1/customers/", HTTP_HOST="evil.example")
    assert answer.status_code == 400 and answer["Content-Type"] == "application/json"
    assert answer.json()["errors"] == {}


def test_a_form_whose_content_length_is_not_a_number_is_a_400(root, caplog):
    body = b'--X\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--X--\r\n'
    answer = root.generic("POST", "/api/v1/ingest/crm/customer/", body, "multipart/form-data; boundary=X",
                          CONTENT_LENGTH="abc")  # fmt: skip
    refused = error(answer, 400)
    assert "Content-Length" in refused["errors"]["header"][0]
    assert any(r.name == "django.request" and r.levelname == "WARNING" for r in caplog.records), "the 400 is logged"
    assert not SourceRecord.objects.exists()
