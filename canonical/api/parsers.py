"""A JSON parser that never turns a number into a float.

Numbers with a fraction or exponent are read as `Decimal` and handed on as their exact decimal string
(`1234.10` stays "1234.10"): money is decimal, never float, and the validator accepts strings.
NaN/Infinity, over-deep nesting and bodies over MDM_API_MAX_BODY_BYTES are refused with a 400/413.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

from canonical.validation import refuse_json_constant, text_problem

from .errors import ApiError

DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024


def decimals_to_str(value: Any) -> Any:
    """Decimals → exact strings; refuse NUL characters and lone surrogates (no database can store them)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise exceptions.ParseError(f"A JSON string {problem}.")
        return value
    if isinstance(value, dict):
        return {decimals_to_str(k): decimals_to_str(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decimals_to_str(v) for v in value]
    return value


class DecimalJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = getattr(settings, "MDM_API_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise ApiError(
                f"Request body is larger than {limit} bytes; split it into smaller requests.", status_code=413
            )
        try:
            text = raw.decode(encoding)  # text encodings only: LookupError for charset=zlib, bz2, rot13
            data = json.loads(text, parse_float=Decimal, parse_constant=refuse_json_constant)
            return decimals_to_str(data)
        except (ValueError, UnicodeDecodeError, LookupError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}")
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply")
