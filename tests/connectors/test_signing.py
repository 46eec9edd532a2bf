"""Webhook signatures (Standard Webhooks scheme), as the hub sends and checks them."""

import pytest

from connectors.webhooks.client import SignatureError, signed_headers, verify

BODY = b'{"domain":"customer","records":[]}'


def test_a_signed_webhook_verifies_and_yields_its_id():
    headers = signed_headers("s3cret", "msg-1", BODY, now=1_000_000)
    assert verify("s3cret", headers, BODY, now=1_000_010) == "msg-1"


@pytest.mark.parametrize(
    "secret, body, now, message",
    [
        ("wrong", BODY, 1_000_000, "does not match"),
        ("s3cret", BODY + b" ", 1_000_000, "does not match"),
        ("s3cret", BODY, 1_000_000 + 301, "more than 300 s"),
    ],
)
def test_a_tampered_wrong_or_stale_webhook_is_refused(secret, body, now, message):
    headers = signed_headers("s3cret", "msg-1", BODY, now=1_000_000)
    with pytest.raises(SignatureError, match=message):
        verify(secret, headers, body, now=now)


def test_missing_headers_are_named():
    with pytest.raises(SignatureError, match="missing webhook-id"):
        verify("s3cret", {}, BODY)
