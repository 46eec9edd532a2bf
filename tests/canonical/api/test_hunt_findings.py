"""Inputs a review of the API found answering 500 (or a 4xx that is not the API's JSON error): each now a JSON 4xx that
changes nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from canonical.models import Customer, IdempotencyKey

from .conftest import ingest, rec

pytestmark = pytest.mark.django_db


def _json_4xx(r):
    assert 400 <= r.status_code < 500, (r.status_code, r.content[:300])
    assert set(r.json()) == {"detail", "errors"}


@pytest.mark.parametrize(
    "act",
    [
        "review-tasks/²/merge/",
        "review-tasks/²/not-a-match/",
        "review-tasks/²/defer/",
        "review-tasks/²/assign/",
        "exceptions/²/retry/",
        "exceptions/²/resolve/",
        "exceptions/²/ignore/",
        "exceptions/²/assign/",
    ],
)
def test_superscript_digit_task_or_exception_id_is_a_404(root, act):
    root.raise_request_exception = False
    r = root.post(f"/api/v1/{act}", {"reason": "x", "note": "x", "assignee": None}, format="json")
    _json_4xx(r)


def test_superscript_digit_source_record_in_unmerge_is_a_400(root):
    (a,) = ingest("crm", "customer", rec("C1", 0, name="Acme"))
    root.raise_request_exception = False
    r = root.post(f"/api/v1/customers/{a.golden_id}/unmerge/", {"source_record": "²", "reason": "split"}, format="json")
    _json_4xx(r)


def test_idempotency_key_from_a_client_whose_name_is_58_to_64_characters(make_api):
    api = make_api("ingest", system="crm", name="x" * 58)  # "client:" + 58 = 65 > IdempotencyKey.client_name(64)
    api.raise_request_exception = False
    r = api.post(
        "/api/v1/ingest/crm/customer/",
        {"source_id": "C1", "attributes": {"name": "Acme"}},
        format="json",
        HTTP_IDEMPOTENCY_KEY="batch-1",
    )
    assert r.status_code == 200, (r.status_code, r.content[:300])
    assert IdempotencyKey.objects.count() == 1 and Customer.objects.count() == 1


def test_session_cookie_with_an_octal_escaped_nul_is_ignored():
    c = Client(raise_request_exception=False)
    r = c.get("/api/v1/customers/", HTTP_COOKIE='sessionid="abcdefgh\\000ijklmnop"')
    _json_4xx(r)  # 401/403: no credentials; today 500 on every URL (API, webhooks, /health, /admin/)


def test_nul_in_the_bearer_key_prefix_is_a_401(db):
    c = Client(raise_request_exception=False)
    r = c.get("/api/v1/customers/", HTTP_AUTHORIZATION="Bearer mdm_\x00abcdefgh")
    _json_4xx(r)


def test_form_body_in_a_non_utf8_charset_is_a_json_400(root):
    (a,) = ingest("crm", "customer", rec("C1", 0, name="Acme"))
    (b,) = ingest("erp", "customer", rec("E1", 0, name="Globex"))
    r = root.generic(
        "POST",
        f"/api/v1/customers/{a.golden_id}/merge/",
        f"reason=same&others={b.golden_id}".encode(),
        content_type="application/x-www-form-urlencoded; charset=latin-1",
    )
    _json_4xx(r)  # today: 400 text/html from Django's BadRequest


def test_too_many_query_parameters_is_a_json_400(root):
    r = root.get("/api/v1/customers/?" + "&".join(f"a{i}=1" for i in range(1001)))
    _json_4xx(r)  # today: 400 text/html (TooManyFieldsSent raised in RefuseNulMiddleware's request.GET)


def test_merge_cannot_make_the_survivor_its_own_parent(root):
    (a,) = ingest("crm", "customer", rec("C1", 0, name="Acme"))
    (b,) = ingest("erp", "customer", rec("E1", 0, name="Globex"))
    r = root.post(
        f"/api/v1/customers/{a.golden_id}/merge/",
        {"others": [str(b.golden_id)], "reason": "same", "field_choices": {"parent": str(b.golden_id)}},
        format="json",
    )
    _json_4xx(r)  # today: 200 and Customer a.parent == a
    assert Customer.objects.get(pk=a.golden_id).parent_id is None
