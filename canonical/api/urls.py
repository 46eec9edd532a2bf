"""URLs under /api/v1/ for golden records, cross-reference resolution and ingest.

To add routes from another module, append one line to `urlpatterns`:
    path("", include("canonical.api.<module>")),
"""

from django.urls import path
from rest_framework.routers import SimpleRouter

from canonical.domains import DOMAINS

from .matching import urlpatterns as matching_urlpatterns
from .views import VIEWSETS, IngestView, XrefResolveView

router = SimpleRouter()
for name, spec in DOMAINS.items():
    router.register(spec.url_name, VIEWSETS[name], basename=spec.url_name)

urlpatterns = [
    path("xrefs/resolve/", XrefResolveView.as_view(), name="xref-resolve"),
    path("ingest/<str:system>/<str:domain>/", IngestView.as_view(), name="ingest"),
    # Before the router (<domain>/match/ is not a record id), and flat, not include()d: a failing include builds
    # the list of patterns it tried, which cost as much as the rest of the URL resolution of every record GET.
    *matching_urlpatterns,
    *router.urls,
]
