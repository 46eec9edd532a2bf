"""Matching over the API: candidates of a golden record, search before create, explain any two records.

- `GET  /api/v1/<domain>/<id>/candidates/`   golden records that may be the same as this one, best first
- `GET  /api/v1/<domain>/match/?field=value…` search before create: ranked candidates for a record not in the hub
- `POST /api/v1/<domain>/explain/`           `{"a": {...}, "b": {...}}`, each a `{"golden_id": ...}` or attributes

Every candidate carries its score (match probability), the band it falls in (link / review / no match), a
one-line reason and the per-field breakdown (value A, value B, comparison level, weight in bits). Reading needs
`read:<domain>`; values of personal fields are shown only with `read:personal`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from canonical.domains import DOMAINS, DomainSpec
from canonical.matching.base import Candidate, get_matcher
from canonical.matching.base import matcher_values as _matcher_values
from canonical.matching.definitions import get_definition
from canonical.models import SourceRecord, SourceStatus
from canonical.services.golden import golden_survivor_id, golden_values
from canonical.validation import validate_attributes

from .clients import SCOPE_PERSONAL, read_scope
from .errors import ApiError
from .permissions import has_scope
from .views import AuditedApiMixin

MAX_CANDIDATES = 50

_COMPARISON = inline_serializer(
    "FieldComparison",
    {
        "field": serializers.CharField(),
        "value_a": serializers.JSONField(allow_null=True),
        "value_b": serializers.JSONField(allow_null=True),
        "level": serializers.CharField(),
        "weight": serializers.FloatField(help_text="Evidence in bits: log2(m/u) of the level."),
    },
)
_CANDIDATE = inline_serializer(
    "MatchCandidate",
    {
        "golden_id": serializers.UUIDField(allow_null=True),
        "score": serializers.FloatField(help_text="Match probability, 0..1."),
        "band": serializers.ChoiceField(["link", "review", "no match"]),
        "reason": serializers.CharField(),
        "comparisons": _COMPARISON.__class__(many=True),
    },
)


def _band(domain: str, score: float) -> str:
    defn = get_definition(domain)
    if score >= defn.link_probability:
        return "link"
    if score >= defn.review_probability:
        return "review"
    return "no match"


def candidate_json(domain: str, candidate: Candidate, *, personal: bool) -> dict[str, Any]:
    hidden = set() if personal else get_definition(domain).personal
    return {
        "golden_id": str(candidate.golden_id) if candidate.golden_id else None,
        "score": candidate.score,
        "band": _band(domain, candidate.score),
        "reason": candidate.reason,
        "comparisons": [
            {
                "field": c.field,
                "value_a": None if c.field in hidden else c.value_a,
                "value_b": None if c.field in hidden else c.value_b,
                "level": c.level,
                "weight": c.weight,
            }
            for c in candidate.comparisons
        ],
    }


def _search(domain: str, values: dict, *, exclude_golden=None):
    """The matcher's outcome for `values`, without acting on it (no signal: nothing is decided here)."""
    matcher = get_matcher()
    search = getattr(matcher, "search", None)
    if search is not None:
        return search(domain=domain, values=values, exclude_golden=exclude_golden)
    return matcher.match(domain=domain, values=values)


def _attributes(spec: DomainSpec, data: Any, *, prefix: str = "") -> dict:
    """Validate attribute values as ingest would; a 400 naming each bad field otherwise."""
    if not isinstance(data, dict) or not data:
        raise ApiError(
            f'{prefix or "the record"} must be an object of {spec.name} fields or {{"golden_id": ...}}.',
            errors={prefix or "non_field_errors": [f"expected an object with some of: {', '.join(spec.field_names)}"]},
        )
    unknown = sorted(k for k in data if spec.get(k) is None)
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ApiError(
            f"Unknown {spec.name} field(s): {', '.join(unknown)}.",
            errors={key: [f"not a {spec.name} field; expected some of: {', '.join(spec.field_names)}"]},
        )
    refs = {f.name for f in spec.ref_fields}
    plain = {k: v for k, v in data.items() if k not in refs}
    values, errors = validate_attributes(spec, plain, system="api")
    for name in refs & set(data):
        raw = data[name]
        raw = raw.get("golden_id") if isinstance(raw, dict) else raw
        try:
            values[name] = str(uuid.UUID(str(raw))) if raw not in (None, "") else None
        except ValueError:
            errors.setdefault(name, []).append("a reference here is a golden id (UUID)")
    if errors:
        named = {f"{prefix}.{k}" if prefix else k: v for k, v in errors.items()}
        first = next(iter(named.items()))
        raise ApiError(f"{first[0]}: {first[1][0]}", errors=named)
    return values


