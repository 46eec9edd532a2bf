"""URLs under /api/v1/ for this app."""

from django.urls import include, path, re_path

from .views import ChangeFeedView, InboundWebhookView

urlpatterns = [
    # One route for /changes and /changes/ (the issue spells it without the slash): one operation in the schema.
    re_path(r"^changes/?$", ChangeFeedView.as_view(), name="change-feed"),
    path("webhooks/<slug:system>/", InboundWebhookView.as_view(), name="inbound-webhook"),
    path("", include("connectors.reconciliation.api")),
]
