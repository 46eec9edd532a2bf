"""The connectors' knobs, read from Django settings at call time (never at import)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings


def lease_seconds() -> float:
    return float(getattr(settings, "MDM_DELIVERY_LEASE_SECONDS", 60))


def max_attempts() -> int:
    return int(getattr(settings, "MDM_DELIVERY_MAX_ATTEMPTS", 10))


def retry_base() -> float:
    return float(getattr(settings, "MDM_RETRY_BASE_SECONDS", 1.0))


def retry_cap() -> float:
    return float(getattr(settings, "MDM_RETRY_CAP_SECONDS", 300.0))


def pull_overlap() -> dt.timedelta:
    return dt.timedelta(seconds=float(getattr(settings, "MDM_PULL_OVERLAP_SECONDS", 120)))


def relay_batch_size() -> int:
    return int(getattr(settings, "MDM_RELAY_BATCH_SIZE", 50))


def relay_max_seconds() -> float:
    return float(getattr(settings, "MDM_RELAY_MAX_SECONDS", 30))


def relay_kick_enabled() -> bool:
    return bool(getattr(settings, "MDM_RELAY_KICK", True))
