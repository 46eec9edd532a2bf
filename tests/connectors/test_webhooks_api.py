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


def post(body, *, msg_id: str = "msg-1", secret: str = SECRET):
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed_headers(secret, msg_id, raw).items()
               if k != "Content-Type"}  # fmt: skip
    return APIClient().post("/api/v1/webhooks/shop/", raw, content_type="application/json", **headers)


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
    answer = post(BODY, secret="guess")
    assert answer.status_code == 401 and "signature" in answer.json()["detail"]
    assert not InboundWebhook.objects.exists()


@pytest.mark.parametrize(
    "body, where",
    [
        ({"domain": "planet", "records": BODY["records"]}, "domain"),
        ({"domain": "customer", "records": []}, "records"),
        ({"domain": "customer", "records": [{"attributes": {"name": "x"}}]}, "source_id"),
        ({"domain": "customer", "records": [{"source_id": "S1", "attributes": {"colour": "red"}}]}, "colour"),
        (b"not json", "JSON"),
    ],
)
def test_a_bad_body_is_a_400_with_field_messages_and_nothing_is_stored(shop, body, where):
    answer = post(body)
    assert answer.status_code == 400
    assert where in json.dumps(answer.json())
    assert not InboundWebhook.objects.exists()


def test_an_unknown_system_is_404(db):
    assert post(BODY).status_code == 404
