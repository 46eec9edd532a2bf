"""Refuse, before any view sees it, a query string or form field holding a NUL character.

No database column or JSON value can hold one (PostgreSQL refuses it), and the steward screens and the admin read
`request.GET` / `request.POST` without a form's validators: a NUL there was a 500. JSON bodies are the API's
parser's (canonical/api/parsers.py); this covers what is parsed as a query string or a form. Under /api/ the
answer is the API's JSON error; elsewhere a plain 400.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpResponseBadRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError

_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
logger = logging.getLogger("django.request")
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
                return self._bad(request, "header", "Content-Length is not a number", "ValueError")
            try:
                where, field = "form", _nul_in(request.POST)
            except TooManyFieldsSent:
                limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
                return self._bad(request, "form", f"has more than {limit} fields; send fewer, or send JSON",
                                 "TooManyFieldsSent")  # fmt: skip
            except TooManyFilesSent:
                limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
                return self._bad(request, "form", f"has more than {limit} files; send fewer", "TooManyFilesSent")
            except (BadRequest, MultiPartParserError, LookupError, UnicodeError) as exc:
                # a charset Python cannot decode (or that is no text encoding), a multipart body without its boundary
                message = f"cannot be read ({exc}); send it as UTF-8, or as JSON"
                return self._bad(request, "form", message, type(exc).__name__)
        if field is None:
            return self.get_response(request)
        return _refused(request, field, _NUL, f"A {where} field {_NUL}.")

    @staticmethod
    def _bad(request, field: str, message: str, kind: str):
        """A body Django could not take, refused here, logged as Django logs its own refusals of the kind."""
        logger.warning("Bad request (%s): %s %s", kind, field, message, extra={"status_code": 400, "request": request})
        what = "The request's" if field == "header" else "The form body"
        return _refused(request, field, message, f"{what} {message}.")
