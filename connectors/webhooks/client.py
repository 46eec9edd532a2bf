"""Signed webhooks, both ways, in the Standard Webhooks scheme: headers `webhook-id`, `webhook-timestamp`
and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`."""

from __future__ import annotations

import hashlib
import hmac
import time
from base64 import b64encode

from connectors.http import HttpClient


def signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + b64encode(digest).decode()


def signed_headers(secret: str, msg_id: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    timestamp = str(int(now if now is not None else time.time()))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature(secret, msg_id, timestamp, body),
        "Content-Type": "application/json",
    }


class SignatureError(ValueError):
    pass


def verify(secret: str, headers, body: bytes, *, tolerance: int = 300, now: float | None = None) -> str:
    """Check a signed webhook; return its id or raise SignatureError saying what is wrong."""
    msg_id = headers.get("webhook-id") or ""
    timestamp = headers.get("webhook-timestamp") or ""
    given = headers.get("webhook-signature") or ""
    if not msg_id or not timestamp or not given:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        sent = int(timestamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a Unix time in seconds") from None
    if abs((now if now is not None else time.time()) - sent) > tolerance:
        raise SignatureError(f"webhook-timestamp is more than {tolerance} s away from now: resend it")
    expected = signature(secret, msg_id, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in given.split()):
        raise SignatureError("signature does not match: check the shared secret")
    return msg_id


class WebhookClient:
    def __init__(self, url: str, secret: str):
        self.http = HttpClient(url)
        self.url = url
        self.secret = secret

    def send(self, msg_id: str, body: bytes) -> None:
        self.http.request("POST", self.url, data=body, headers=signed_headers(self.secret, msg_id, body),
                          ok=(200, 201, 202, 204))  # fmt: skip

    def close(self) -> None:
        self.http.close()