def _golden_values(spec: DomainSpec, raw_id: Any, *, field: str) -> tuple[uuid.UUID, dict]:
    try:
        pk = uuid.UUID(str(raw_id))
    except ValueError:
        raise ApiError(f"{field}: not a golden id.", errors={field: [f"'{str(raw_id)[:100]}' is not a UUID"]})
    survivor = golden_survivor_id(spec.name, pk)
    record = spec.model.objects.filter(pk=survivor).first() if survivor else None
    if record is None:
        raise ApiError(
            f"No {spec.name} with id {pk}.", status_code=404, code="not_found", errors={field: ["not found"]}
        )
    return record.pk, golden_values(record)


class _DomainView(AuditedApiMixin, APIView):
    spec: DomainSpec

    def get_required_scopes(self, request) -> set[str]:
        return {read_scope(self.spec.name)}

    def personal(self, request) -> bool:
        return has_scope(request, SCOPE_PERSONAL)


_MAX_SEARCHES = 50


class CandidatesView(_DomainView):
    """Golden records that may be the same as this one, best first, each with its explanation."""

    @extend_schema(
        parameters=[OpenApiParameter("limit", OpenApiTypes.INT, description=f"at most {MAX_CANDIDATES}")],
        responses={
            200: inline_serializer(
                "Candidates", {"golden_id": serializers.UUIDField(), "candidates": _CANDIDATE.__class__(many=True)}
            )
        },
    )
    def get(self, request, pk: str):
        spec = self.spec
        golden_id, _ = _golden_values(spec, pk, field="id")
        limit = _limit(request)
        best: dict[uuid.UUID, Candidate] = {}
        sources = SourceRecord.objects.filter(
            domain=spec.name, golden_id=golden_id, status=SourceStatus.APPLIED, deleted=False
        ).order_by("-updated_at", "-pk")
        # One search per distinct set of values (sources that say the same thing find the same candidates), the
        # most recently updated first, at most _MAX_SEARCHES of them: a golden record with hundreds of sources
        # took seconds per hundred.
        searches: dict[str, dict] = {}
        for sr in sources.iterator(chunk_size=200):
            values = _matcher_values(spec, sr.values)
            searches.setdefault(json.dumps(values, sort_keys=True, default=str), values)
            if len(searches) >= _MAX_SEARCHES:
                break
        for values in searches.values():
            outcome = _search(spec.name, values, exclude_golden=golden_id)
            for candidate in outcome.candidates:
                if candidate.golden_id == golden_id or candidate.golden_id is None:
                    continue
                held = best.get(candidate.golden_id)
                if held is None or candidate.score > held.score:
                    best[candidate.golden_id] = candidate
        ranked = sorted(best.values(), key=lambda c: (-c.score, str(c.golden_id)))[:limit]
        personal = self.personal(request)
        return Response(
            {
                "golden_id": str(golden_id),
                "candidates": [candidate_json(spec.name, c, personal=personal) for c in ranked],
            }
        )


