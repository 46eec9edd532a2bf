"""List filters for the review queue and the exception queues."""

from __future__ import annotations

import django_filters as df

from canonical.api.filters import UtcDateTimeFilter
from canonical.models import DataException, Domain, ExceptionKind, ExceptionStatus
from stewardship.models import ReviewStatus, ReviewTask


class ReviewTaskFilterSet(df.FilterSet):
    domain = df.ChoiceFilter(choices=Domain.choices)
    status = df.MultipleChoiceFilter(choices=ReviewStatus.choices)
    assignee = df.CharFilter(field_name="assignee__username", max_length=150, help_text="Username of the steward.")
    unassigned = df.BooleanFilter(field_name="assignee", lookup_expr="isnull")
    min_score = df.NumberFilter(field_name="score", lookup_expr="gte")
    max_score = df.NumberFilter(field_name="score", lookup_expr="lte")
    system = df.CharFilter(
        field_name="source_record__system", max_length=64, help_text="System of the record under review."
    )
    golden_id = df.UUIDFilter()
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = ReviewTask
        fields = []


class DataExceptionFilterSet(df.FilterSet):
    kind = df.MultipleChoiceFilter(choices=ExceptionKind.choices)
    status = df.MultipleChoiceFilter(choices=ExceptionStatus.choices)
    domain = df.ChoiceFilter(choices=Domain.choices)
    system = df.CharFilter(field_name="system", max_length=64)
    assignee = df.CharFilter(field_name="assignee__username", max_length=150)
    unassigned = df.BooleanFilter(field_name="assignee", lookup_expr="isnull")
    golden_id = df.UUIDFilter()
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = DataException
        fields = []
