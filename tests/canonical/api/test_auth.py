"""Who may call: bearer keys (hashed), scopes, staff sessions, per-client throttling, history attribution."""

from __future__ import annotations

import hashlib

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from canonical.api.clients import api_client_authenticate, api_client_create, api_client_revoke
from canonical.models import ApiClient, Customer

from .conftest import ingest, rec

pytestmark = pytest.mark.django_db


def test_missing_key_is_401_with_a_bearer_challenge():
    response = APIClient().get("/api/v1/customers/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json() == {"detail": "Authentication credentials were not provided.", "errors": {}}


@pytest.mark.parametrize("header", ["Bearer mdm_wrongwrongwrong", "Bearer", "Bearer a b", "Bearer \u00e9t\u00e9"])
def test_a_wrong_or_malformed_key_is_401(header):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)

    response = api.get("/api/v1/customers/")

    assert response.status_code == 401
    assert response.json()["detail"]


def test_a_revoked_key_is_401(make_api):
    api = make_api("read:customer", name="old")
    api_client_revoke(name="old")

    assert api.get("/api/v1/customers/").status_code == 401


def test_only_a_hash_of_the_key_is_stored(make_api):
    api = make_api("read:customer")
    row = ApiClient.objects.get(pk=api.api_client.pk)

    assert row.key_hash == hashlib.sha256(api.key.encode()).hexdigest()
    assert api.key.startswith(row.key_prefix)
    assert api.key not in str(ApiClient.objects.values().get(pk=row.pk))


def test_authentication_records_when_a_key_was_last_used(make_api):
    api = make_api("read:customer", name="seen")

    api.get("/api/v1/customers/")

    assert ApiClient.objects.get(name="seen").last_used_at is not None
    assert api_client_authenticate(key=api.key).name == "seen"
    assert api_client_authenticate(key=api.key + "x") is None


def test_a_key_without_the_domain_read_scope_is_403_naming_the_scope(make_api):
    response = make_api("read:contract").get("/api/v1/customers/")

    assert response.status_code == 403
    assert response.json()["detail"] == "This endpoint needs the scope(s): read:customer."


def test_staff_users_with_a_session_have_every_scope(admin_client):
    ingest("hr", "resource", rec("E1", 1, first_name="Ada", last_name="L", national_id="X1"))

    response = admin_client.get("/api/v1/resources/")

    assert response.status_code == 200
    assert response.json()["results"][0]["national_id"] == "X1"


def test_a_signed_in_user_who_is_not_staff_has_no_scope(client, django_user_model):
    user = django_user_model.objects.create_user("clerk", password="pw-for-tests")
    client.force_login(user)

    assert client.get("/api/v1/customers/").status_code == 403


def test_the_browsable_api_renders_for_staff(admin_client):
    response = admin_client.get("/api/v1/customers/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert b"Customer" in response.content


def test_throttling_counts_per_client(make_api, settings):
    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"client": "3/min"}}
    busy, other = make_api("read:customer"), make_api("read:customer")

    statuses = [busy.get("/api/v1/customers/").status_code for _ in range(4)]
    others = other.get("/api/v1/customers/")

    assert statuses == [200, 200, 200, 429]
    assert others.status_code == 200
    cache.clear()


def test_api_changes_are_attributed_to_the_client_in_history(make_api):
    api = make_api("ingest", system="crm", name="crm-sync")

    api.post(
        "/api/v1/ingest/crm/customer/",
        {"source_id": "1", "updated_at": "2024-01-01T00:00:00Z", "attributes": {"name": "Acme"}},
        format="json",
        HTTP_X_REQUEST_ID="abc123",
    )

    row = Customer.objects.get().history.get()
    assert (row.history_actor, row.history_channel, row.history_request_id) == ("client:crm-sync", "api", "abc123")
    assert row.history_user is None


def test_scopes_are_checked_when_a_client_is_created(db):
    client, key = api_client_create(name="erp-sync", system="erp", scopes=["ingest", "read:customer"])

    assert client.scopes == ["ingest", "read:customer"]
    assert len(key) > 40
