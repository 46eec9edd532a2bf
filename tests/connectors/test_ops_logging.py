"""Structured logs: JSON lines whose correlation id follows one record from receipt over the API to its
match, golden change, outbox event and delivery to another system."""

from __future__ import annotations

import io
import json
import logging

import pytest
from rest_framework.test import APIClient

from canonical.api.clients import api_client_create
from connectors.ops.logging import JsonFormatter
from connectors.services.relay import relay_run


@pytest.fixture
def json_log():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_one_correlation_id_follows_a_record_from_receipt_to_delivery(sandbox, connect, settings, json_log):
    settings.MDM_RELAY_KICK = False
    connect(sandbox, "erp")
    _, key = api_client_create(name="crm-feed", system="crm", scopes=["ingest"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    body = {"source_id": "001A", "updated_at": "2026-01-01T00:00:00Z",
            "attributes": {"name": "Acme", "website": "https://acme.example"}}  # fmt: skip
    resp = api.post("/api/v1/ingest/crm/customer/", body, format="json", HTTP_X_REQUEST_ID="trace-0042")
    assert resp.status_code in (200, 201), resp.content
    relay_run(max_seconds=30)

    traced = [line for line in json_log() if line.get("correlation_id") == "trace-0042"]
    events = [line.get("event") for line in traced]
    for step in ("source_record.processed", "xref.linked", "golden.changed", "outbox.queued", "delivery.pushed"):
        assert step in events, f"{step} missing from {events}"
    processed = next(line for line in traced if line.get("event") == "source_record.processed")
    assert (processed["system"], processed["source_id"], processed["status"]) == ("crm", "001A", "applied")
    golden = processed["golden_id"]
    queued = next(line for line in traced if line.get("event") == "outbox.queued")
    assert queued["golden_id"] == golden and queued["targets"] == ["erp"]
    pushed = next(line for line in traced if line.get("event") == "delivery.pushed")
    assert (pushed["golden_id"], pushed["system"], pushed["level"]) == (golden, "erp", "INFO")
    assert pushed["remote_id"] and pushed["logger"] == "connectors.services.relay"
    assert processed["channel"] == "api"


def test_a_line_outside_any_request_is_still_json(json_log):
    logging.getLogger("anything").warning("plain %s", "words", extra={"answer": 42})
    (line,) = [x for x in json_log() if x["logger"] == "anything"]
    assert line["message"] == "plain words" and line["answer"] == 42 and "correlation_id" not in line
