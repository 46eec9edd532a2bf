"""The read API for golden records, cross-reference resolution and ingest, under /api/v1/.

Golden-record viewsets are generated from canonical.domains.DOMAINS (one per domain, same behaviour).

Reading a merged record: `GET /api/v1/<domain>/<id>/` of a record that was merged answers 200 with the
*survivor's* representation (its own `id`) and a `Content-Location` header naming the survivor's URL.
`/history/` of a merged record is that record's own history (it is not followed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from contextlib import ExitStack

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status as http
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.response import Response
from rest_framework.views import APIView

from canonical.audit import Channel, audit_context, new_request_id
from canonical.domains import DOMAINS, DomainSpec
from canonical.models import CrossReference, GoldenStatus, IdempotencyKey, System
from canonical.services.golden import golden_survivor_id, to_json
from canonical.services.ingest import EnvelopeError, envelope_parse, source_records_ingest

from .auth import django_user_detach
from .clients import SCOPE_INGEST, SCOPE_PERSONAL, read_scope
from .errors import ApiError
from .fetch import golden_fetch
from .filters import BoundedSearchFilter, golden_filterset
from .pagination import GoldenCursorPagination
from .parsers import DecimalJSONParser
from .permissions import has_scope, request_actor, request_client
from .serializers import (
    ErrorSerializer,
    HistorySerializer,
    IngestRecordSerializer,
    IngestResponseSerializer,
    XrefResolveQuerySerializer,
    XrefResolveSerializer,
    golden_representer,
    golden_serializer,
)

MAX_INGEST_OBJECTS = 1000
_SAFE_TOKEN = re.compile(r"^[\x21-\x7e]{1,255}\Z")  # printable ASCII, no spaces: request ids, idempotency keys
_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,64}\Z")
_MAX_MERGE_DEPTH = 50
_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Bad input, with field messages."),
    401: OpenApiResponse(ErrorSerializer, description="No or invalid API key."),
    403: OpenApiResponse(ErrorSerializer, description="The key lacks a scope."),
    404: OpenApiResponse(ErrorSerializer, description="Not found."),
}


class AuditedApiMixin:
    """Attribute every change made while handling an authenticated request to the API client (or user).

    Re-enters `audit_context(actor="client:<name>" | username, channel="api", request_id=<middleware's>)`
    after authentication, and leaves it when the response is finalised.
    """

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        django_user_detach(request)
        stack = ExitStack()
        stack.enter_context(
            audit_context(
                actor=request_actor(request),
                channel=Channel.API,
                request_id=api_request_id(request),
                user=request.user if request_client(request) is None else None,
            )
        )
        self._audit_stack = stack

    def finalize_response(self, request, response, *args, **kwargs):
        stack = self.__dict__.pop("_audit_stack", None)
        if stack is not None:
            stack.close()
        return super().finalize_response(request, response, *args, **kwargs)


def api_request_id(request) -> str:
    """The middleware's request id when it is a printable token (it comes from a header), else a new one."""
    rid = getattr(request._request, "audit_request_id", "") or ""
    return rid[:64] if _SAFE_TOKEN.match(rid) else new_request_id()


def _not_found(spec: DomainSpec, pk) -> ApiError:
    return ApiError(f"No {spec.name} with id {pk}.", status_code=404, code="not_found")


