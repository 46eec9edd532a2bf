"""Workbench URLs, mounted by MdmAdminSite.get_urls under /admin/workbench/ (names in the `admin` namespace)."""

from __future__ import annotations

from django.urls import path
from django.views.generic import RedirectView

from . import exceptions, golden, reviews


def workbench_urls(site) -> list:
    """Every view goes through `site.admin_view`: signed-in active staff only, CSRF-protected, never cached."""
    v = site.admin_view
    return [
        path("workbench/", v(RedirectView.as_view(pattern_name="admin:workbench_reviews")), name="workbench"),
        path("workbench/reviews/", v(reviews.review_queue_view), name="workbench_reviews"),
        path("workbench/reviews/bulk/", v(reviews.review_bulk_view), name="workbench_reviews_bulk"),
        path("workbench/reviews/next/", v(reviews.review_next_view), name="workbench_next"),
        path("workbench/reviews/<int:pk>/", v(reviews.review_compare_view), name="workbench_compare"),
        path("workbench/reviews/<int:pk>/decide/", v(reviews.review_decide_view), name="workbench_decide"),
        path("workbench/golden/<str:domain>/<str:golden_id>/", v(golden.golden_view), name="workbench_golden"),
        path(
            "workbench/golden/<str:domain>/<str:golden_id>/override/",
            v(golden.golden_override_view),
            name="workbench_override",
        ),
        path(
            "workbench/golden/<str:domain>/<str:golden_id>/unmerge/",
            v(golden.golden_unmerge_view),
            name="workbench_unmerge",
        ),
        path("workbench/exceptions/", v(exceptions.exception_queue_view), name="workbench_exceptions"),
        path("workbench/exceptions/act/", v(exceptions.exception_act_view), name="workbench_exceptions_act"),
    ]
