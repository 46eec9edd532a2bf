"""The change feed and the inbound webhook endpoint (thin: they call the connector services)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from canonical.api.errors import ApiError
from canonical.domains import DOMAINS
from connectors.services.feed import MAX_LIMIT, CursorError, cursor_parse, feed_read
from connectors.services.webhooks import webhook_receive


def _scopes(request) -> set[str]:
    auth = getattr(request, "auth", None)
    scopes = getattr(auth, "scopes", None) or getattr(request.user, "scopes", None) or []
    return set(scopes)


class CanReadSomeDomain(BasePermission):
    message = "this feed needs a client with at least one read:<domain> scope"

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user is not None and getattr(user, "is_staff", False):
            return True
        return any(s.startswith("read:") and s[5:] in DOMAINS for s in _scopes(request))


class FeedQuery(serializers.Serializer):
    after = serializers.CharField(required=False, allow_blank=True)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, default=100)

    def validate_after(self, value: str) -> str:
        try:
            cursor_parse(value)
        except CursorError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value


class ChangeFeedView(APIView):
    """Golden-record changes as CloudEvents, in commit-safe order. Page with `next_cursor` as `after`."""

    permission_classes = [CanReadSomeDomain]

    @extend_schema(
        parameters=[
            OpenApiParameter("after", str, description="the next_cursor of the previous page; empty to start"),
            OpenApiParameter("limit", int, description=f"events per page, 1–{MAX_LIMIT} (default 100)"),
        ],
        responses={200: dict},
    )
    def get(self, request):
        query = FeedQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        user = request.user
        staff = user is not None and getattr(user, "is_staff", False)
        scopes = _scopes(request)
        domains = None if staff else {s[5:] for s in scopes if s.startswith("read:") and s[5:] in DOMAINS}
        page = feed_read(after=query.validated_data.get("after"), limit=query.validated_data["limit"],
                         domains=domains, personal=staff or "read:personal" in scopes)  # fmt: skip
        return Response({"events": page.events, "next_cursor": page.next_cursor, "has_more": page.has_more})


class InboundWebhookView(APIView):
    """A system pushes source records, signed with its connection's secret (Standard Webhooks headers)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(request=dict, responses={202: dict, 200: dict, 400: dict, 401: dict, 404: dict, 413: dict})
    def post(self, request, system: str):
        try:
            body = request.body
        except RequestDataTooBig:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            raise ApiError(f"the body is larger than {limit} bytes; send the records in smaller batches",
                           status_code=413, errors={"body": [f"larger than {limit} bytes"]}) from None  # fmt: skip
        answer = webhook_receive(system=system, headers=request.headers, body=body)
        return Response(answer.body, status=answer.status)