def _parse_uuid(spec: DomainSpec, value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ApiError(f"No {spec.name} with id {value[:100]!r}: ids are UUIDs.", status_code=404, code="not_found")


def parse_as_of(value: str) -> dt.datetime:
    text = value.strip()
    # A "+" in a query string arrives as a space: "2024-05-01T10:00:00 02:00".
    text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", text)
    try:
        parsed = parse_datetime(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ApiError(
            "as_of must be an ISO 8601 date-time.",
            errors={"as_of": [f"'{value[:100]}' is not an ISO 8601 date-time, e.g. 2024-05-01T12:00:00Z"]},
        )
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)  # PostgreSQL refuses offsets past ±15:59, which Python reads
    except OverflowError:
        raise ApiError(
            "as_of must be an ISO 8601 date-time.",
            errors={"as_of": [f"'{value[:100]}' is before the year 1 or after 9999 in UTC"]},
        ) from None


def xrefs_by_golden(domain: str, golden_ids: list) -> dict:
    """{golden_id: [{system, source_id}]} for a page of records, in one query."""
    out: dict = {}
    rows = (
        CrossReference.objects.filter(domain=domain, golden_id__in=golden_ids)
        .order_by("system_id", "source_id")
        .values_list("golden_id", "system_id", "source_id")
    )
    for golden_id, system, source_id in rows:
        out.setdefault(golden_id, []).append({"system": system, "source_id": source_id})
    return out


def xrefs_as_of(domain: str, golden_id: uuid.UUID, when: dt.datetime) -> dict:
    """The cross-references that pointed at a golden record at a past time (from their history)."""
    model = CrossReference.history.model
    ids = set(
        model.objects.filter(domain=domain, golden_id=golden_id, history_date__lte=when).values_list("id", flat=True)
    )
    found = []
    latest = {}
    for row in model.objects.filter(id__in=ids, history_date__lte=when).order_by("history_date", "history_id"):
        latest[row.id] = row
    for row in latest.values():
        if row.history_type != "-" and row.golden_id == golden_id:
            found.append({"system": row.system_id, "source_id": row.source_id})
    return {golden_id: sorted(found, key=lambda x: (x["system"], x["source_id"]))}


def _etag(data: dict) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:20]
    return f'W/"v{data.get("version")}-{digest}"'


