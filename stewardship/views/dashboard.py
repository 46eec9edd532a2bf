"""The dashboard on the admin index: backlog per queue and its trend, decisions per day, auto-merge rate."""

from __future__ import annotations

from django.http import HttpRequest

from canonical.models import Domain
from stewardship import roles
from stewardship.services.workbench import EXCEPTION_QUEUES, dashboard_stats

from . import charts
from .common import url_with

DAYS = 14


def dashboard_context(request: HttpRequest) -> dict:
    """Charts for the admin index, over the domains this user may see (nothing for other staff)."""
    domains = roles.viewable_domains(request.user)
    if not domains:
        return {}
    stats = dashboard_stats(days=DAYS, domains=domains)
    labels = dict(Domain.choices)
    backlog = [(f"Review: {labels[d]}", n) for d, n in stats.review_backlog.items()]
    backlog += [(EXCEPTION_QUEUES[q][1], n) for q, n in stats.exception_backlog.items()]
    href = {f"Review: {labels[d]}": url_with("workbench_reviews", query={"domain": d}) for d in stats.review_backlog}
    href |= {EXCEPTION_QUEUES[q][1]: url_with("workbench_exceptions", query={"queue": q}) for q in EXCEPTION_QUEUES}
    rate = stats.overall_auto_merge_rate
    return {
        "dashboard": {
            "days": DAYS,
            "review_total": sum(stats.review_backlog.values()),
            "exception_total": sum(stats.exception_backlog.values()),
            "decisions_total": sum(sum(v) for v in stats.decisions.values()),
            "auto_merge_rate": None if rate is None else round(rate * 100),
            "auto_links": sum(stats.auto_links),
            "reviews_opened": sum(stats.reviews_opened),
            "backlog_chart": charts.bar_chart(backlog, title="Open items per queue", href=href),
            "trend_chart": charts.line_chart(
                stats.days,
                {"review tasks": stats.review_trend, "exceptions": stats.exception_trend},
                title=f"Backlog at the end of each day, last {DAYS} days",
            ),
            "decisions_chart": charts.stacked_bars(
                stats.days, stats.decisions, title=f"Steward decisions per day, last {DAYS} days"
            ),
            "rate_chart": charts.line_chart(
                stats.days,
                {"auto-merge rate": stats.auto_merge_rate},
                title="Share of duplicates the matcher linked alone, per day",
                percent=True,
            ),
        }
    }
