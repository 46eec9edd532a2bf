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


def bad_request(request, exception=None):
    """Django's own 400s (a Host header not in ALLOWED_HOSTS, a request it cannot parse) as JSON under /api/."""
    if _wants_json(request):
        return JsonResponse(
            {"detail": "Bad request: the request could not be read as sent (check its Host header and body).",
             "errors": {}},
            status=400,
        )  # fmt: skip
    return defaults.bad_request(request, exception)


def server_error(request):
    if _wants_json(request):
        request_id = getattr(request, "audit_request_id", "")
        return JsonResponse(
            {"detail": "Internal error; it has been logged.", "request_id": request_id, "errors": {}}, status=500
        )
    return defaults.server_error(request)
