"""The golden record page: sources, per-field provenance, history with field diffs, unmerge, overrides, related."""

from __future__ import annotations

import json
import uuid

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from canonical.domains import DOMAINS, FieldSpec, get_domain
from canonical.models import Domain, GoldenStatus, SourceRecord
from canonical.services.golden import golden_survivor_id
from stewardship import roles
from stewardship.services.common import StewardshipError
from stewardship.services.merge import golden_record_unmerge
from stewardship.services.overrides import OverrideError, field_override_clear, field_override_set
from stewardship.services.workbench import golden_record_page

from .common import error_messages, url_with, workbench_context, workbench_view


def _golden_id(domain: str, golden_id: str) -> uuid.UUID:
    if domain not in DOMAINS:
        raise Http404(f"no domain {domain!r}")
    try:
        return uuid.UUID(golden_id)
    except ValueError:
        raise Http404(f"{golden_id[:60]!r} is not a golden id")


@workbench_view
@require_GET
def golden_view(request: HttpRequest, domain: str, golden_id: str) -> HttpResponse:
    gid = _golden_id(domain, golden_id)
    roles.require_view(request.user, domain)
    page = golden_record_page(domain=domain, golden_id=gid)
    if page is None:
        raise Http404(f"no {domain} {gid}")
    if page.record.status == GoldenStatus.MERGED:
        survivor = golden_survivor_id(domain, gid)
        messages.info(request, f"{domain.replace('_', ' ')} {gid} was merged; this is the record it lives on in.")
        return HttpResponseRedirect(url_with("workbench_golden", domain, survivor))
    spec = page.spec
    return render(
        request,
        "stewardship/golden.html",
        workbench_context(
            request,
            f"{spec.name.replace('_', ' ').capitalize()}: {page.title}",
            page=page,
            domain=domain,
            domain_label=Domain(domain).label,
            can_decide=roles.can_decide(request.user, domain),
            admin_change_url=url_with(f"canonical_{spec.model._meta.model_name}_change", gid),
            field_kinds={f.name: f.kind for f in spec.fields},
            workbench_page="golden",
        ),
    )


def override_input(fspec: FieldSpec, raw: str):
    """The text a steward typed, as the override service takes it (validation happens there)."""
    text = (raw or "").strip()
    if fspec.kind == "ref":
        return {"golden_id": text} if text else None
    if fspec.kind == "bool":
        if text.lower() in ("true", "yes", "1", "on"):
            return True
        if text.lower() in ("false", "no", "0", ""):
            return False
        raise OverrideError({"value": ["expected yes or no"]})
    if fspec.kind == "list_str":
        return [part.strip() for part in text.split(",") if part.strip()]
    if fspec.kind == "lines":
        try:
            return json.loads(text) if text else []
        except (ValueError, RecursionError):  # RecursionError: nested past what the decoder follows
            raise OverrideError({"value": ['rate card lines are a JSON list: [{"role": …, "unit": …, "rate": …}]']})
    return text or None


@workbench_view
@require_POST
def golden_override_view(request: HttpRequest, domain: str, golden_id: str) -> HttpResponse:
    gid = _golden_id(domain, golden_id)
    roles.require_decide(request.user, domain)
    back = url_with("workbench_golden", domain, gid)
    name = request.POST.get("field", "")
    fspec = get_domain(domain).get(name)
    reason = request.POST.get("reason", "")
    try:
        if fspec is None:
            raise OverrideError({"field": [f"unknown field {name[:64]!r} for {domain}"]})
        if request.POST.get("action") == "clear":
            field_override_clear(domain=domain, golden_id=gid, field=name, reason=reason, user=request.user)
            messages.success(request, f"Pin of {name.replace('_', ' ')} removed: the sources decide it again.")
        else:
            value = override_input(fspec, request.POST.get("value", ""))
            field_override_set(domain=domain, golden_id=gid, field=name, value=value, reason=reason, user=request.user)
            messages.success(request, f"Pinned {name.replace('_', ' ')}: {reason.strip()}")
    except OverrideError as exc:
        error_messages(request, exc)
    return HttpResponseRedirect(back + f"#field-{name}" if fspec else back)


@workbench_view
@require_POST
def golden_unmerge_view(request: HttpRequest, domain: str, golden_id: str) -> HttpResponse:
    gid = _golden_id(domain, golden_id)
    roles.require_decide(request.user, domain)
    back = url_with("workbench_golden", domain, gid)
    raw = request.POST.get("source_record", "")
    try:
        sr_id = int(raw)
    except ValueError:
        messages.error(request, f"source record: '{raw[:40]}' is not a source record id")
        return HttpResponseRedirect(back)
    sr = SourceRecord.objects.filter(pk=sr_id).only("pk", "golden_id", "system_id", "source_id").first()
    if sr is None or sr.golden_id != gid:
        messages.error(request, f"source record {sr_id} is not part of this record (reload the page)")
        return HttpResponseRedirect(back)
    try:
        result = golden_record_unmerge(
            domain=domain, source_record_id=sr_id, reason=request.POST.get("reason", ""), user=request.user
        )
    except StewardshipError as exc:
        error_messages(request, exc)
        return HttpResponseRedirect(back)
    how = "the record it came from is back" if result.restored else "it has a new record"
    messages.success(
        request,
        format_html(
            'Split {}:{} out ({}): <a href="{}">open it</a>.',
            sr.system_id,
            sr.source_id,
            how,
            url_with("workbench_golden", domain, result.golden_id),
        ),
    )
    return HttpResponseRedirect(back)
