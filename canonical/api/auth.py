"""`Authorization: Bearer <key>` authentication for API clients (see canonical.api.clients)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from canonical.models import ApiClient

from .clients import api_client_authenticate


@dataclass(frozen=True)
class ApiClientPrincipal:
    """What `request.user` is for a request authenticated by an API key."""

    client: ApiClient

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False
    pk = None
    id = None

    @property
    def username(self) -> str:
        return f"client:{self.client.name}"

    def get_username(self) -> str:
        return self.username

    def __str__(self) -> str:
        return self.username


def django_user_detach(request) -> None:
    """Give the underlying Django request an anonymous user when an API key authenticated it.

    DRF copies `request.user` onto the Django request; simple-history would then try to store the
    principal as `history_user` (a User foreign key) and fail. History rows name the client through
    the audit context (`history_actor = "client:<name>"`) instead.
    """
    django_request = getattr(request, "_request", None)
    if django_request is not None and isinstance(getattr(django_request, "user", None), ApiClientPrincipal):
        django_request.user = AnonymousUser()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Authorization header must be 'Bearer <key>' with no spaces in the key."
            )
        try:
            key = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The API key contains invalid characters.")
        client = api_client_authenticate(key=key)
        if client is None:
            raise exceptions.AuthenticationFailed(
                "Invalid or revoked API key. Ask an administrator for a key (`manage.py api_client create`)."
            )
        return ApiClientPrincipal(client), client

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the bearer key in the OpenAPI schema."""

    target_class = "canonical.api.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `manage.py api_client create`: `Authorization: Bearer <key>`.",
        }
