"""URLs under /api/v1/ for this app."""

from django.urls import path

from .views import ChangeFeedView, InboundWebhookView

urlpatterns = [
    path("changes", ChangeFeedView.as_view(), name="change-feed"),
    path("changes/", ChangeFeedView.as_view()),
    path("webhooks/<slug:system>/", InboundWebhookView.as_view(), name="inbound-webhook"),
]