class SearchView(_DomainView):
    """Search before create: what the hub would do with this record, and the ranked candidates it considered."""

    @extend_schema(
        parameters=[OpenApiParameter("limit", OpenApiTypes.INT, description=f"at most {MAX_CANDIDATES}")],
        description="Pass the record's canonical fields as query parameters, e.g. ?name=Acme&country=DE.",
        responses={
            200: inline_serializer(
                "MatchSearch",
                {
                    "decision": serializers.ChoiceField(["link", "review", "new"]),
                    "golden_id": serializers.UUIDField(allow_null=True),
                    "reason": serializers.CharField(),
                    "candidates": _CANDIDATE.__class__(many=True),
                },
            )
        },
    )
    def get(self, request):
        spec = self.spec
        data = {k: v for k, v in request.query_params.items() if k != "limit"}
        if not data:
            raise ApiError(
                f"Give the record's fields as query parameters, e.g. ?{spec.field_names[0]}=….",
                errors={"non_field_errors": [f"expected some of: {', '.join(spec.field_names)}"]},
            )
        values = _attributes(spec, data)
        outcome = _search(spec.name, values)
        personal = self.personal(request)
        candidates = [c for c in outcome.candidates if c.golden_id is not None][: _limit(request)]
        return Response(
            {
                "decision": outcome.decision,
                "golden_id": str(outcome.golden_id) if outcome.golden_id else None,
                "reason": outcome.reason,
                "candidates": [candidate_json(spec.name, c, personal=personal) for c in candidates],
            }
        )


class ExplainView(_DomainView):
    """Score any two records against each other, field by field."""

    @extend_schema(
        request=inline_serializer(
            "ExplainRequest",
            {
                "a": serializers.JSONField(help_text='{"golden_id": ...} or an object of canonical fields'),
                "b": serializers.JSONField(help_text='{"golden_id": ...} or an object of canonical fields'),
            },
        ),
        responses={200: _CANDIDATE},
    )
    def post(self, request):
        spec = self.spec
        body = request.data
        if not isinstance(body, dict) or "a" not in body or "b" not in body:
            raise ApiError(
                'Send {"a": ..., "b": ...}: each a {"golden_id": ...} or an object of canonical fields.',
                errors={
                    k: ["this field is required"] for k in ("a", "b") if not isinstance(body, dict) or k not in body
                },
            )
        unknown = sorted(set(body) - {"a", "b"})
        if unknown:
            raise ApiError(f"Unknown key(s): {', '.join(unknown)}.", errors={unknown[0]: ["expected only a and b"]})
        sides = {}
        ids = {}
        for side in ("a", "b"):
            item = body[side]
            if isinstance(item, dict) and "golden_id" in item:
                if len(item) > 1:
                    raise ApiError(
                        f"{side}: give either a golden_id or fields, not both.",
                        errors={side: ['either {"golden_id": ...} or canonical fields']},
                    )
                ids[side], sides[side] = _golden_values(spec, item["golden_id"], field=f"{side}.golden_id")
            else:
                sides[side] = _attributes(spec, item, prefix=side)
        explained = get_matcher().explain(domain=spec.name, values_a=sides["a"], values_b=sides["b"])
        data = candidate_json(spec.name, explained, personal=self.personal(request))
        data["golden_id"] = None
        data["a"] = {"golden_id": str(ids["a"])} if "a" in ids else None
        data["b"] = {"golden_id": str(ids["b"])} if "b" in ids else None
        return Response(data)


def _limit(request) -> int:
    raw = request.query_params.get("limit")
    if raw in (None, ""):
        return 10
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_CANDIDATES:
        raise ApiError(
            f"limit must be between 1 and {MAX_CANDIDATES}.", errors={"limit": [f"'{raw[:20]}' is not allowed"]}
        )
    return value


def _views(spec: DomainSpec) -> list:
    name = spec.url_name
    camel = "".join(part.title() for part in spec.name.split("_"))
    made = {
        cls: type(f"{camel}{cls.__name__}", (cls,), {"spec": spec}) for cls in (CandidatesView, SearchView, ExplainView)
    }
    return [
        path(f"{name}/match/", made[SearchView].as_view(), name=f"{name}-match"),
        path(f"{name}/explain/", made[ExplainView].as_view(), name=f"{name}-explain"),
        path(f"{name}/<str:pk>/candidates/", made[CandidatesView].as_view(), name=f"{name}-candidates"),
    ]


urlpatterns = [route for spec in DOMAINS.values() for route in _views(spec)]
