"""Per-client throttling: one bucket per API client (or per staff user, or per address when anonymous)."""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .permissions import request_client


class ClientRateThrottle(SimpleRateThrottle):
    scope = "client"  # rate: REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["client"] (API_THROTTLE_RATE)

    def get_rate(self) -> str | None:
        # Read at request time (not import time) so a settings change applies.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view) -> str:
        client = request_client(request)
        if client is not None:
            ident = f"client-{client.pk}"
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"addr-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
