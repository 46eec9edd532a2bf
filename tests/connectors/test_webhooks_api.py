"""POST /api/v1/webhooks/{system}/: signed pushes from systems, stored once, ingested through the pipeline."""

import json

import pytest
from rest_framework.test import APIClient

from canonical.models import Customer, SourceRecord
from connectors.models import InboundWebhook
from connectors.services.webhooks import webhook_process
from connectors.webhooks.client import signed_headers

SECRET = "shop-secret"


@pytest.fixture
def shop(db, audit):
    from canonical.models import System
    from connectors.services.connections import connection_configure

    System.objects.create(code="shop", name="Web shop", kind="webhook")
    connection_configure(system="shop", kind="webhook", base_url="http://127.0.0.1:9/unused", secret=SECRET)


def post(body, *, msg_id: str = "msg-1", secret: str = SECRET, replace: dict | None = None):
    """POST `body` signed with `secret`; `replace` swaps signed headers for others after signing."""
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
    signed = {**signed_headers(secret, msg_id, raw), **(replace or {})}
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed.items() if k != "Content-Type"}
    return APIClient().post("/api/v1/webhooks/shop/", raw, content_type="application/json", **headers)


def refused(answer, status: int) -> dict:
    """The answer is a refusal shaped like every API error: {"detail": "<sentence>", "errors": {...}}."""
    assert answer.status_code == status, (answer.status_code, answer.content[:500])
    body = answer.json()
    assert set(body) == {"detail", "errors"} and isinstance(body["errors"], dict), body
    assert isinstance(body["detail"], str) and body["detail"], body
    return body


BODY = {"domain": "customer", "records": [{"source_id": "S1", "updated_at": "2026-01-01T00:00:00Z",
                                           "attributes": {"name": "Acme", "website": "https://acme.example"}}]}  # fmt: skip


