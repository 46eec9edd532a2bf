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


def test_an_unknown_system_is_404(db):
    assert "shop" in refused(post(BODY), 404)["detail"]
