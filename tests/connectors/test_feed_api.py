"""GET /api/v1/changes: golden changes as CloudEvents, paged by cursor in commit-safe order."""

import pytest
from rest_framework.test import APIClient

from canonical.api.clients import api_client_create
from canonical.models import ChangeEvent

from .conftest import ingest, rec


def api(*scopes: str, system: str | None = None) -> APIClient:
    _, key = api_client_create(name=f"reader-{len(scopes)}-{'-'.join(s.replace(':', '') for s in scopes)}",
                               system=system, scopes=list(scopes))  # fmt: skip
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def read_all(client: APIClient, limit: int) -> list[dict]:
    events, after = [], ""
    for _ in range(100):
        body = client.get("/api/v1/changes", {"after": after, "limit": limit}).json()
        events += body["events"]
        if not body["has_more"]:
            return events
        after = body["next_cursor"]
    raise AssertionError("the feed never ended")


def test_the_feed_pages_through_every_change_once_in_order(transactional_db):
    ingest("crm", "customer", *[rec(f"001{i}", name=f"Customer {i}") for i in range(5)])
    ingest("crm", "customer", rec("0010", 10, name="Customer zero"))
    events = read_all(api("read:customer"), limit=2)
    assert [e["id"] for e in events] == [
        str(e) for e in ChangeEvent.objects.order_by("id").values_list("event_id", flat=True)
    ]
    last = events[-1]
    assert last["specversion"] == "1.0" and last["type"] == "org.mdm.golden.updated"
    assert last["data"]["changed_fields"] == ["name"] and last["data"]["version"] == 2
    assert last["data"]["record"]["name"] == "Customer zero" and last["subject"] == last["data"]["golden_id"]
    assert last["data"]["origin_system"] == "crm"


def test_a_reader_at_the_end_gets_nothing_new_and_keeps_its_cursor(transactional_db):
    ingest("crm", "customer", rec("001A", name="Acme"))
    client = api("read:customer")
    first = client.get("/api/v1/changes").json()
    again = client.get("/api/v1/changes", {"after": first["next_cursor"]}).json()
    assert again == {"events": [], "next_cursor": first["next_cursor"], "has_more": False}


def test_a_reader_sees_only_the_domains_it_may_read_and_no_personal_data_without_the_scope(transactional_db):
    ingest("crm", "customer", rec("001A", name="Acme"))
    ingest("hr", "resource", rec("W1", first_name="Ada", last_name="Lovelace", date_of_birth="1990-01-01"))
    assert [e["data"]["domain"] for e in read_all(api("read:customer"), 10)] == ["customer"]
    (resource,) = read_all(api("read:resource"), 10)
    assert "date_of_birth" not in resource["data"]["record"]
    (resource,) = read_all(api("read:resource", "read:personal"), 10)
    assert resource["data"]["record"]["date_of_birth"] == "1990-01-01"


@pytest.mark.parametrize("path", ["/api/v1/changes", "/api/v1/changes/"])
@pytest.mark.parametrize("query, field", [({"after": "yesterday"}, "after"), ({"after": "x"}, "after"),
                                          ({"after": "١.١"}, "after"),  # Arabic-Indic digits: not a cursor we issue
                                          ({"limit": 0}, "limit"), ({"limit": "many"}, "limit")])  # fmt: skip
def test_a_bad_cursor_or_limit_is_a_400_naming_the_parameter(transactional_db, path, query, field):
    answer = api("read:customer").get(path, query)
    assert answer.status_code == 400
    body = answer.json()
    assert set(body) == {"detail", "errors"} and list(body["errors"]) == [field], body
    assert body["detail"].startswith(f"{field}: ") and body["errors"][field][0] in body["detail"]


def test_the_feed_needs_a_read_scope(transactional_db):
    assert api("ingest", system="crm").get("/api/v1/changes").status_code == 403
    assert APIClient().get("/api/v1/changes").status_code in (401, 403)
