"""Steward actions over the API (scope `steward`): merge, unmerge, the review queue and the exception queues.

Views only check the shape of the input and call the services in stewardship.services; a service's
StewardshipError becomes a 4xx with its field messages. Each service enters its own audit context (channel
`steward`, actor = the user or `client:<name>`, the reason given), inside the request's id.
"""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.db.models import BigIntegerField
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from canonical.api.auth import ApiClientPrincipal, django_user_detach
from canonical.api.clients import SCOPE_PERSONAL, SCOPE_STEWARD
from canonical.api.errors import ApiError
from canonical.api.permissions import has_scope
from canonical.domains import DOMAINS, DomainSpec
from canonical.models import DataException, SourceRecord
from canonical.services.golden import golden_values
from stewardship.models import ReviewTask
from stewardship.roles import require_decide
from stewardship.services.common import StewardshipError
from stewardship.services.data_exceptions import (
    data_exception_assign,
    data_exception_ignore,
    data_exception_resolve,
    data_exception_retry,
)
from stewardship.services.merge import golden_record_merge, golden_record_unmerge
from stewardship.services.reviews import (
    review_task_assign,
    review_task_defer,
    review_task_merge,
    review_task_not_a_match,
    review_tasks_bulk_accept,
)

from . import serializers as s
from .filters import DataExceptionFilterSet, ReviewTaskFilterSet

_ERRORS = {
    400: OpenApiResponse(description="Bad input, with field messages."),
    401: OpenApiResponse(description="No or invalid API key."),
    403: OpenApiResponse(description="The key lacks the steward scope."),
    404: OpenApiResponse(description="Not found."),
}


def _an_id(value) -> bool:
    """A row id in a URL: ASCII digits only ('²' is a digit to str.isdigit, not to int()), within a bigint (a larger
    number in a look-up by `pk__in` was a database error: a 500)."""
    text = str(value)
    return text.isascii() and text.isdigit() and int(text) <= BigIntegerField.MAX_BIGINT


def _first(errors: dict) -> str:
    for name, messages in errors.items():
        if messages:
            return f"{name}: {messages[0]}"
    return "Invalid input."


class QueuePagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class StewardApiMixin:
    """Scope `steward`; service errors → ApiError; the request id carried into the services' audit context."""

    required_scopes = {SCOPE_STEWARD}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        django_user_detach(request)

    def guard(self, *domains: str) -> None:
        """A person signed in to the admin decides only in the domains their steward groups cover (403 otherwise);
        an API client's `steward` scope covers every domain."""
        if isinstance(self.request.user, ApiClientPrincipal):
            return
        for domain in set(domains) or {""}:
            require_decide(self.request.user, domain)

    def call(self, service, **kwargs):
        # The service enters its own audit context (channel steward, this user or client, the reason); the
        # request id is inherited from the context the middleware opened for this request.
        try:
            return service(user=self.request.user, **kwargs)
        except StewardshipError as exc:
            raise ApiError(_first(exc.errors), status_code=exc.status_code, errors=exc.errors)

    def valid(self, serializer_class):
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def user_by_name(self, username):
        if username is None:
            return None
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise ApiError(f"No active user {username!r}.", errors={"assignee": [f"no active user {username!r}"]})
        return user


def _domain_spec(url_name: str) -> DomainSpec:
    for spec in DOMAINS.values():
        if spec.url_name == url_name:
            return spec
    raise ApiError(f"No domain at /{url_name}/.", status_code=404, code="not_found")