def _etag_matches(header: str, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


class GoldenRecordViewSet(AuditedApiMixin, viewsets.ReadOnlyModelViewSet):
    """List and read golden records of one domain (subclassed per domain by `golden_viewset`)."""

    spec: DomainSpec
    pagination_class = GoldenCursorPagination
    lookup_value_regex = "[^/]+"  # any id reaches the view, which answers a JSON 404 for a non-UUID
    filter_backends = [DjangoFilterBackend, BoundedSearchFilter, OrderingFilter]
    ordering = ("-updated_at", "id")

    def get_required_scopes(self, request) -> set[str]:
        return {read_scope(self.spec.name)}

    def get_queryset(self):
        queryset = self.spec.model.objects.select_related(*[f.name for f in self.spec.ref_fields])
        if self.action == "list" and "status" not in self.request.query_params:
            queryset = queryset.exclude(status=GoldenStatus.MERGED)
        return queryset

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["personal"] = has_scope(self.request, SCOPE_PERSONAL)
        return context

    def _serialize(self, records, *, xrefs: dict, many: bool = False):
        context = {**self.get_serializer_context(), "xrefs": xrefs}
        return self.get_serializer_class()(records, many=many, context=context).data

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        records = list(page)
        data = self._serialize(records, xrefs=xrefs_by_golden(self.spec.name, [r.pk for r in records]), many=True)
        return self.get_paginated_response(data)

    def _detail_url(self, pk) -> str:
        return reverse(f"{self.spec.url_name}-detail", kwargs={"pk": str(pk)})

    def retrieve(self, request, *args, **kwargs):
        pk = _parse_uuid(self.spec, kwargs["pk"])
        as_of = request.query_params.get("as_of")
        if as_of is not None:
            return self._retrieve_as_of(pk, parse_as_of(as_of))
        domain = self.spec.name
        record, xrefs = golden_fetch(domain, pk)
        if record is None:
            raise _not_found(self.spec, pk)
        survivor_id = record.pk
        if record.status == GoldenStatus.MERGED and record.merged_into_id:
            survivor_id = golden_survivor_id(domain, record.merged_into_id)
            record, xrefs = golden_fetch(domain, survivor_id) if survivor_id else (None, None)
            if record is None:
                raise _not_found(self.spec, pk)
        if xrefs is None:
            xrefs = xrefs_by_golden(domain, [record.pk]).get(record.pk, [])
        data = golden_representer(domain, has_scope(request, SCOPE_PERSONAL))(record, xrefs)
        etag = _etag(data)
        headers = {"ETag": etag}
        if survivor_id != pk:
            headers["Content-Location"] = self._detail_url(survivor_id)
        if _etag_matches(request.META.get("HTTP_IF_NONE_MATCH", ""), etag):
            return Response(status=http.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(data, headers=headers)

    def _retrieve_as_of(self, pk: uuid.UUID, when: dt.datetime) -> Response:
        history = self.spec.model.history.model
        current = pk
        for _ in range(_MAX_MERGE_DEPTH):
            row = history.objects.filter(id=current, history_date__lte=when).order_by("-history_date", "-history_id")
            row = row.first()
            if row is None or row.history_type == "-":
                if current == pk:
                    exists = self.spec.model.objects.filter(pk=pk).exists() or history.objects.filter(id=pk).exists()
                    if not exists:
                        raise _not_found(self.spec, pk)
                raise ApiError(
                    f"The {self.spec.name} {pk} did not exist yet at {when.isoformat()}.",
                    status_code=404,
                    code="not_found",
                )
            if row.status == GoldenStatus.MERGED and row.merged_into_id:
                current = row.merged_into_id
                continue
            break
        data = self._serialize(row.instance, xrefs=xrefs_as_of(self.spec.name, current, when))
        stamp = when.isoformat().replace("+00:00", "Z")  # in UTC (parse_as_of): no "+" to escape in the URL
        headers = {"Content-Location": self._detail_url(current) + f"?as_of={stamp}"}
        return Response({**data, "as_of": stamp}, headers=headers)

    @action(detail=True, methods=["get"])
    def history(self, request, *args, **kwargs):
        pk = _parse_uuid(self.spec, kwargs["pk"])
        history = self.spec.model.history.model
        rows = list(history.objects.filter(id=pk).select_related("history_user").order_by("history_date", "history_id"))
        if not rows:
            raise _not_found(self.spec, pk)
        personal = has_scope(request, SCOPE_PERSONAL)
        fields = [f for f in self.spec.fields if personal or not f.personal]
        entries = []
        previous: dict | None = None
        for row in rows:
            values = {"status": row.status, "merged_into": to_json(row.merged_into_id)}
            for f in fields:
                values[f.name] = to_json(getattr(row, f"{f.name}_id" if f.kind == "ref" else f.name))
            if previous is None:
                changes = {k: {"old": None, "new": v} for k, v in values.items() if v not in (None, "", [])}
            else:
                changes = {k: {"old": previous.get(k), "new": v} for k, v in values.items() if previous.get(k) != v}
            previous = values
            entries.append(
                {
                    "history_id": row.history_id,
                    "version": row.version,
                    "history_date": row.history_date,
                    "type": row.history_type,
                    "actor": row.history_actor,
                    "channel": row.history_channel,
                    "request_id": row.history_request_id,
                    "reason": row.history_change_reason,
                    "user": row.history_user.get_username() if row.history_user else None,
                    "changes": changes,
                }
            )
        entries.reverse()
        return Response({"domain": self.spec.name, "id": str(pk), "count": len(entries), "results": entries})


def golden_viewset(spec: DomainSpec) -> type[GoldenRecordViewSet]:
    """The viewset of one domain: its serializer, filters, search and ordering fields, schema tag."""
    label = spec.name.replace("_", " ")
    ordering_fields = ["updated_at", "created_at", "version"] + [
        name for name in spec.title_fields if spec.get(name).required
    ]
    as_of = OpenApiParameter(
        "as_of",
        OpenApiTypes.DATETIME,
        description="Read the record as it was at this time (ISO 8601). 404 if it did not exist yet.",
    )
    personal = " Personal fields need the read:personal scope." if any(f.personal for f in spec.fields) else ""
    view = type(
        f"{spec.model_name}ViewSet",
        (GoldenRecordViewSet,),
        {
            "spec": spec,
            "queryset": spec.model.objects.all(),
            "serializer_class": golden_serializer(spec.name),
            "filterset_class": golden_filterset(spec.name),
            "search_fields": list(spec.title_fields),
            "ordering_fields": ordering_fields,
            "__module__": __name__,
            "__doc__": f"Golden {label} records (scope read:{spec.name}).{personal}",
        },
    )
    return extend_schema_view(
        list=extend_schema(
            tags=[spec.url_name],
            summary=f"List {label} golden records",
            description="Filters, `search` on "
            + ", ".join(spec.title_fields)
            + ", `ordering`, cursor pagination. Merged records are left out unless `status=merged`."
            + personal,
            responses={200: golden_serializer(spec.name)(many=True), **_ERRORS},
        ),
        retrieve=extend_schema(
            tags=[spec.url_name],
            summary=f"Read a {label} golden record",
            description="A merged record answers with its survivor (200, Content-Location: the survivor's URL). "
            "ETag on every answer; If-None-Match → 304." + personal,
            parameters=[as_of],
            responses={200: golden_serializer(spec.name), 304: OpenApiResponse(description="Not modified."), **_ERRORS},
        ),
        history=extend_schema(
            tags=[spec.url_name],
            summary=f"History of a {label} golden record",
            description="One entry per history row, newest first, with who/through what/why and the changed "
            "fields (old → new).",
            filters=False,
            responses={200: HistorySerializer, **_ERRORS},
        ),
    )(view)


VIEWSETS = {name: golden_viewset(spec) for name, spec in DOMAINS.items()}


# --- cross-reference resolution -----------------------------------------------------------------------------


class XrefResolveView(AuditedApiMixin, APIView):
    """Which golden record does a system's id stand for? Leads to the survivor when the record was merged."""

    def get_required_scopes(self, request) -> set[str]:
        domain = request.query_params.get("domain")
        return {read_scope(domain)} if domain in DOMAINS else set()

    @extend_schema(
        tags=["xrefs"],
        summary="Resolve a system's id to its golden record",
        parameters=[XrefResolveQuerySerializer],
        responses={200: XrefResolveSerializer, **_ERRORS},
    )
    def get(self, request):
        query = XrefResolveQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        system, domain, source_id = (query.validated_data[k] for k in ("system", "domain", "source_id"))
        if not System.objects.filter(code=system).exists():
            known = ", ".join(System.objects.values_list("code", flat=True))
            raise ApiError(f"Unknown system {system!r}.", errors={"system": [f"unknown system; known: {known}"]})
        xref = CrossReference.objects.filter(system_id=system, domain=domain, source_id=source_id).first()
        if xref is None:
            raise ApiError(
                f"The hub knows no {domain} with source_id {source_id!r} in system {system!r}.",
                status_code=404,
                code="not_found",
            )
        spec = DOMAINS[domain]
        survivor_id = golden_survivor_id(domain, xref.golden_id)
        record = (
            spec.model.objects.select_related(*[f.name for f in spec.ref_fields]).filter(pk=survivor_id).first()
            if survivor_id
            else None
        )
        if record is None:
            raise ApiError(
                f"The cross-reference points at {domain} {xref.golden_id}, which no longer exists.",
                status_code=404,
                code="not_found",
            )
        context = {
            "request": request,
            "personal": has_scope(request, SCOPE_PERSONAL),
            "xrefs": xrefs_by_golden(domain, [record.pk]),
        }
        url = reverse(f"{spec.url_name}-detail", kwargs={"pk": str(record.pk)})
        return Response(
            {
                "domain": domain,
                "id": str(record.pk),
                "xref": {"system": system, "source_id": source_id, "golden_id": str(xref.golden_id)},
                "merged": record.pk != xref.golden_id,
                "url": request.build_absolute_uri(url),
                "record": golden_serializer(domain)(record, context=context).data,
            },
            headers={"Content-Location": url},
        )


# --- ingest -------------------------------------------------------------------------------------------------


def _request_hash(system: str, domain: str, data) -> str:
    blob = json.dumps({"s": system, "d": domain, "b": data}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class IngestView(AuditedApiMixin, APIView):
    """Hand the hub source records as their owning system (scope `ingest`, the key's own system only)."""

    required_scopes = {SCOPE_INGEST}
    parser_classes = [DecimalJSONParser]

    @extend_schema(
        tags=["ingest"],
        summary="Ingest source records",
        description=(
            "One object or a list of at most 1000. Every object is checked first: if any is malformed the "
            "answer is 400 with errors per index and nothing is written. Otherwise each record goes through "
            "the pipeline and the answer lists its outcome. Send money as strings (numbers are read as exact "
            "decimals too). `Idempotency-Key`: the same key with the same body replays the stored answer "
            "(header `Idempotent-Replayed: true`); with a different body → 422."
        ),
        parameters=[
            OpenApiParameter("system", OpenApiTypes.STR, OpenApiParameter.PATH),
            OpenApiParameter("domain", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(DOMAINS)),
            OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER),
        ],
        request=IngestRecordSerializer(many=True),
        responses={
            200: IngestResponseSerializer,
            413: OpenApiResponse(ErrorSerializer, description="Body too large."),
            422: OpenApiResponse(ErrorSerializer, description="Idempotency-Key reused with another body."),
            **_ERRORS,
        },
    )
    def post(self, request, system: str, domain: str):
        system_obj = System.objects.filter(code=system).first() if _SLUG.match(system) else None
        if system_obj is None:
            known = ", ".join(System.objects.values_list("code", flat=True))
            raise ApiError(f"Unknown system {system[:64]!r}; known systems: {known}.", status_code=404)
        if domain not in DOMAINS:
            raise ApiError(f"Unknown domain {domain[:64]!r}; domains: {', '.join(DOMAINS)}.", status_code=404)
        client = request_client(request)
        if client is not None and client.system_id != system_obj.code:
            own = f"system {client.system_id!r}" if client.system_id else "no system"
            raise ApiError(
                f"This key ingests only as its own system ({own}), not as {system_obj.code!r}.", status_code=403
            )
        if not system_obj.is_active:
            raise ApiError(
                f"System {system_obj.code!r} is inactive; an administrator can reactivate it.", status_code=403
            )

        key = request.headers.get("Idempotency-Key")
        if key is not None:
            key = key.strip()
            if not _SAFE_TOKEN.match(key):
                raise ApiError(
                    "Idempotency-Key must be 1-255 printable ASCII characters without spaces.",
                    errors={"Idempotency-Key": ["must be 1-255 printable ASCII characters without spaces"]},
                )
        data = request.data
        client_name = request_actor(request)
        request_hash = _request_hash(system_obj.code, domain, data) if key else ""
        if key:
            replay = self._replay(client_name, key, request_hash)
            if replay is not None:
                return replay

        envelopes = self._parse(data, DOMAINS[domain])
        try:
            with transaction.atomic():
                with audit_context(
                    actor=client_name,
                    channel=Channel.API,
                    request_id=api_request_id(request),
                    reason=f"ingest of {len(envelopes)} {domain} record(s) from {system_obj.code} over the API",
                ):
                    results = source_records_ingest(system=system_obj, domain=domain, envelopes=envelopes)
                body = self._body(system_obj.code, domain, results)
                if key:
                    IdempotencyKey.objects.create(
                        client_name=client_name, key=key, request_hash=request_hash, status_code=200, response=body
                    )
        except IntegrityError:
            # The same key committed by a concurrent request in the meantime: ours was rolled back whole.
            replay = self._replay(client_name, key, request_hash) if key else None
            if replay is None:
                raise
            return replay
        return Response(body, status=http.HTTP_200_OK)

    def _replay(self, client_name: str, key: str, request_hash: str) -> Response | None:
        stored = IdempotencyKey.objects.filter(client_name=client_name, key=key).first()
        if stored is None:
            return None
        if stored.request_hash != request_hash:
            raise ApiError(
                "This Idempotency-Key was used with a different request body; use a new key for a new request.",
                status_code=422,
                errors={"Idempotency-Key": ["already used with a different body"]},
            )
        return Response(stored.response, status=stored.status_code, headers={"Idempotent-Replayed": "true"})

    @staticmethod
    def _parse(data, spec: DomainSpec) -> list:
        if isinstance(data, dict):
            items = [data]
        elif isinstance(data, list):
            items = data
        else:
            raise ApiError(
                "Send one source-record object or a list of them.",
                errors={"non_field_errors": ["expected an object or a list of objects"]},
            )
        if not items:
            raise ApiError(
                "The list is empty: send at least one source record.", errors={"non_field_errors": ["empty"]}
            )
        if len(items) > MAX_INGEST_OBJECTS:
            raise ApiError(
                f"{len(items)} objects in one request; at most {MAX_INGEST_OBJECTS} are accepted: split the batch.",
                errors={"non_field_errors": [f"at most {MAX_INGEST_OBJECTS} objects per request"]},
            )
        envelopes, errors = [], {}
        for index, item in enumerate(items):
            try:
                envelopes.append(envelope_parse(item, spec=spec))
            except EnvelopeError as exc:
                errors[str(index)] = exc.errors
        if errors:
            first = next(iter(errors))
            raise ApiError(
                f"{len(errors)} of {len(items)} object(s) malformed (first: index {first}); nothing was written.",
                errors=errors,
            )
        return envelopes

    @staticmethod
    def _body(system: str, domain: str, results) -> dict:
        counts: dict[str, int] = {}
        for result in results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        return {
            "system": system,
            "domain": domain,
            "count": len(results),
            "counts": counts,
            "results": [result.as_dict() for result in results],
        }
