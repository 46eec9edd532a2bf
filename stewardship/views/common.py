"""What every workbench view shares: the admin page context, the 403 page, service errors as messages."""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from canonical.models import Domain
from stewardship import roles
from stewardship.services.common import StewardshipError
from stewardship.services.overrides import OverrideError


def workbench_context(request: HttpRequest, title: str, **extra) -> dict:
    """The admin's own context (header, sidebar, user links) plus who may do what here."""
    user = request.user
    return {
        **(
            admin.site.workbench_context(request)
            if hasattr(admin.site, "workbench_context")
            else admin.site.each_context(request)
        ),
        "title": title,
        "domain_labels": dict(Domain.choices),
        "viewable_domains": [d for d in Domain.values if d in roles.viewable_domains(user)],
        "steward_domains": sorted(roles.steward_domains(user)),
        "is_auditor": roles.is_auditor(user),
        **extra,
    }


def forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(
        request,
        "stewardship/forbidden.html",
        workbench_context(request, "Not allowed", message=message),
        status=403,
    )


def bad_request(request: HttpRequest, errors: dict[str, list[str]]) -> HttpResponse:
    return render(
        request,
        "stewardship/bad_request.html",
        workbench_context(request, "Cannot show this page", errors=errors),
        status=400,
    )


def workbench_view(view: Callable) -> Callable:
    """A 403 page naming the reason for PermissionDenied; a 400 page with field messages for bad filters."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not roles.viewable_domains(request.user):
            return forbidden(
                request,
                "The workbench is for data stewards, auditors and administrators: ask an administrator to add you "
                "to a steward group (“Customer stewards”, …) or to “Auditors”.",
            )
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied as exc:
            return forbidden(request, str(exc) or "You may not do this.")
        except StewardshipError as exc:
            return bad_request(request, exc.errors)

    return wrapper


def error_messages(request: HttpRequest, exc: StewardshipError | OverrideError) -> None:
    for name, msgs in exc.errors.items():
        for msg in msgs:
            messages.error(request, f"{name.replace('_', ' ')}: {msg}")


def safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return fallback


def redirect_next(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(safe_next(request, fallback))


def int_list(values: list[str]) -> list[int]:
    """Ids from a form; anything that is not an integer is refused with its field named."""
    out = []
    for v in values:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            raise StewardshipError({"ids": [f"'{v[:40]}' is not an id"]})
    return out


def url_with(name: str, *args, query: dict | None = None) -> str:
    url = reverse(f"admin:{name}", args=args)
    return f"{url}?{urlencode(query, doseq=True)}" if query else url
