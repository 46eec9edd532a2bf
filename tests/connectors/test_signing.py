"""Webhook signatures (Standard Webhooks scheme), as the hub sends and checks them."""

import pytest

from connectors.webhooks.client import SignatureError, signature, signed_headers, verify

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


def test_missing_headers_are_each_named_in_the_errors():
    headers = signed_headers("s3cret", "msg-1", BODY)
    del headers["webhook-signature"]
    with pytest.raises(SignatureError) as refused:
        verify("s3cret", headers, BODY)
    assert refused.value.errors == {"webhook-signature": ["this header is required"]}


@pytest.mark.parametrize(
    "timestamp",
    ["9" * 400, "9" * 5000, "-1000000", "1e6", "1000000.0", " 1000000", "1_000_000", "١٠٠٠٠٠٠", "1000000\x00"],
)
def test_a_timestamp_that_is_not_plain_unix_seconds_is_refused_even_when_signed(timestamp):
    """400 nines overflowed float arithmetic; Arabic-Indic digits, spaces and underscores passed int()."""
    headers = {"webhook-id": "msg-1", "webhook-timestamp": timestamp,
               "webhook-signature": signature("s3cret", "msg-1", timestamp, BODY)}  # fmt: skip
    with pytest.raises(SignatureError, match="not a Unix time") as refused:
        verify("s3cret", headers, BODY, now=1_000_000)
    assert list(refused.value.errors) == ["webhook-timestamp"]


@pytest.mark.parametrize("given", ["v1,é", "v1,\ud800", "v1,ü v1,x"])
def test_a_signature_header_with_non_ascii_characters_does_not_match(given):
    headers = {**signed_headers("s3cret", "msg-1", BODY, now=1_000_000), "webhook-signature": given}
    with pytest.raises(SignatureError, match="does not match") as refused:
        verify("s3cret", headers, BODY, now=1_000_000)
    assert list(refused.value.errors) == ["webhook-signature"]


def test_a_non_ascii_signature_among_several_does_not_hide_the_right_one():
    headers = signed_headers("s3cret", "msg-1", BODY, now=1_000_000)
    headers["webhook-signature"] = "v1,é " + headers["webhook-signature"]
    assert verify("s3cret", headers, BODY, now=1_000_000) == "msg-1"


def test_a_webhook_id_that_is_not_unicode_text_is_refused_naming_the_header():
    headers = {**signed_headers("s3cret", "msg-1", BODY, now=1_000_000), "webhook-id": "msg-\ud800"}
    with pytest.raises(SignatureError, match="webhook-id") as refused:
        verify("s3cret", headers, BODY, now=1_000_000)
    assert list(refused.value.errors) == ["webhook-id"]
