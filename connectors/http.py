"""HTTP for connectors: one pooled session per connector, errors turned into TransportError."""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings

from canonical.validation import storable_text

from .base import TransportError, error_for_status, parse_retry_after


class HttpClient:
    def __init__(self, base_url: str, *, timeout: float | None = None, headers: dict | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout if timeout is not None else float(getattr(settings, "MDM_HTTP_TIMEOUT", 10))
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": "mdm-hub-connector/1.0"})
        if headers:
            self.session.headers.update(headers)

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        try:
            resp = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout as exc:
            raise TransportError(f"{method} {url} timed out: {exc}", permanent=False) from exc
        except requests.ConnectionError as exc:
            raise TransportError(f"{method} {url} failed to connect or was cut off: {exc}", permanent=False) from exc
        except requests.RequestException as exc:
            raise TransportError(f"{method} {url} failed: {exc}", permanent=False) from exc
        if resp.status_code not in ok:
            detail = storable_text(resp.text[:500])  # the remote body goes into run errors and deliveries
            raise error_for_status(
                resp.status_code,
                f"{method} {url} answered {resp.status_code}: {detail}",
                retry_after=parse_retry_after(resp.headers.get("Retry-After")),
            )
        return resp

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.request(method, path, **kwargs)
        try:
            return resp.json()
        except ValueError as exc:
            raise TransportError(f"{method} {path}: the answer is not JSON", permanent=False) from exc

    def close(self) -> None:
        self.session.close()
