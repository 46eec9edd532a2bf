"""The review queue and the side-by-side compare page, and the decisions taken there.

Thin: each view checks the steward's role for the task's domain (403 otherwise), reads the form and calls a
service (reviews.py for decisions, workbench.py for what the pages show). Services audit every decision
(channel steward, actor = the username, the reason given).
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, render
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from canonical.domains import get_domain
from stewardship import roles
from stewardship.models import ReviewTask
from stewardship.services.common import StewardshipError
from stewardship.services.reviews import (
    review_task_assign,
    review_task_defer,
    review_task_merge,
    review_task_not_a_match,
    review_tasks_bulk_accept,
)
from stewardship.services.workbench import (
    AGE_RANGES,
    SCORE_BANDS,
    QueueFilters,
    golden_titles,
    review_compare,
    review_neighbours,
    review_queue,
    review_queue_counts,
    review_queue_filters_parse,
    review_queue_known_count,
    review_queue_page,
    review_queue_rows,
    review_queue_systems,
    review_tasks_assign,
    stewards_of,
)

from .common import error_messages, int_list, redirect_next, url_with, workbench_context, workbench_view

PAGE_SIZE = 50


def _queue_filters(query: str) -> QueueFilters:
    try:
        return review_queue_filters_parse(QueryDict(query or ""))
    except StewardshipError:
        return QueueFilters()


def _assignee(request: HttpRequest, domains: set[str]):
    """The user named in the form, who must steward every domain concerned ("" = nobody)."""
    name = (request.POST.get("assignee") or "").strip()
    if request.POST.get("action") == "assign_me" or name == "me":
        return request.user
    if not name:
        return None
    user = get_user_model().objects.filter(username=name, is_active=True).first()
    if user is None:
        raise StewardshipError({"assignee": [f"no active user {name!r}"]})
    for domain in domains:
        if not roles.can_decide(user, domain):
            raise StewardshipError({"assignee": [f"{name} is not a {domain.replace('_', ' ')} steward"]})
    return user


@workbench_view
@require_GET
def review_queue_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    filters = review_queue_filters_parse(request.GET)
    if filters.domain:
        roles.require_view(user, filters.domain)
    domains = roles.viewable_domains(user)
    counts = review_queue_counts(domains=domains)
    page, tasks = review_queue_page(
        queue=review_queue(filters=filters, user=user, domains=domains),
        number=request.GET.get("page"),
        per_page=PAGE_SIZE,
        count=review_queue_known_count(filters, counts),
    )
    rows = review_queue_rows(tasks)
    compare_url = url_with("workbench_compare", 0)[: -len("0/")]  # reversed once, not once per row
    suffix = f"?{urlencode({'queue': _encode(filters.as_query())})}" if filters.as_query() else ""
    for row in rows:
        row.url = f"{compare_url}{row.task.pk}/{suffix}"
    deciding = roles.steward_domains(user)
    query = filters.as_query()
    return render(
        request,
        "stewardship/review_queue.html",
        workbench_context(
            request,
            "Review queue",
            filters=filters,
            query=query,
            page=page,
            rows=rows,
            counts=counts,
            total_pending=sum(c["pending"] for c in counts.values()),
            bands=SCORE_BANDS,
            ages=AGE_RANGES,
            systems=review_queue_systems(),
            stewards=stewards_of(filters.domain or None),
            can_decide_any=bool(deciding & set(counts)),
            deciding=deciding,
            queue_qs=_encode(query),
            workbench_page="queue",
        ),
    )


def _encode(query: dict) -> str:
    q = QueryDict(mutable=True)
    q.update(query)
    return q.urlencode()


def _valid_uuids(values: list[str]) -> list[str]:
    out = []
    for v in values:
        try:
            out.append(str(uuid.UUID(v)))
        except (TypeError, ValueError):
            continue
    return out


@workbench_view
@require_GET
def review_compare_view(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(ReviewTask.objects.select_related("source_record", "assignee"), pk=pk)
    roles.require_view(request.user, task.domain)
    selected = _valid_uuids(request.GET.getlist("candidates")) or None
    choices = {
        key[len("choice__") :]: value
        for key, value in request.GET.items()
        if key.startswith("choice__") and _valid_uuids([value])
    }
    survivor = (_valid_uuids([request.GET.get("survivor", "")]) or [None])[0]
    compare = review_compare(task=task, selected_ids=selected, choices=choices, survivor_id=survivor)
    queue_qs = request.GET.get("queue", "")
    return render(
        request,
        "stewardship/review_compare.html",
        workbench_context(
            request,
            f"Review #{task.pk}: {compare.columns[0].title if compare.columns else task.golden_id}",
            task=task,
            compare=compare,
            can_decide=roles.can_decide(request.user, task.domain),
            stewards=stewards_of(task.domain),
            queue_qs=queue_qs,
            domain_label=task.get_domain_display(),
            workbench_page="compare",
        ),
    )


@workbench_view
@require_GET
def review_next_view(request: HttpRequest) -> HttpResponse:
    """j / k on the compare page: the next (or previous) task in the queue the steward came from."""
    queue_qs = request.GET.get("queue", "")
    filters = _queue_filters(queue_qs)
    after = request.GET.get("after")
    task = ReviewTask.objects.filter(pk=int(after)).first() if after and after.isascii() and after.isdigit() else None
    domains = roles.viewable_domains(request.user)
    if task is None:
        ids = list(review_queue(filters=filters, user=request.user, domains=domains).values_list("id", flat=True)[:1])
        target = ids[0] if ids else None
    else:
        near = review_neighbours(task=task, filters=filters, user=request.user, domains=domains)
        target = near["previous" if request.GET.get("direction") == "previous" else "next"]
    if target is None:
        messages.info(request, "No more tasks in this queue.")
        return HttpResponseRedirect(url_with("workbench_reviews") + (f"?{queue_qs}" if queue_qs else ""))
    return HttpResponseRedirect(url_with("workbench_compare", target, query={"queue": queue_qs} if queue_qs else None))


def _after_decision(request: HttpRequest, queue_qs: str) -> HttpResponseRedirect:
    """Straight on to the top task of the queue the steward works (or back to the queue when it is empty)."""
    filters = _queue_filters(queue_qs)
    domains = roles.viewable_domains(request.user)
    top = list(review_queue(filters=filters, user=request.user, domains=domains).values_list("id", flat=True)[:1])
    if request.POST.get("then") == "queue" or not top:
        return HttpResponseRedirect(url_with("workbench_reviews") + (f"?{queue_qs}" if queue_qs else ""))
    return HttpResponseRedirect(url_with("workbench_compare", top[0], query={"queue": queue_qs} if queue_qs else None))


@workbench_view
@require_POST
def review_decide_view(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(ReviewTask, pk=pk)
    roles.require_decide(request.user, task.domain)
    action = request.POST.get("action", "")
    reason = request.POST.get("reason", "")
    queue_qs = request.POST.get("queue", "")
    back = url_with("workbench_compare", task.pk, query={"queue": queue_qs} if queue_qs else None)
    candidates = _valid_uuids(request.POST.getlist("candidates")) or None
    try:
        if action == "merge":
            choices = {
                key[len("choice__") :]: {"from": value}
                for key, value in request.POST.items()
                if key.startswith("choice__") and _valid_uuids([value])
            }
            decision = review_task_merge(
                task_id=task.pk,
                reason=reason,
                user=request.user,
                candidate_ids=candidates,
                survivor_id=(_valid_uuids([request.POST.get("survivor", "")]) or [None])[0],
                field_choices=choices or None,
            )
            spec = get_domain(decision.domain)
            title = golden_titles(spec.name, [decision.survivor_id]).get(decision.survivor_id, ("record", ""))[0]
            messages.success(
                request,
                format_html(
                    'Review #{}: merged {} record(s) into <a href="{}">{}</a>{}.',
                    task.pk,
                    len(decision.retired_ids),
                    url_with("workbench_golden", spec.name, decision.survivor_id),
                    title,
                    f" (chosen values: {', '.join(sorted(choices))})" if choices else "",
                ),
            )
        elif action == "not_a_match":
            review_task_not_a_match(task_id=task.pk, reason=reason, user=request.user, candidate_ids=candidates)
            messages.success(request, f"Review #{task.pk}: not a match — it will not be proposed again.")
        elif action == "defer":
            review_task_defer(task_id=task.pk, note=reason, user=request.user)
            messages.success(request, f"Review #{task.pk} deferred: {reason.strip()}")
        elif action in ("assign", "assign_me"):
            assignee = _assignee(request, {task.domain})
            review_task_assign(task_id=task.pk, assignee=assignee, user=request.user)
            who = assignee.get_username() if assignee else "nobody"
            messages.success(request, f"Review #{task.pk} assigned to {who}.")
            return redirect_next(request, back)
        else:
            raise StewardshipError({"action": ["expected merge, not_a_match, defer, assign or assign_me"]})
    except StewardshipError as exc:
        error_messages(request, exc)
        return HttpResponseRedirect(back)
    return _after_decision(request, queue_qs)


@workbench_view
@require_POST
def review_bulk_view(request: HttpRequest) -> HttpResponse:
    """Several tasks at once: assign (to me or a steward) or accept the best candidate of each."""
    queue_qs = request.POST.get("queue", "")
    back = url_with("workbench_reviews") + (f"?{queue_qs}" if queue_qs else "")
    try:
        ids = int_list(request.POST.getlist("tasks"))
        domains = set(ReviewTask.objects.filter(pk__in=ids).values_list("domain", flat=True))
        for domain in sorted(domains):
            roles.require_decide(request.user, domain)
        action = request.POST.get("action", "")
        if action in ("assign", "assign_me"):
            assignee = _assignee(request, domains)
            results = review_tasks_assign(task_ids=ids, assignee=assignee, user=request.user)
            done = sum(1 for r in results if r["assigned"])
            who = assignee.get_username() if assignee else "nobody"
            messages.success(request, f"{done} task(s) assigned to {who}.")
            refused = [r for r in results if not r["assigned"]]
        elif action == "accept":
            results = review_tasks_bulk_accept(task_ids=ids, reason=request.POST.get("reason", ""), user=request.user)
            done = sum(1 for r in results if r["merged"])
            messages.success(request, f"{done} task(s) accepted: each merged with its best candidate.")
            refused = [r for r in results if not r["merged"]]
        else:
            raise StewardshipError({"action": ["expected assign, assign_me or accept"]})
        for r in refused:
            text = "; ".join(m for msgs in r["errors"].values() for m in msgs)
            messages.warning(request, f"Review #{r['task']} not done: {text}")
    except StewardshipError as exc:
        error_messages(request, exc)
    return HttpResponseRedirect(back)
