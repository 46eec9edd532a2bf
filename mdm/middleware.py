"""Refuse, before any view sees it, a query string or form field holding a NUL character.

No database column or JSON value can hold one (PostgreSQL refuses it), and the steward screens and the admin read
`request.GET` / `request.POST` without a form's validators: a NUL there was a 500. JSON bodies are the API's
parser's (canonical/api/parsers.py); this covers what is parsed as a query string or a form. Under /api/ the
answer is the API's JSON error; elsewhere a plain 400.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import HttpResponseBadRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError

_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_NUL = "holds a NUL character (\\u0000), which cannot be stored; remove it"


def _nul_in(data) -> str | None:
    for key, values in data.lists():
        if "\x00" in key:
            return "(a field name)"
        if any(isinstance(v, str) and "\x00" in v for v in values):
            return key
    return None


def _refused(request, field: str, message: str, detail: str):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": detail, "errors": {field: [message]}}, status=400)
    return HttpResponseBadRequest(f"{field}: {message}.", content_type="text/plain; charset=utf-8")


class RefuseNulMiddleware:
    """Also answers, in the API's JSON error under /api/, what Django refuses while parsing a query string or a
    form (more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS, a charset it cannot decode): otherwise Django's HTML 400."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            where, field = "query string", _nul_in(request.GET)
        except TooManyFieldsSent:
            limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
            message = f"more than {limit} parameters; send fewer"
            return _refused(request, "query", message, f"The query string has {message}.")
        if field is None and request.method == "POST" and request.content_type in _FORMS:
            try:
                # Read whole first (it is capped at DATA_UPLOAD_MAX_MEMORY_SIZE): the form is then parsed from these
                # bytes and the body stays readable. Parsing a multipart form from the stream used it up, and a view
                # that reads the raw body (a webhook's signature, DRF's parsers) failed with a 500.
                request.body  # noqa: B018
            except RequestDataTooBig:
                return self.get_response(request)  # answered where the body is read (the API's 413)
            except ValueError:  # int(Content-Length)
                return self._bad(request, "header", "Content-Length is not a number")
            try:
                where, field = "form", _nul_in(request.POST)
            except TooManyFieldsSent as exc:
                limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
                return self._bad(request, "form", f"has more than {limit} fields; send fewer, or send JSON", exc)
            except TooManyFilesSent as exc:
                limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
                return self._bad(request, "form", f"has more than {limit} files; send fewer", exc)
            except (BadRequest, MultiPartParserError, LookupError, UnicodeError) as exc:
                # a charset Python cannot decode (or that is no text encoding), a multipart body without its boundary
                return self._bad(request, "form", f"cannot be read ({exc}); send it as UTF-8, or as JSON")
        if field is None:
            return self.get_response(request)
        return _refused(request, field, _NUL, f"A {where} field {_NUL}.")

    @staticmethod
    def _bad(request, field: str, message: str, suspicious: SuspiciousOperation | None = None):
        """A body Django could not take, refused here. Django logs the 400 (django.request); what it counts as
        suspicious also goes where it logs such (django.security.<kind>), as when it refuses it itself."""
        if suspicious is not None:
            logging.getLogger(f"django.security.{type(suspicious).__name__}").warning("%s", suspicious)
        what = "The request's" if field == "header" else "The form body"
        return _refused(request, field, message, f"{what} {message}.")
