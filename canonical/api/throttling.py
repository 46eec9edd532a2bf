"""Per-client throttling: one bucket per API client (or per staff user, or per address when anonymous).

A sliding-window counter (the rate's window split in fixed windows; the previous window's count weighs by
how much of it still overlaps the sliding window): on Redis one pipelined round trip (INCRBY + EXPIRE of this
window's counter, GET of the previous one) per request or per lease (below), atomic across processes. DRF's own
SimpleRateThrottle keeps a list of every request's time in the cache and reads and writes it whole (two round
trips, a list as long as the rate, and concurrent requests overwrite each other's lists). A refused request
is not counted, as with DRF. Without Redis (the demo's in-process cache) the same counters go through
Django's cache API.

Leases: at high rates a process counts several requests at once (1/500 of the rate, at most 100: 12 at the
default 6000/min) and lets that many through without asking Redis again in the same window. The lease is only
taken when all of it fits under the rate, so the rate is never exceeded; a process's unused lease counts as
used, so a client may be refused up to (processes x (lease - 1)) requests early in a window (under 2% at the
default rate with 8 processes). At rates under 1000 per window every request is counted on its own.
"""

from __future__ import annotations

import weakref

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .permissions import request_client

_redis_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
LEASE_SHARE = 500  # a lease is at most 1/LEASE_SHARE of the rate...
LEASE_MAX = 100  # ...and at most this many requests
_leases: dict[str, tuple[int, int]] = {}  # this process's leases: throttle key -> (window, requests left)
_LEASES_MAX_KEYS = 10_000


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
        lease = _leases.get(self.key)
        if lease is not None and lease[0] == window and lease[1] > 0:
            _leases[self.key] = (window, lease[1] - 1)
            return True
        current_key, previous_key = f"{self.key}:{window}", f"{self.key}:{window - 1}"
        size = min(LEASE_MAX, self.num_requests // LEASE_SHARE)
        if size > 1:
            current, previous = self._hit(current_key, previous_key, size)
            if previous * (1 - self._elapsed / self.duration) + current <= self.num_requests:
                if len(_leases) >= _LEASES_MAX_KEYS:
                    _leases.clear()
                _leases[self.key] = (window, size - 1)
                return True
            self._undo(current_key, size)  # near the rate: count this request on its own
        current, self._previous = self._hit(current_key, previous_key, 1)
        self._over = self._previous * (1 - self._elapsed / self.duration) + current - self.num_requests
        if self._over <= 0:
            return True
        self._undo(current_key, 1)
        return self.throttle_failure()

    def _hit(self, current_key: str, previous_key: str, n: int) -> tuple[int, int]:
        """Count n requests in the current window; (current window's count, previous window's count)."""
        cache = self.cache
        ttl = int(2 * self.duration) + 1
        client = _redis_client(cache)
        if client is not None:
            current_key = cache.make_and_validate_key(current_key)
            with client.pipeline(transaction=False) as pipe:
                pipe.incrby(current_key, n)
                pipe.expire(current_key, ttl)
                pipe.get(cache.make_and_validate_key(previous_key))
                current, _, previous = pipe.execute()
            return int(current), int(previous or 0)
        cache.add(current_key, 0, ttl)
        try:
            current = cache.incr(current_key, n)
        except ValueError:  # expired between add and incr
            cache.add(current_key, n, ttl)
            current = n
        return current, int(cache.get(previous_key) or 0)

    def _undo(self, current_key: str, n: int) -> None:
        cache = self.cache
        client = _redis_client(cache)
        try:
            if client is not None:
                client.decrby(cache.make_and_validate_key(current_key), n)
            else:
                cache.decr(current_key, n)
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
