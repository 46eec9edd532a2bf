"""The exception queues: data quality, ownership conflicts, unresolved references, sync dead letters, reconciliation.

Each row: the reason (message), its age and assignee; actions retry / resolve / ignore (a reason is required to
ignore) and assign, on one row or on the checked rows. The services audit each one.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from canonical.models import DataException, ExceptionStatus
from stewardship import roles
from stewardship.services.common import StewardshipError
from stewardship.services.workbench import (
    AGE_RANGES,
    EXCEPTION_QUEUES,
    KIND_QUEUE,
    data_exceptions_act,
    data_exceptions_assign,
    exception_filters_parse,
    exception_queue,
    exception_queue_counts,
    review_queue_systems,
    stewards_of,
)

from .common import error_messages, int_list, url_with, workbench_context, workbench_view

PAGE_SIZE = 50


@workbench_view
@require_GET
def exception_queue_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    filters = exception_filters_parse(request.GET)
    if filters.domain:
        roles.require_view(user, filters.domain)
    domains = roles.viewable_domains(user)
    page = Paginator(exception_queue(filters=filters, user=user, domains=domains), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    q = QueryDict(mutable=True)
    q.update(filters.as_query())
    deciding = roles.steward_domains(user)
    rows = [
        {
            "exc": exc,
            "queue": EXCEPTION_QUEUES[KIND_QUEUE.get(exc.kind, "data_quality")][1],
            "can_decide": exc.status == ExceptionStatus.OPEN and roles.can_decide(user, exc.domain),
        }
        for exc in page.object_list
    ]
    return render(
        request,
        "stewardship/exception_queue.html",
        workbench_context(
            request,
            "Exception queues",
            filters=filters,
            queue_qs=q.urlencode(),
            page=page,
            rows=rows,
            counts=exception_queue_counts(domains=domains),
            queues=[(key, label) for key, (_, label) in EXCEPTION_QUEUES.items()],
            statuses=ExceptionStatus.choices,
            ages=AGE_RANGES,
            systems=review_queue_systems(),
            stewards=stewards_of(filters.domain or None),
            can_decide_any=bool(deciding),
            workbench_page="exceptions",
        ),
    )


@workbench_view
@require_POST
def exception_act_view(request: HttpRequest) -> HttpResponse:
    """`do` = "retry", "resolve", "ignore", "assign" or "assign_me", optionally ":<id>" for one row."""
    queue_qs = request.POST.get("queue", "")
    back = url_with("workbench_exceptions") + (f"?{queue_qs}" if queue_qs else "")
    action, _, one = (request.POST.get("do") or "").partition(":")
    try:
        ids = int_list([one] if one else request.POST.getlist("exceptions"))
        domains = set(DataException.objects.filter(pk__in=ids).values_list("domain", flat=True))
        for domain in sorted(domains):
            roles.require_decide(request.user, domain)
        reason = request.POST.get("reason", "")
        if action in ("assign", "assign_me"):
            name = (request.POST.get("assignee") or "").strip()
            assignee = request.user if action == "assign_me" else None
            if action == "assign" and name:
                assignee = get_user_model().objects.filter(username=name, is_active=True).first()
                if assignee is None or not all(roles.can_decide(assignee, d) for d in domains):
                    raise StewardshipError({"assignee": [f"{name} is not a steward of these exceptions' domains"]})
            results = data_exceptions_assign(exception_ids=ids, assignee=assignee, user=request.user)
            who = assignee.get_username() if assignee else "nobody"
            messages.success(request, f"{sum(r['ok'] for r in results)} exception(s) assigned to {who}.")
        else:
            results = data_exceptions_act(action=action, exception_ids=ids, reason=reason, user=request.user)
            done = [r for r in results if r["ok"]]
            if action == "retry":
                still = sum(1 for r in done if r["status"] == ExceptionStatus.OPEN)
                messages.success(
                    request,
                    f"{len(done)} exception(s) re-processed: {len(done) - still} cleared, {still} still open "
                    "(the cause is still there: fix it at the source or in the rules).",
                )
            else:
                verb = "resolved" if action == "resolve" else "ignored"
                messages.success(request, f"{len(done)} exception(s) {verb}.")
        for r in results:
            if not r["ok"]:
                text = "; ".join(m for msgs in r["errors"].values() for m in msgs)
                messages.warning(request, f"Exception #{r['exception']} not done: {text}")
    except StewardshipError as exc:
        error_messages(request, exc)
    return HttpResponseRedirect(back)
