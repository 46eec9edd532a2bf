"""API clients: create, revoke and authenticate the keys that programs use to call the API.

A key is shown once, at creation. The hub keeps its first characters (`key_prefix`, to find the row) and a
SHA-256 hash of the whole key (to check it); the key itself is never stored.

Authentication is remembered per web process, by key hash, for `MDM_API_CLIENT_CACHE_SECONDS` (5 s by
default): a request with a key seen in the last seconds costs no query. Each entry is read again from the
database when it is older than that, so a key revoked by any means (`api_client revoke`, the admin, another
process, SQL) is refused by every process at most that many seconds later; the process that revokes it
forgets it at once. 0 turns the memory off (every request reads the client row).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from canonical.domains import DOMAINS
from canonical.models import ApiClient, System

KEY_PREFIX = "mdm_"
KEY_PREFIX_LENGTH = 12  # "mdm_" + 8 random characters: ApiClient.key_prefix
_NAME_RE = re.compile(r"^[-a-zA-Z0-9_]{1,64}\Z")
_LAST_USED_RESOLUTION = timedelta(minutes=1)
_CACHE_MAX_ENTRIES = 1000
_cache: dict[str, tuple[float, ApiClient]] = {}  # key hash -> (time.monotonic() when read, the active client)

SCOPE_PERSONAL = "read:personal"
SCOPE_INGEST = "ingest"
SCOPE_STEWARD = "steward"


class ApiClientError(ValueError):
    """Bad input to an API-client service (unknown system or scope, duplicate name, …)."""


def read_scope(domain: str) -> str:
    return f"read:{domain}"


def known_scopes() -> list[str]:
    return [read_scope(d) for d in DOMAINS] + [SCOPE_PERSONAL, SCOPE_INGEST, SCOPE_STEWARD]


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_client_create(
    *, name: str, system: str | None = None, scopes: list[str] | None = None
) -> tuple[ApiClient, str]:
    """Create a client and return it with its key (the only time the key is available)."""
    scopes = list(dict.fromkeys(scopes or []))
    if not _NAME_RE.match(name or ""):
        raise ApiClientError(f"invalid name {name!r}: use 1-64 letters, digits, '-' or '_'")
    unknown = [s for s in scopes if s not in known_scopes()]
    if unknown:
        shown = ", ".join(s if s.isprintable() else repr(s) for s in unknown)  # a control character shows as such
        raise ApiClientError(f"unknown scope(s): {shown}; known scopes: {', '.join(known_scopes())}")
    system_obj = None
    if system:
        system_obj = System.objects.filter(code=system).first()
        if system_obj is None:
            codes = ", ".join(System.objects.values_list("code", flat=True)) or "none defined"
            raise ApiClientError(f"unknown system {system!r}; known systems: {codes}")
    if SCOPE_INGEST in scopes and system_obj is None:
        raise ApiClientError("scope 'ingest' needs --system: a key ingests only as its own system")
    if ApiClient.objects.filter(name=name).exists():
        raise ApiClientError(f"an API client named {name!r} already exists; pick another name or revoke it first")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        client = ApiClient.objects.create(
            name=name,
            system=system_obj,
            scopes=scopes,
            key_prefix=key[:KEY_PREFIX_LENGTH],
            key_hash=key_hash(key),
        )
    return client, key


def api_client_revoke(*, name: str) -> ApiClient:
    """Disable a client's key for good."""
    client = ApiClient.objects.filter(name=name).first()
    if client is None:
        raise ApiClientError(f"no API client named {name!r}; see `api_client list`")
    if not client.is_active:
        raise ApiClientError(f"API client {name!r} was already revoked on {client.revoked_at:%Y-%m-%d %H:%M}")
    client.is_active = False
    client.revoked_at = timezone.now()
    client.save(update_fields=["is_active", "revoked_at"])
    api_client_forget(client.key_hash)
    return client


def api_client_forget(digest: str | None = None) -> None:
    """Drop this process's memory of one key hash (all of it when None)."""
    if digest is None:
        _cache.clear()
    else:
        _cache.pop(digest, None)


def cache_seconds() -> float:
    return float(getattr(settings, "MDM_API_CLIENT_CACHE_SECONDS", 5))


def api_client_authenticate(*, key: str) -> ApiClient | None:
    """The active client owning this key, or None (remembered per process for `cache_seconds()`)."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200 or not (key.isascii() and key.isprintable()):
        return None  # a key is printable ASCII: anything else (a NUL) matches none and reaches no query
    digest = key_hash(key)
    now = time.monotonic()
    entry = _cache.get(digest)
    if entry is not None and now - entry[0] < cache_seconds():
        client = entry[1]
    else:
        client = _client_read(key[:KEY_PREFIX_LENGTH], digest)
        if client is None:
            _cache.pop(digest, None)  # unknown or revoked keys are not remembered: each costs a query
            return None
        if cache_seconds() > 0:
            if len(_cache) >= _CACHE_MAX_ENTRIES:
                _cache.clear()
            _cache[digest] = (now, client)
    _touch(client)
    return client


def _client_read(prefix: str, digest: str) -> ApiClient | None:
    for client in ApiClient.objects.filter(key_prefix=prefix, is_active=True).select_related("system"):
        if hmac.compare_digest(client.key_hash, digest):
            return client
    return None


def _touch(client: ApiClient) -> None:
    now = timezone.now()
    if client.last_used_at is None or now - client.last_used_at > _LAST_USED_RESOLUTION:
        # ApiClient has no history table: a plain update is fine and avoids a write per request.
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
        client.last_used_at = now
