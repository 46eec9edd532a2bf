"""Per-client throttling: one bucket per API client (or per staff user, or per address when anonymous).

A sliding-window counter (the rate's window split in fixed windows; the previous window's count weighs by
how much of it still overlaps the sliding window): on Redis one pipelined round trip per request (INCR +
EXPIRE of this window's counter, GET of the previous one), atomic across processes. DRF's own
SimpleRateThrottle keeps a list of every request's time in the cache and reads and writes it whole (two round
trips, a list as long as the rate, and concurrent requests overwrite each other's lists). A refused request
is not counted, as with DRF. Without Redis (the demo's in-process cache) the same counters go through
Django's cache API.
"""

from __future__ import annotations

import weakref

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .permissions import request_client

_redis_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _redis_client(cache):
    """A redis-py client for Django's Redis cache, made once per cache object.

    Django's RedisCache makes a new client object (on its shared connection pool) for every call, which costs
    more than the round trip itself; keep one.
    """
    if not isinstance(cache, RedisCache):
        return None
    client = _redis_clients.get(cache)
    if client is None:
        client = _redis_clients[cache] = cache._cache.get_client(write=True)
    return client


class ClientRateThrottle(SimpleRateThrottle):
    scope = "client"  # rate: REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["client"] (API_THROTTLE_RATE)

    @property
    def cache(self):  # the default cache at request time (DRF's class attribute is bound at import time)
        return caches[DEFAULT_CACHE_ALIAS]

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

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self._elapsed = self.now - window * self.duration
        current_key, previous_key = f"{self.key}:{window}", f"{self.key}:{window - 1}"
        current, self._previous = self._hit(current_key, previous_key)
        self._over = self._previous * (1 - self._elapsed / self.duration) + current - self.num_requests
        if self._over <= 0:
            return True
        self._undo(current_key)
        return self.throttle_failure()

    def _hit(self, current_key: str, previous_key: str) -> tuple[int, int]:
        """Count this request in the current window; (current window's count, previous window's count)."""
        cache = self.cache
        ttl = int(2 * self.duration) + 1
        client = _redis_client(cache)
        if client is not None:
            current_key = cache.make_and_validate_key(current_key)
            with client.pipeline(transaction=False) as pipe:
                pipe.incr(current_key)
                pipe.expire(current_key, ttl)
                pipe.get(cache.make_and_validate_key(previous_key))
                current, _, previous = pipe.execute()
            return int(current), int(previous or 0)
        cache.add(current_key, 0, ttl)
        try:
            current = cache.incr(current_key)
        except ValueError:  # expired between add and incr
            cache.add(current_key, 1, ttl)
            current = 1
        return current, int(cache.get(previous_key) or 0)

    def _undo(self, current_key: str) -> None:
        cache = self.cache
        client = _redis_client(cache)
        try:
            if client is not None:
                client.decr(cache.make_and_validate_key(current_key))
            else:
                cache.decr(current_key)
        except ValueError:
            pass

    def wait(self) -> float:
        """Seconds until a request would be let through again (the Retry-After header)."""
        to_window_end = self.duration - self._elapsed
        if self._previous <= 0:
            return to_window_end
        # The previous window's weight falls by previous/duration per second; at the window's end it becomes
        # the (smaller) previous window itself.
        return max(0.0, min(to_window_end, self._over * self.duration / self._previous))
