"""Cursor pagination for golden-record lists. It refuses an unordered queryset: a cursor over an
unstable order would skip or repeat records."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured, ValidationError
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination


class GoldenCursorPagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = ("-updated_at", "id")

    def paginate_queryset(self, queryset, request, view=None):
        if not queryset.ordered:
            raise ImproperlyConfigured(
                f"{type(self).__name__} needs an ordered queryset ({queryset.model.__name__}): add order_by()."
            )
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValidationError, ValueError, TypeError, OverflowError):
            # A cursor whose position does not fit the ordering field (tampered, or made for another ordering).
            raise NotFound(self.invalid_cursor_message)

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None and "\x00" in cursor.position:
            raise NotFound(self.invalid_cursor_message)
        return cursor
