"""Every error is JSON: `{"detail": "<one sentence>", "errors": {field: [messages]}}`.

`errors` is empty when there is nothing field-specific to say. An unexpected exception is logged and
answered with a JSON 500 carrying the request id (and is a bug: tests feed garbage to every endpoint).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger("canonical.api")


class ApiError(exceptions.APIException):
    """An API error with an explicit status, one-line detail and field messages."""

    def __init__(self, detail: str, *, status_code: int = 400, errors: dict | None = None, code: str = "error"):
        super().__init__(detail=detail, code=code)
        self.status_code = status_code
        self.errors = errors or {}


def _plain(value: Any) -> Any:
    """ErrorDetail trees → plain lists/dicts of str."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def _field_errors(detail: Any) -> dict:
    if isinstance(detail, dict):
        return {str(k): (_plain(v) if isinstance(v, (list, dict)) else [str(v)]) for k, v in detail.items()}
    if isinstance(detail, list):
        return {"non_field_errors": _plain(detail)}
    return {}


def _first_message(errors: dict) -> str:
    for field, messages in errors.items():
        while isinstance(messages, dict) and messages:
            field, messages = next(iter(messages.items()))
        if isinstance(messages, list) and messages and isinstance(messages[0], str):
            return messages[0] if field == "non_field_errors" else f"{field}: {messages[0]}"
    return "Invalid input."


def exception_handler(exc: Exception, context: dict) -> Response:
    if isinstance(exc, RequestDataTooBig):  # Django's cap on a body read into memory (DATA_UPLOAD_MAX_MEMORY_SIZE)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            {"detail": f"Request body is larger than {limit} bytes; split it into smaller requests.", "errors": {}},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, (BadRequest, SuspiciousOperation)):  # Django refusing what it was sent (too many fields)
        if isinstance(exc, SuspiciousOperation):  # logged where Django logs its own (the 400 itself: django.request)
            logging.getLogger(f"django.security.{type(exc).__name__}").warning("%s", exc)
        return Response({"detail": f"Bad request: {exc}", "errors": {}}, status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is None:
        request = context.get("request")
        request_id = getattr(getattr(request, "_request", request), "audit_request_id", "")
        logger.exception("unhandled error in API view (request %s)", request_id)
        return Response(
            {
                "detail": f"Internal error. It has been logged; quote request id {request_id} when reporting it.",
                "errors": {},
            },
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, ApiError):
        response.data = {"detail": str(exc.detail), "errors": _plain(exc.errors)}
    elif isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        response.data = {"detail": _first_message(errors), "errors": errors}
    else:
        data = response.data
        detail = data.get("detail", "") if isinstance(data, dict) else ""
        response.data = {"detail": str(detail) or _first_message(_field_errors(data)), "errors": {}}
    return response
