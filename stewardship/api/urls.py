"""URLs under /api/v1/ for this app: merge/unmerge per domain, the review queue and the exception queues."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from canonical.domains import DOMAINS

from .views import DataExceptionViewSet, GoldenMergeView, GoldenUnmergeView, ReviewTaskViewSet

router = SimpleRouter()
router.register("review-tasks", ReviewTaskViewSet, basename="review-task")
router.register("exceptions", DataExceptionViewSet, basename="exception")

urlpatterns = [
    *router.urls,
    *(
        path(
            f"{spec.url_name}/<str:pk>/merge/",
            GoldenMergeView.as_view(),
            {"url_name": spec.url_name},
            name=f"{spec.url_name}-merge",
        )
        for spec in DOMAINS.values()
    ),
    *(
        path(
            f"{spec.url_name}/<str:pk>/unmerge/",
            GoldenUnmergeView.as_view(),
            {"url_name": spec.url_name},
            name=f"{spec.url_name}-unmerge",
        )
        for spec in DOMAINS.values()
    ),
]
