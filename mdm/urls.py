"""Top-level URLs. The API is versioned under /api/v1/; each app contributes its own routes."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from connectors.ops.health import health_view
from connectors.ops.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", health_view, name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("api/v1/", include("canonical.api.urls")),
    path("api/v1/", include("stewardship.api.urls")),
    path("api/v1/", include("connectors.api.urls")),
]

handler400 = "mdm.views.bad_request"
handler404 = "mdm.views.not_found"
handler500 = "mdm.views.server_error"
