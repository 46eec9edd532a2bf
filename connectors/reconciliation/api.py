"""Reconciliation runs over the API: `GET /api/v1/reconciliation-runs/` (+ detail and items).

Any client with a read scope may list runs (counts only); items show only domains the client may read, and
values of personal fields only with `read:personal`.
"""

from __future__ import annotations

from django.urls import include, path
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.routers import SimpleRouter

from canonical.api.clients import SCOPE_PERSONAL, read_scope
from canonical.api.permissions import request_scopes
from canonical.domains import DOMAINS
from connectors.models import ReconciliationItem, ReconciliationRun
from connectors.models.reconciliation import DifferenceAction, DifferenceKind, ReconciliationStatus


def readable_domains(request) -> set[str]:
    scopes = request_scopes(request)
    return {d for d in DOMAINS if read_scope(d) in scopes}


class CanReadSomeDomain(BasePermission):
    message = "This endpoint needs at least one read:<domain> scope."

    def has_permission(self, request, view) -> bool:
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_authenticated and readable_domains(request))


class RunPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class ItemPagination(RunPagination):
    page_size = 200
    max_page_size = 1000


class ReconciliationItemSerializer(serializers.ModelSerializer):
    fields = serializers.SerializerMethodField(method_name="drift_fields")

    class Meta:
        model = ReconciliationItem
        fields = ["id", "domain", "kind", "action", "source_id", "golden_id", "fields", "reason", "outcome",
                  "exception"]  # fmt: skip

    def drift_fields(self, item: ReconciliationItem) -> dict:
        if self.context.get("personal"):
            return item.fields
        spec = DOMAINS.get(item.domain)
        hidden = {f.name for f in spec.fields if f.personal} if spec else set()
        return {
            k: ({"hub": "(personal)", "system": "(personal)"} if k in hidden else v) for k, v in item.fields.items()
        }


class ReconciliationRunSerializer(serializers.ModelSerializer):
    differences = serializers.IntegerField(read_only=True)

    class Meta:
        model = ReconciliationRun
        fields = ["id", "system", "domains", "trigger", "status", "started_at", "finished_at", "duration_ms", "records",
                  "counts", "actions", "differences", "errors", "request_id"]  # fmt: skip


class ReconciliationRunFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=ReconciliationStatus.choices)

    class Meta:
        model = ReconciliationRun
        fields = ["system", "status", "trigger"]


class ReconciliationItemFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=DifferenceKind.choices)
    action = filters.ChoiceFilter(choices=DifferenceAction.choices)
    domain = filters.ChoiceFilter(choices=[(d, d) for d in DOMAINS])

    class Meta:
        model = ReconciliationItem
        fields = ["kind", "action", "domain"]


class ReconciliationRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Reconciliation runs, newest first, with their counts by kind and action; `items/` lists the differences."""

    queryset = ReconciliationRun.objects.order_by("-started_at", "-id")
    serializer_class = ReconciliationRunSerializer
    permission_classes = [CanReadSomeDomain]
    pagination_class = RunPagination
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = ReconciliationRunFilter

    @extend_schema(
        responses=ReconciliationItemSerializer(many=True),
        parameters=[
            OpenApiParameter("kind", enum=DifferenceKind.values),
            OpenApiParameter("action", enum=DifferenceAction.values),
            OpenApiParameter("domain", enum=list(DOMAINS)),
        ],
    )
    @action(detail=True, methods=["get"], pagination_class=ItemPagination)
    def items(self, request, pk=None):
        run = self.get_object()
        qs = run.items.filter(domain__in=readable_domains(request)).order_by("id")
        qs = ReconciliationItemFilter(request.query_params, queryset=qs, request=request)
        if not qs.is_valid():
            raise ValidationError(qs.errors)
        page = self.paginate_queryset(qs.qs)
        context = {**self.get_serializer_context(), "personal": SCOPE_PERSONAL in request_scopes(request)}
        data = ReconciliationItemSerializer(page, many=True, context=context).data
        return self.get_paginated_response(data)


router = SimpleRouter()
router.register("reconciliation-runs", ReconciliationRunViewSet, basename="reconciliation-run")
urlpatterns = [path("", include(router.urls))]
