"""Retry timing: exponential growth with full jitter, a cap, and the system's Retry-After as a floor."""

import random

import pytest

from connectors.base import TransportError, backoff_delay, error_for_status, parse_retry_after


def test_backoff_grows_exponentially_within_jitter_bounds():
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)]:
        delays = [backoff_delay(attempt, base=1.0, cap=100.0, rng=rng) for _ in range(200)]
        assert min(delays) >= ceiling / 2
        assert max(delays) <= ceiling


def test_backoff_is_capped():
    delays = [backoff_delay(30, base=1.0, cap=60.0) for _ in range(100)]
    assert max(delays) <= 60.0
    assert min(delays) >= 30.0


def test_backoff_spreads_retries_so_they_are_not_in_lock_step():
    delays = {round(backoff_delay(5, base=1.0, cap=100.0), 3) for _ in range(50)}
    assert len(delays) > 40


def test_retry_after_is_a_floor_for_the_delay():
    assert backoff_delay(1, base=0.1, cap=1.0, retry_after=7.0) == 7.0
    assert backoff_delay(10, base=10.0, cap=100.0, retry_after=0.5) >= 50.0


@pytest.mark.parametrize("header, seconds", [("3", 3.0), ("0", 0.0), ("", None), (None, None), ("soon", None)])
def test_retry_after_header_is_read_as_seconds(header, seconds):
    assert parse_retry_after(header) == seconds


def test_retry_after_http_date_is_read_as_seconds_from_now():
    import time
    from email.utils import formatdate

    value = parse_retry_after(formatdate(time.time() + 30, usegmt=True))
    assert 25 <= value <= 31


@pytest.mark.parametrize(
    "status, permanent",
    [(500, False), (502, False), (503, False), (429, False), (408, False), (400, True), (401, True), (404, True),
     (409, True), (422, True), (300, True)],
)  # fmt: skip
def test_only_timeouts_rate_limits_and_server_errors_are_retried(status, permanent):
    error = error_for_status(status, "x")
    assert isinstance(error, TransportError)
    assert error.permanent is permanent