def _golden_id(spec: DomainSpec, value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(f"No {spec.name} with id {value[:100]!r}: ids are UUIDs.", status_code=404, code="not_found")


def _golden_json(request, spec: DomainSpec, golden_id: uuid.UUID) -> dict:
    record = spec.model.objects.get(pk=golden_id)
    values = golden_values(record)
    if not has_scope(request, SCOPE_PERSONAL):
        values = {k: v for k, v in values.items() if not spec.get(k).personal}
    return {"id": str(record.pk), "status": record.status, "version": record.version, **values}


class GoldenMergeView(StewardApiMixin, APIView):
    """Merge other golden records into this one (the survivor)."""

    @extend_schema(
        tags=["stewardship"],
        summary="Merge golden records into this one",
        request=s.MergeInputSerializer,
        responses={200: s.MergeResultSerializer, **_ERRORS},
    )
    def post(self, request, url_name: str, pk: str):
        spec = _domain_spec(url_name)
        self.guard(spec.name)
        survivor = _golden_id(spec, pk)
        data = self.valid(s.MergeInputSerializer)
        decision = self.call(
            golden_record_merge,
            domain=spec.name,
            survivor_id=survivor,
            other_ids=data["others"],
            reason=data["reason"],
            field_choices=data.get("field_choices"),
            allow_not_a_match=data["allow_not_a_match"],
        )
        return Response(
            {
                "merge_id": decision.pk,
                "domain": spec.name,
                "survivor_id": str(decision.survivor_id),
                "retired_ids": decision.retired_ids,
                "survivor": _golden_json(request, spec, decision.survivor_id),
            }
        )


class GoldenUnmergeView(StewardApiMixin, APIView):
    """Split one source record out of this golden record."""

    @extend_schema(
        tags=["stewardship"],
        summary="Split a source record out of this golden record",
        request=s.UnmergeInputSerializer,
        responses={200: s.UnmergeResultSerializer, **_ERRORS},
    )
    def post(self, request, url_name: str, pk: str):
        spec = _domain_spec(url_name)
        self.guard(spec.name)
        golden_id = _golden_id(spec, pk)
        if not spec.model.objects.filter(pk=golden_id).exists():
            raise ApiError(f"No {spec.name} with id {golden_id}.", status_code=404, code="not_found")
        data = self.valid(s.UnmergeInputSerializer)
        ref = data["source_record"]
        if isinstance(ref, dict):
            pk_ = (
                SourceRecord.objects.filter(domain=spec.name, system_id=ref["system"], source_id=ref["source_id"])
                .values_list("pk", flat=True)
                .first()
            )
            if pk_ is None:
                msg = f"no {spec.name} source record {ref['system']}:{ref['source_id']}"
                raise ApiError(msg, errors={"source_record": [msg]})
            ref = pk_
        current = SourceRecord.objects.filter(pk=ref).values_list("golden_id", flat=True).first()
        if current is not None and current != golden_id:
            msg = f"source record {ref} belongs to {current}, not to {golden_id}"
            raise ApiError(msg, errors={"source_record": [msg]})
        result = self.call(golden_record_unmerge, domain=spec.name, source_record_id=ref, reason=data["reason"])
        return Response(
            {
                "domain": spec.name,
                "source_record": ref,
                "golden_id": str(result.golden_id),
                "from_golden_id": str(result.from_golden_id),
                "restored": result.restored,
                "created": result.created,
                "moved_references": result.moved_references,
            }
        )


class ReviewTaskViewSet(StewardApiMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The review queue: tasks ordered by priority (score band), then age; decide them with the actions."""

    serializer_class = s.ReviewTaskSerializer
    pagination_class = QueuePagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = ReviewTaskFilterSet

    def get_queryset(self):
        return ReviewTask.objects.select_related("source_record", "assignee").order_by("-priority", "created_at", "id")

    def guard_task(self, *pks) -> None:
        self.guard(*ReviewTask.objects.filter(pk__in=[p for p in pks if _an_id(p)]).values_list("domain", flat=True))

    def _task(self, pk) -> Response:
        return Response(s.ReviewTaskSerializer(ReviewTask.objects.get(pk=pk)).data)

    @extend_schema(request=s.ReviewMergeInputSerializer, responses={200: s.MergeResultSerializer, **_ERRORS})
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        self.guard_task(pk)
        data = self.valid(s.ReviewMergeInputSerializer)
        decision = self.call(
            review_task_merge,
            task_id=pk,
            reason=data["reason"],
            candidate_ids=data.get("candidates"),
            survivor_id=data.get("survivor_id"),
            field_choices=data.get("field_choices"),
        )
        spec = DOMAINS[decision.domain]
        return Response(
            {
                "merge_id": decision.pk,
                "domain": decision.domain,
                "survivor_id": str(decision.survivor_id),
                "retired_ids": decision.retired_ids,
                "survivor": _golden_json(request, spec, decision.survivor_id),
            }
        )

    @extend_schema(request=s.NotAMatchInputSerializer, responses={200: s.ReviewTaskSerializer, **_ERRORS})
    @action(detail=True, methods=["post"], url_path="not-a-match")
    def not_a_match(self, request, pk=None):
        self.guard_task(pk)
        data = self.valid(s.NotAMatchInputSerializer)
        task = self.call(
            review_task_not_a_match, task_id=pk, reason=data["reason"], candidate_ids=data.get("candidates")
        )
        return self._task(task.pk)

    @extend_schema(request=s.DeferInputSerializer, responses={200: s.ReviewTaskSerializer, **_ERRORS})
    @action(detail=True, methods=["post"])
    def defer(self, request, pk=None):
        self.guard_task(pk)
        data = self.valid(s.DeferInputSerializer)
        task = self.call(review_task_defer, task_id=pk, note=data["note"])
        return self._task(task.pk)

    @extend_schema(request=s.AssignInputSerializer, responses={200: s.ReviewTaskSerializer, **_ERRORS})
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        self.guard_task(pk)
        data = self.valid(s.AssignInputSerializer)
        task = self.call(review_task_assign, task_id=pk, assignee=self.user_by_name(data["assignee"]))
        return self._task(task.pk)

    @extend_schema(request=s.BulkAcceptInputSerializer, responses={200: s.BulkAcceptResultSerializer, **_ERRORS})
    @action(detail=False, methods=["post"], url_path="bulk-accept")
    def bulk_accept(self, request):
        data = self.valid(s.BulkAcceptInputSerializer)
        self.guard_task(*data["tasks"])
        results = self.call(review_tasks_bulk_accept, task_ids=data["tasks"], reason=data["reason"])
        return Response({"results": results})


class DataExceptionViewSet(StewardApiMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The exception queues (data quality, ownership conflicts, unresolved references, dead letters)."""

    serializer_class = s.DataExceptionSerializer
    pagination_class = QueuePagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = DataExceptionFilterSet

    def get_queryset(self):
        return DataException.objects.select_related("source_record", "assignee").order_by("created_at", "id")

    def guard_exception(self, pk) -> None:
        pks = [pk] if _an_id(pk) else []
        self.guard(*DataException.objects.filter(pk__in=pks).values_list("domain", flat=True))

    def _exc(self, pk) -> Response:
        return Response(s.DataExceptionSerializer(DataException.objects.get(pk=pk)).data)

    @extend_schema(request=s.RetryInputSerializer, responses={200: s.RetryResultSerializer, **_ERRORS})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        self.guard_exception(pk)
        data = self.valid(s.RetryInputSerializer)
        exc, result = self.call(data_exception_retry, exception_id=pk, reason=data.get("reason", ""))
        return Response({"exception": s.DataExceptionSerializer(exc).data, "result": result.as_dict()})

    @extend_schema(request=s.ResolveInputSerializer, responses={200: s.DataExceptionSerializer, **_ERRORS})
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        self.guard_exception(pk)
        data = self.valid(s.ResolveInputSerializer)
        exc = self.call(data_exception_resolve, exception_id=pk, note=data.get("note", ""))
        return self._exc(exc.pk)

    @extend_schema(request=s.IgnoreInputSerializer, responses={200: s.DataExceptionSerializer, **_ERRORS})
    @action(detail=True, methods=["post"])
    def ignore(self, request, pk=None):
        self.guard_exception(pk)
        data = self.valid(s.IgnoreInputSerializer)
        exc = self.call(data_exception_ignore, exception_id=pk, reason=data["reason"])
        return self._exc(exc.pk)

    @extend_schema(request=s.AssignInputSerializer, responses={200: s.DataExceptionSerializer, **_ERRORS})
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        self.guard_exception(pk)
        data = self.valid(s.AssignInputSerializer)
        exc = self.call(data_exception_assign, exception_id=pk, assignee=self.user_by_name(data["assignee"]))
        return self._exc(exc.pk)