def test_a_signed_webhook_is_accepted_then_ingested_as_its_system(shop, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        answer = post(BODY)
    assert answer.status_code == 202 and answer.json()["status"] == "accepted"
    assert len(queued) == 1, "its ingest is queued once the receipt commits"
    webhook_process(webhook_pk=answer.json()["id"])  # what the queued task does (workers: see test_e2e_flows)
    webhook_process(webhook_pk=answer.json()["id"])  # a redelivered task changes nothing
    hook = InboundWebhook.objects.get()
    assert hook.status == "done" and hook.results[0]["outcome"] == "created"
    assert SourceRecord.objects.get().system_id == "shop"
    assert Customer.history.get().history_actor == "connector:shop"


def test_the_same_webhook_again_is_stored_once(shop):
    first = post(BODY)
    again = post(BODY)
    webhook_process(webhook_pk=first.json()["id"])
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["status"] == "duplicate"
    assert InboundWebhook.objects.count() == 1 and Customer.objects.count() == 1


def test_a_wrong_signature_is_401_and_nothing_is_stored(shop):
    assert "signature" in refused(post(BODY, secret="guess"), 401)["detail"]
    assert not InboundWebhook.objects.exists()


@pytest.mark.parametrize(
    "header, value",
    [
        ("webhook-timestamp", "9" * 400),  # overflowed float arithmetic before the signature was checked
        ("webhook-timestamp", "9" * 5000),
        ("webhook-timestamp", "soon"),
        ("webhook-signature", "v1,é"),  # compare_digest refuses non-ASCII str
        ("webhook-id", "msg-\ud800"),  # no UTF-8 form to sign
    ],
)
def test_unusable_signature_headers_are_a_401_naming_the_header_and_nothing_is_stored(shop, header, value):
    answer = refused(post(BODY, replace={header: value}), 401)
    assert list(answer["errors"]) == [header]
    assert not InboundWebhook.objects.exists()


@pytest.mark.parametrize("msg_id, problem", [("m" * 129, "longer than 128"), ("msg-\x00-1", "NUL")])
def test_a_signed_webhook_id_the_hub_cannot_store_is_a_400_naming_the_header(shop, msg_id, problem):
    answer = refused(post(BODY, msg_id=msg_id), 400)
    assert list(answer["errors"]) == ["webhook-id"] and problem in answer["errors"]["webhook-id"][0]
    assert answer["detail"].startswith("webhook-id: ")
    assert not InboundWebhook.objects.exists()


def test_a_webhook_id_of_128_characters_is_kept(shop):
    assert post(BODY, msg_id="m" * 128).status_code == 202
    assert InboundWebhook.objects.get().webhook_id == "m" * 128


def test_missing_signature_headers_are_a_401_naming_them(shop):
    answer = refused(APIClient().post("/api/v1/webhooks/shop/", BODY, format="json"), 401)
    assert sorted(answer["errors"]) == ["webhook-id", "webhook-signature", "webhook-timestamp"]


@pytest.mark.parametrize(
    "body, where",
    [
        ({"domain": "planet", "records": BODY["records"]}, "domain"),
        ({"domain": "customer", "records": []}, "records"),
        ({"domain": "customer", "records": [{"attributes": {"name": "x"}}]}, "source_id"),
        ({"domain": "customer", "records": [{"source_id": "S1", "attributes": {"colour": "red"}}]}, "colour"),
        (b"not json", "JSON"),
        (b"", "JSON object"),
        (b"null", "JSON object"),
        (b"[1, 2]", "JSON object"),
        (b'"a string"', "JSON object"),
    ],
)
def test_a_bad_body_is_a_400_with_field_messages_and_nothing_is_stored(shop, body, where):
    answer = refused(post(body), 400)
    assert where in json.dumps(answer)
    assert not InboundWebhook.objects.exists()


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"])
def test_a_body_that_is_not_a_json_object_says_what_is_expected_and_names_the_body(shop, body):
    answer = refused(post(body), 400)
    assert '"domain": "<domain>", "records"' in answer["detail"] and list(answer["errors"]) == ["body"]


def test_record_errors_are_under_their_index_with_a_sentence_in_detail(shop):
    good, bad = BODY["records"][0], {"source_id": "S2", "attributes": {"colour": "red"}}
    answer = refused(post({"domain": "customer", "records": [good, bad]}), 400)
    assert "records[1]" in answer["detail"] and "colour" in json.dumps(answer["errors"]["records"]["1"])
    assert not InboundWebhook.objects.exists()


def with_extra(raw: str) -> bytes:
    """BODY (valid) with `raw` JSON text spliced in after its records: `, "note": "..."`."""
    return json.dumps(BODY)[:-1].encode() + raw.encode("utf-8", "surrogatepass") + b"}"


@pytest.mark.parametrize(
    "body, message",
    [
        (with_extra(', "note": "a\\u0000b"'), "note: holds a NUL character"),
        (with_extra(', "n\\u0000te": 1'), "the body: has a key that holds a NUL character"),
        (with_extra(', "note": ["ok", {"deep": "\\ud800"}]'), "note[1].deep: holds an unpaired surrogate"),
        (with_extra(', "note": "\ud800"'), "note: holds an unpaired surrogate"),  # as raw UTF-8 bytes
        (with_extra(', "note": {"\\udfff": 1}'), "note: has a key that holds an unpaired surrogate"),
        (b'{"domain": "customer", "records": {"0": "\\u0000"}}', "records.0: holds a NUL"),  # not a list
        (with_extra(', "n": NaN'), "NaN is not a JSON number"),
        (with_extra(', "n": [Infinity]'), "Infinity is not a JSON number"),
        (with_extra(', "n": -Infinity'), "-Infinity is not a JSON number"),
        (with_extra(', "n": 1e999'), "1e999 is out of range"),
        (with_extra(', "n": -1e999'), "-1e999 is out of range"),
        (with_extra(', "n": ' + "1" * 5000), "5000 digits"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (with_extra(', "n": ' + "[" * 100_000 + "]" * 100_000), "nested too deeply"),
        (with_extra(', "n": ' + "[" * 900 + "]" * 900), "nests deeper than 32 levels"),
        (with_extra(', "n": ' + '{"a": ' * 40 + "1" + "}" * 40), "n.a.a.a"),
        (with_extra(', "n": ' + '{"a.b": [' * 20 + "1" + "]}" * 20), "n.a.b[0].a.b[0].a.b"),
    ],
)  # fmt: skip
def test_a_body_the_hub_cannot_store_is_a_400_naming_where_and_nothing_is_stored(shop, body, message):
    """Each was a DataError (jsonb refuses NUL, lone surrogates, NaN/Infinity) or a RecursionError: a 500."""
    answer = refused(post(body), 400)
    assert list(answer["errors"]) == ["body"] and message in answer["errors"]["body"][0], answer
    assert message in answer["detail"]
    assert not InboundWebhook.objects.exists()


@pytest.mark.parametrize(
    "record, field, message",
    [
        ('{"source_id": "S1", "attributes": {"name": "Ac\\u0000me"}}', "attributes", "name: holds a NUL character"),
        ('{"source_id": "S\\ud800"}', "source_id", "holds an unpaired surrogate"),
        ('{"source_id": "S1", "updated_at": "2026-01-01\\ud800"}', "updated_at", "holds an unpaired surrogate"),
        ('{"source_id": "S1", "\\ud800": 1}', "non_field_errors", "has a key that holds an unpaired surrogate"),
        ('{"source_id": "S1", "attributes": {"n\\u0000me": 1}}', "attributes", "has a key that holds a NUL"),
        ('"S\\u0000"', "non_field_errors", "holds a NUL character"),
    ],
)
def test_a_record_the_hub_cannot_store_is_a_field_error_under_its_index(shop, record, field, message):
    """Never quoted back: envelope_parse's messages quote unknown keys and bad dates, and an unpaired surrogate
    in the answer made encoding it fail (UnicodeEncodeError: a 500 after the view had answered 400)."""
    good = json.dumps(BODY["records"][0])
    answer = refused(post(f'{{"domain": "customer", "records": [{good}, {record}]}}'.encode()), 400)
    assert list(answer["errors"]) == ["records"] and list(answer["errors"]["records"]) == ["1"]
    assert answer["errors"]["records"]["1"] == {field: [answer["errors"]["records"]["1"][field][0]]}
    assert message in answer["errors"]["records"]["1"][field][0] and "records[1]" in answer["detail"]
    assert not InboundWebhook.objects.exists()


def test_a_body_nested_32_levels_deep_is_kept_and_33_is_refused(shop):
    """Records reach 4 levels to their attributes and envelope_parse lets those nest 16 more: 32 is ample."""
    assert post(with_extra(', "n": ' + "[" * 31 + "]" * 31)).status_code == 202  # the body, then 31 lists
    refused(post(with_extra(', "n": ' + "[" * 32 + "]" * 32), msg_id="msg-2"), 400)


@pytest.mark.parametrize("domain", [["customer"], {"customer": 1}, 7, None])
def test_a_domain_that_is_not_a_name_is_a_400(shop, domain):
    answer = refused(post({"domain": domain, "records": BODY["records"]}), 400)
    assert list(answer["errors"]) == ["domain"]


def test_a_body_over_the_upload_limit_is_a_413_not_a_500(shop, settings):
    """Reading request.body raised RequestDataTooBig, which the API's handler answered as an internal error."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    answer = refused(post(with_extra(', "note": "' + "x" * 1000 + '"')), 413)
    assert list(answer["errors"]) == ["body"] and "1000 bytes" in answer["detail"]
    assert not InboundWebhook.objects.exists()


def test_an_unknown_system_is_404(db):
    assert "shop" in refused(post(BODY), 404)["detail"]


def test_a_signed_multipart_body_is_read_as_sent_and_refused_as_not_json(shop):
    """Django parsed a multipart body as a form before the view (the middleware's NUL check), which used the request
    stream up: the view could not read the raw body it checks the signature over (a 500). Now the signature checks
    out over the bytes as sent, and the body is refused for what it is."""
    raw = b'--X\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--X--\r\n'
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed_headers(SECRET, "msg-mp", raw).items()
               if k != "Content-Type"}  # fmt: skip
    answer = APIClient().post("/api/v1/webhooks/shop/", raw, content_type="multipart/form-data; boundary=X", **headers)
    assert answer.status_code == 400, (answer.status_code, answer.content[:300])
    assert set(answer.json()) == {"detail", "errors"}
    assert not InboundWebhook.objects.exists() and not SourceRecord.objects.exists()
