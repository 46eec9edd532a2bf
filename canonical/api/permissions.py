"""Scopes: `read:<domain>`, `read:personal`, `ingest`, `steward`.

A view names what it needs with `required_scopes` (a set, all needed) or `get_required_scopes(request)`.
API clients have the scopes stored on their row; Django staff users signed in with a session have every
scope, so the browsable API works for administrators.
"""

from __future__ import annotations

from rest_framework import permissions

from canonical.models import ApiClient

from .auth import django_user_detach
from .clients import known_scopes


def request_client(request) -> ApiClient | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiClient) else None


def request_scopes(request) -> set[str]:
    client = request_client(request)
    if client is not None:
        return set(client.scopes or [])
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff and user.is_active:
        return set(known_scopes())
    return set()


def has_scope(request, scope: str) -> bool:
    return scope in request_scopes(request)


def request_actor(request) -> str:
    client = request_client(request)
    if client is not None:
        return f"client:{client.name}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user.get_username()
    return "anonymous"


class HasScope(permissions.BasePermission):
    """Authenticated, and holding every scope the view requires."""

    message = "This API key lacks the scope this endpoint needs."

    def has_permission(self, request, view) -> bool:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return False
        django_user_detach(request)
        getter = getattr(view, "get_required_scopes", None)
        needed = set(getter(request)) if getter else set(getattr(view, "required_scopes", ()))
        missing = needed - request_scopes(request)
        if missing:
            self.message = f"This endpoint needs the scope(s): {', '.join(sorted(missing))}."
            return False
        return True
