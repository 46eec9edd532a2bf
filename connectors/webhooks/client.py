"""Signed webhooks, both ways, in the Standard Webhooks scheme: headers `webhook-id`, `webhook-timestamp`
and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`."""

from __future__ import annotations

import hashlib
import hmac
import re
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
    """Why a webhook's signature headers are refused; `errors` names the header(s) at fault."""

    def __init__(self, message: str, *, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.errors = errors or {}


_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
# Unix seconds in ASCII digits (int() would take "١٢", " 12", "1_2"): 12 digits reach the year 33658, and
# bounding the length keeps int() and the float arithmetic with `now` from overflowing.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def verify(secret: str, headers, body: bytes, *, tolerance: int = 300, now: float | None = None) -> str:
    """Check a signed webhook; return its id or raise SignatureError saying what is wrong."""
    values = {name: headers.get(name) or "" for name in _HEADERS}
    missing = [name for name in _HEADERS if not values[name]]
    if missing:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header",
                             errors={name: ["this header is required"] for name in missing})  # fmt: skip
    msg_id, timestamp, given = values["webhook-id"], values["webhook-timestamp"], values["webhook-signature"]
    if not _TIMESTAMP.fullmatch(timestamp):
        message = "webhook-timestamp is not a Unix time in seconds"
        raise SignatureError(message, errors={"webhook-timestamp": [message]})
    if abs((now if now is not None else time.time()) - int(timestamp)) > tolerance:
        message = f"webhook-timestamp is more than {tolerance} s away from now: resend it"
        raise SignatureError(message, errors={"webhook-timestamp": [message]})
    try:
        expected = signature(secret, msg_id, timestamp, body)
    except UnicodeEncodeError:  # an unpaired surrogate: not text that has a UTF-8 form to sign
        message = "webhook-id is not Unicode text (it holds an unpaired surrogate), so it cannot be signed"
        raise SignatureError(message, errors={"webhook-id": [message]}) from None
    # compare_digest refuses str with non-ASCII characters (TypeError); a signature is ASCII or wrong.
    if not any(c.isascii() and hmac.compare_digest(expected, c) for c in given.split()):
        message = "signature does not match: check the shared secret"
        raise SignatureError(message, errors={"webhook-signature": [message]})
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
