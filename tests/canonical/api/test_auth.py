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


def test_throttling_counts_per_client(make_api, settings, monkeypatch):
    from canonical.api import throttling

    # no lease left by an earlier test (on SQLite a rolled-back client's id is given again)
    monkeypatch.setattr(throttling, "_leases", {})
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


# --- the remembered client (canonical.api.clients: per process, MDM_API_CLIENT_CACHE_SECONDS) -------------------


@pytest.fixture
def clock(monkeypatch):
    """The monotonic clock the client memory reads, moved by hand."""
    from canonical.api import clients

    now = [1000.0]
    monkeypatch.setattr(clients.time, "monotonic", lambda: now[0])
    clients.api_client_forget()
    yield now
    clients.api_client_forget()


def test_a_key_is_read_from_the_database_once_then_remembered(make_api, clock, django_assert_num_queries):
    api = make_api("read:customer", name="busy")
    api_client_authenticate(key=api.key)  # read, remembered; last_used_at written

    with django_assert_num_queries(0):
        client = api_client_authenticate(key=api.key)

    assert client.name == "busy"


def test_a_key_revoked_by_another_process_is_refused_once_the_memory_is_older_than_its_limit(make_api, clock, settings):
    settings.MDM_API_CLIENT_CACHE_SECONDS = 5
    api = make_api("read:customer", name="leaving")
    assert api.get("/api/v1/customers/").status_code == 200
    # Another process revokes it: this one's memory is not told.
    ApiClient.objects.filter(name="leaving").update(is_active=False)

    clock[0] += 4.9
    within = api.get("/api/v1/customers/").status_code
    clock[0] += 0.2
    after = api.get("/api/v1/customers/").status_code

    assert (within, after) == (200, 401)


def test_a_key_revoked_in_this_process_is_refused_at_once(make_api, clock):
    api = make_api("read:customer", name="old-but-used")
    assert api.get("/api/v1/customers/").status_code == 200

    api_client_revoke(name="old-but-used")

    assert api.get("/api/v1/customers/").status_code == 401


def test_with_no_memory_every_request_reads_the_client(make_api, clock, settings, django_assert_num_queries):
    settings.MDM_API_CLIENT_CACHE_SECONDS = 0
    api = make_api("read:customer")
    api_client_authenticate(key=api.key)

    with django_assert_num_queries(1):
        api_client_authenticate(key=api.key)


def test_an_unknown_key_is_not_remembered(make_api, clock, django_assert_num_queries):
    api = make_api("read:customer")
    wrong = api.key[:-1] + ("A" if api.key[-1] != "A" else "B")

    with django_assert_num_queries(2):
        assert api_client_authenticate(key=wrong) is None
        assert api_client_authenticate(key=wrong) is None


def test_last_used_at_is_written_at_most_once_a_minute_per_process(make_api, clock, django_assert_num_queries):
    api = make_api("read:customer", name="frequent")
    api_client_authenticate(key=api.key)
    first = ApiClient.objects.get(name="frequent").last_used_at

    with django_assert_num_queries(0):
        for _ in range(5):
            api_client_authenticate(key=api.key)

    assert first is not None
    assert ApiClient.objects.get(name="frequent").last_used_at == first


# --- throttling (canonical.api.throttling: sliding window counter) ---------------------------------------------


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.redis), "locmem"])  # redis: run where it is up
def throttle_cache(request, settings, monkeypatch):
    """Throttling on the Redis cache (one pipelined round trip) and on Django's in-process cache."""
    from canonical.api import throttling

    monkeypatch.setattr(throttling, "_leases", {})
    if request.param == "locmem":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    elif "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        pytest.fail("these tests need REDIS_URL (the API's production cache)")
    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"client": "3/min"}}
    yield request.param
    cache.clear()


@pytest.fixture
def throttle_clock(monkeypatch):
    from canonical.api.throttling import ClientRateThrottle

    now = [600_000.0]  # the start of a minute
    monkeypatch.setattr(ClientRateThrottle, "timer", lambda self: now[0])
    return now


def test_throttling_refuses_beyond_the_rate_and_says_when_to_retry(make_api, throttle_cache, throttle_clock):
    api = make_api("read:customer")

    statuses = [api.get("/api/v1/customers/").status_code for _ in range(4)]
    refused = api.get("/api/v1/customers/")

    assert statuses == [200, 200, 200, 429]
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"


def test_refused_requests_are_not_counted(make_api, throttle_cache, throttle_clock):
    api = make_api("read:customer")
    for _ in range(3):
        assert api.get("/api/v1/customers/").status_code == 200
    for _ in range(5):
        assert api.get("/api/v1/customers/").status_code == 429

    throttle_clock[0] += 60 + 40  # next minute, 2/3 through: the last minute's 3 weigh 1
    statuses = [api.get("/api/v1/customers/").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_the_window_slides_across_the_minute(make_api, throttle_cache, throttle_clock):
    api = make_api("read:customer")
    throttle_clock[0] += 50
    for _ in range(3):
        assert api.get("/api/v1/customers/").status_code == 200

    throttle_clock[0] += 15  # 5 s into the next minute: the 3 requests of 15 s ago still count (weight 55/60)
    soon = api.get("/api/v1/customers/")
    throttle_clock[0] += 50  # 55 s into it: they weigh 5/60
    later = [api.get("/api/v1/customers/").status_code for _ in range(3)]

    assert soon.status_code == 429
    assert 0 < int(soon["Retry-After"]) <= 55
    assert later == [200, 200, 429]


def _throttled_request(pk: int):
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    request = Request(APIRequestFactory().get("/api/v1/customers/"))
    request._user = type("Staff", (), {"is_authenticated": True, "pk": pk})()
    request._auth = None
    return request


def test_at_high_rates_processes_take_leases_and_never_let_more_through_than_the_rate(
    throttle_cache, throttle_clock, settings, monkeypatch
):
    from canonical.api import throttling

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"client": "2000/min"}}
    hits = []
    real_hit = throttling.ClientRateThrottle._hit
    monkeypatch.setattr(
        throttling.ClientRateThrottle, "_hit", lambda self, *a: hits.append(a[-1]) or real_hit(self, *a)
    )
    processes = [{}, {}, {}]  # three web processes' lease memories
    request = _throttled_request(pk=424242)
    allowed = 0
    for i in range(2100):
        monkeypatch.setattr(throttling, "_leases", processes[i % 3])
        allowed += throttling.ClientRateThrottle().allow_request(request, None)

    unused = sum(p[f"throttle_client_user-{request.user.pk}"][1] for p in processes if p)
    assert 2000 - 3 * (4 - 1) <= allowed <= 2000  # leases of 2000 // 500 = 4 requests
    assert allowed + unused <= 2000
    assert len(hits) < 2100 / 2  # most requests did not ask the cache

    throttle_clock[0] += 60 * 2  # two windows later: nothing counts any more
    monkeypatch.setattr(throttling, "_leases", processes[0])
    assert throttling.ClientRateThrottle().allow_request(request, None)


def test_leases_are_per_client(throttle_cache, throttle_clock, settings, monkeypatch):
    from canonical.api import throttling

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"client": "1000/min"}}
    busy, other = _throttled_request(pk=515151), _throttled_request(pk=616161)

    allowed = sum(throttling.ClientRateThrottle().allow_request(busy, None) for _ in range(1010))

    assert allowed == 1000
    assert throttling.ClientRateThrottle().allow_request(other, None)
