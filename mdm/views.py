"""Project-level error pages: JSON under /api/, Django's HTML elsewhere."""

from django.http import JsonResponse
from django.views import defaults


def _wants_json(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    if _wants_json(request):
        return JsonResponse(
            {"detail": f"No API endpoint at {request.path}. The endpoints are listed at /api/docs/.", "errors": {}},
            status=404,
        )
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _wants_json(request):
        request_id = getattr(request, "audit_request_id", "")
        return JsonResponse(
            {"detail": "Internal error; it has been logged.", "request_id": request_id, "errors": {}}, status=500
        )
    return defaults.server_error(request)
