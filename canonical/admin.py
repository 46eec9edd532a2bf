"""The admin for the canonical models: golden records with their history and where their values came from.

Golden records, source records, cross-references, exceptions, overrides and the outbox are read-only here:
they change only through ingest and steward actions (services), never by editing a row. Systems and
ownership rules are data that administrators edit (superusers only), with a change reason stored in their
history. Every save goes through `AuditContextMiddleware`, so history rows say who (the username), through
what (web), in which request and why. The stewards' screens (review queues, compare, merge) live in
stewardship/admin.py.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timesince
from simple_history.admin import SimpleHistoryAdmin

from canonical.audit import audit_reason
from canonical.domains import DOMAINS, DomainSpec, get_domain
from canonical.models import (
    ApiClient,
    ChangeEvent,
    CrossReference,
    DataException,
    Domain,
    FieldOverride,
    IdempotencyKey,
    MatchKey,
    OwnershipRule,
    PendingReference,
    SourceRecord,
    System,
)

AUDIT_COLUMNS = ["history_actor", "history_channel", "history_request_id"]

# --- small renderers -----------------------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list[Any]]) -> SafeString | str:
    if not rows:
        return "—"
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows)
    )
    return format_html('<table class="mdm-readout"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body)


def _pretty(value: Any) -> SafeString:
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


def _link(model_name: str, pk: Any, text: Any) -> SafeString | str:
    if pk is None:
        return "—"
    try:
        url = reverse(f"admin:canonical_{model_name}_change", args=[pk])
    except NoReverseMatch:
        return str(text)
    return format_html('<a href="{}">{}</a>', url, text)


def golden_link(domain: str, golden_id: Any) -> SafeString | str:
    if not golden_id or domain not in DOMAINS:
        return "—"
    return _link(DOMAINS[domain].model._meta.model_name, golden_id, str(golden_id)[:8] + "…")


def _as_uuid(term: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(term.strip())
    except ValueError:
        return None


# --- shared behaviour ---------------------------------------------------------------------------------------


def _domain_of(model) -> str | None:
    """The model's own domain (a golden record's), or None if its rows carry one in a `domain` column or have none."""
    return getattr(model, "DOMAIN", None)


class SafeHistoryIdMixin:
    """A history page for an id that cannot be one is a 404 (simple-history's view queried it as given: a 500)."""

    def history_view(self, request, object_id, extra_context=None):
        from django.contrib.admin.utils import unquote
        from django.core.exceptions import ValidationError
        from django.http import Http404

        try:
            self.model._meta.pk.to_python(unquote(object_id))
        except (ValidationError, ValueError, TypeError):
            raise Http404(f"no {self.model._meta.verbose_name} with id {object_id!r}") from None
        if "\x00" in unquote(object_id):
            raise Http404("an id holds no NUL character")
        return super().history_view(request, object_id, extra_context)


class DomainScopedAdminMixin(SafeHistoryIdMixin):
    """What a role may see of a domain's data, as in the workbench (stewardship.roles): a golden record's page and
    the rows of a model with a `domain` column (source records, review tasks, events, …) show only the domains the
    user may view; a customer steward does not read resources (personal data) here either."""

    def _viewable(self, request) -> frozenset[str] | None:
        """The domains the user may see, or None when every row is visible (a superuser)."""
        from stewardship import roles

        user = request.user
        if user.is_active and user.is_superuser:
            return None
        return roles.viewable_domains(user)

    def _has_domain_column(self) -> bool:
        return any(f.name == "domain" for f in self.model._meta.concrete_fields)

    def has_view_permission(self, request, obj=None) -> bool:
        if not super().has_view_permission(request, obj):
            return False
        allowed = self._viewable(request)
        if allowed is None:
            return True
        domain = _domain_of(self.model)
        if domain is not None:
            return domain in allowed
        row_domain = getattr(obj, "domain", "") if obj is not None and self._has_domain_column() else ""
        return not row_domain or row_domain in allowed

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        allowed = self._viewable(request)
        if allowed is not None and _domain_of(self.model) is None and self._has_domain_column():
            qs = qs.filter(Q(domain__in=allowed) | Q(domain=""))
        return qs


class ReadOnlyAdminMixin(DomainScopedAdminMixin):
    """Viewable, never edited, added or deleted here (the services own these rows)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyHistoryAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    """Read-only with a history view (who / through what / request / why). Reverting is refused."""

    history_list_display = AUDIT_COLUMNS

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            raise PermissionDenied("history is read-only here; changes go through ingest and steward actions")
        return super().history_form_view(request, object_id, version_id, extra_context)


class ChangeReasonForm(forms.ModelForm):
    change_reason = forms.CharField(
        max_length=100,
        help_text="Why this change? Stored in the history with your username.",
        widget=forms.TextInput(attrs={"size": 80}),
    )


class ReasonedHistoryAdmin(SafeHistoryIdMixin, SimpleHistoryAdmin):
    """Configuration (systems, ownership rules), editable by superusers; every save and deletion needs a change
    reason, kept on its history row."""

    form = ChangeReasonForm
    history_list_display = AUDIT_COLUMNS

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def get_fields(self, request, obj=None):
        fields = [f for f in super().get_fields(request, obj) if f != "change_reason"]
        if self.has_change_permission(request, obj):
            fields.append("change_reason")
        return fields

    def save_model(self, request, obj, form, change):
        reason = form.cleaned_data.get("change_reason", "").strip()
        obj._change_reason = reason
        with audit_reason(reason):
            super().save_model(request, obj, form, change)

    # A deletion needs a reason too: asked on the confirmation page, kept on the history row it writes. (The
    # changelist's "delete selected" action, which asks none, is not offered.)
    delete_confirmation_template = "admin/reasoned_delete_confirmation.html"

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(self, request, object_id, extra_context=None):
        if request.method == "POST" and request.POST.get("post") and self.has_delete_permission(request):
            reason = (request.POST.get("change_reason") or "").strip()[:100]
            if not reason:
                messages.error(request, "Say why it is deleted: the reason is kept in the history.")
                return self.delete_view_get(request, object_id, extra_context)
            with audit_reason(reason):
                return super().delete_view(request, object_id, extra_context)
        return super().delete_view(request, object_id, extra_context)

    def delete_view_get(self, request, object_id, extra_context=None):
        from django.http import HttpResponseRedirect

        return HttpResponseRedirect(request.get_full_path())

    def delete_model(self, request, obj):
        obj._change_reason = (request.POST.get("change_reason") or "").strip()[:100]
        super().delete_model(request, obj)


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"
    _RANGES = {
        "1d": (None, 1, "under a day"),
        "7d": (1, 7, "1–7 days"),
        "30d": (7, 30, "7–30 days"),
        "old": (30, None, "over 30 days"),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (_, _, label) in self._RANGES.items()]

    def queryset(self, request, queryset):
        if self.value() not in self._RANGES:
            return queryset
        low, high, _ = self._RANGES[self.value()]
        now = timezone.now()
        if low is not None:
            queryset = queryset.filter(created_at__lte=now - dt.timedelta(days=low))
        if high is not None:
            queryset = queryset.filter(created_at__gt=now - dt.timedelta(days=high))
        return queryset


# --- golden records -------------------------------------------------------------------------------------------

_SEARCH = {
    "legal_entity": ["name", "registration_number", "tax_id", "website", "city"],
    "customer": ["name", "website", "email_domain", "city"],
    "contract": ["contract_number", "title", "opportunity_id"],
    "project": ["project_code", "name"],
    "resource": ["first_name", "last_name", "email", "employee_number"],
    "rate_card": ["code", "name"],
}
_FILTERS = {
    "legal_entity": ["is_internal", "country", "functional_currency"],
    "customer": ["country", "segment", "industry"],
    "contract": ["contract_type", "billing_schedule", "revenue_treatment", "currency"],
    "project": ["currency"],
    "resource": ["worker_type", "country", "grade"],
    "rate_card": ["currency"],
}


class GoldenRecordAdmin(ReadOnlyHistoryAdmin):
    """One golden record: its values, then its cross-references, source records and per-field provenance."""

    spec: DomainSpec
    history_list_display = ["version", "status", *AUDIT_COLUMNS]
    list_per_page = 50
    show_full_result_count = False

    def get_list_display(self, request):
        return [*self.spec.title_fields, "status", "version", "updated_at"]

    def get_list_display_links(self, request, list_display):
        return [self.spec.title_fields[0]]

    def get_list_filter(self, request):
        return ["status", *_FILTERS[self.spec.name]]

    def get_search_fields(self, request):
        return _SEARCH[self.spec.name]

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": ["id", "status", "version", "merged_into", "created_at", "updated_at", "steward_view"]}),
            ("Values", {"fields": self.spec.field_names}),
            ("Where the values come from", {"fields": ["xrefs_readout", "sources_readout", "provenance_readout"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [
            "id",
            "status",
            "version",
            "merged_into",
            "created_at",
            "updated_at",
            *self.spec.field_names,
            "xrefs_readout",
            "sources_readout",
            "provenance_readout",
            "steward_view",
        ]

    @admin.display(description="Stewardship workbench")
    def steward_view(self, obj):
        try:
            url = reverse("admin:workbench_golden", args=[self.spec.name, obj.pk])
        except NoReverseMatch:
            return "—"
        return format_html('<a href="{}">sources, history, unmerge and pinned values</a>', url)

    def get_search_results(self, request, queryset, search_term):
        """Also find a record by its golden id, or by any system's id for it (a cross-reference)."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if not term:
            return results, may_have_duplicates
        extra = Q()
        golden_id = _as_uuid(term)
        if golden_id is not None:
            extra |= Q(pk=golden_id)
        xref_ids = CrossReference.objects.filter(domain=self.spec.name, source_id=term).values("golden_id")
        extra |= Q(pk__in=xref_ids)
        return results | queryset.filter(extra), may_have_duplicates

    @admin.display(description="Cross-references (which system knows it under which id)")
    def xrefs_readout(self, obj):
        xrefs = CrossReference.objects.filter(domain=self.spec.name, golden_id=obj.pk).order_by("system", "source_id")
        return _table(
            ["system", "source id", "source record", "since"],
            [
                [x.system_id, x.source_id, _link("sourcerecord", x.source_record_id, "view"), x.created_at]
                for x in xrefs
            ],
        )

    @admin.display(description="Source records (every version a system sent)")
    def sources_readout(self, obj):
        sources = SourceRecord.objects.filter(domain=self.spec.name, golden_id=obj.pk).order_by("system", "source_id")
        return _table(
            ["system", "source id", "status", "updated at (source)", "conflicts with the owner"],
            [
                [
                    s.system_id,
                    _link("sourcerecord", s.pk, s.source_id),
                    s.get_status_display(),
                    s.updated_at,
                    ", ".join(sorted(s.conflicts)) or "—",
                ]
                for s in sources
            ],
        )

    @admin.display(description="Provenance (per field: value, system, source record, rule, time)")
    def provenance_readout(self, obj):
        rows = []
        for name in self.spec.field_names:
            origin = obj.provenance.get(name)
            if not origin:
                continue
            field = self.spec.get(name)
            if field.kind == "ref":
                target = getattr(obj, name)
                value = _link(target._meta.model_name, target.pk, target) if target is not None else None
            else:
                value = getattr(obj, name)
            rows.append(
                [
                    name,
                    "—" if value in (None, "", []) else value,
                    origin.get("system") or "steward",
                    _link("sourcerecord", origin.get("source_record"), origin.get("source_id") or "—"),
                    origin.get("rule", ""),
                    origin.get("at", ""),
                ]
            )
        return _table(["field", "value", "system", "source record", "rule", "at"], rows)


def _golden_admin(spec: DomainSpec) -> type[GoldenRecordAdmin]:
    return type(f"{spec.model_name}Admin", (GoldenRecordAdmin,), {"spec": spec, "__module__": __name__})


for _spec in DOMAINS.values():
    admin.site.register(_spec.model, _golden_admin(_spec))


# --- source records, cross-references, match keys, pending references -------------------------------------


@admin.register(SourceRecord)
class SourceRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["source_id", "system", "domain", "status", "golden", "deleted", "updated_at", "processed_at"]
    list_filter = ["system", "domain", "status", "deleted"]
    search_fields = ["source_id"]
    show_full_result_count = False
    actions = ["reprocess"]
    fieldsets = [
        (None, {"fields": ["system", "domain", "source_id", "status", "golden", "deleted", "content_hash"]}),
        ("Times", {"fields": ["updated_at", "received_at", "processed_at"]}),
        (
            "Data",
            {"fields": ["attributes_pretty", "values_pretty", "errors_pretty", "conflicts_pretty", "open_items"]},
        ),
    ]
    readonly_fields = [
        "system",
        "domain",
        "source_id",
        "status",
        "golden",
        "deleted",
        "content_hash",
        "updated_at",
        "received_at",
        "processed_at",
        "attributes_pretty",
        "values_pretty",
        "errors_pretty",
        "conflicts_pretty",
        "open_items",
    ]

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        golden_id = _as_uuid(search_term)
        if golden_id is not None:
            results = results | queryset.filter(golden_id=golden_id)
        return results, may_have_duplicates

    @admin.display(description="golden record")
    def golden(self, obj):
        return golden_link(obj.domain, obj.golden_id)

    @admin.display(description="attributes (as received)")
    def attributes_pretty(self, obj):
        return _pretty(obj.attributes)

    @admin.display(description="values (validated, normalised)")
    def values_pretty(self, obj):
        return _pretty(obj.values)

    @admin.display(description="errors")
    def errors_pretty(self, obj):
        return _pretty(obj.errors) if obj.errors else "—"

    @admin.display(description="conflicts with the owner (kept here, not applied)")
    def conflicts_pretty(self, obj):
        return _pretty(obj.conflicts) if obj.conflicts else "—"

    @admin.display(description="open exceptions and pending references")
    def open_items(self, obj):
        rows = [
            [_link("dataexception", e.pk, e.get_kind_display()), e.message]
            for e in obj.exceptions.filter(status="open").order_by("pk")
        ]
        rows += [
            ["waiting for", f"{p.field} → {p.target_system_id}:{p.target_domain}:{p.target_source_id}"]
            for p in obj.pending_references.all()
        ]
        return _table(["what", "detail"], rows)

    def has_reprocess_permission(self, request) -> bool:
        return request.user.has_perm("canonical.change_sourcerecord")

    @admin.action(description="Run the pipeline again on the selected source records", permissions=["reprocess"])
    def reprocess(self, request, queryset: QuerySet[SourceRecord]):
        from canonical.services.ingest import source_record_reprocess

        outcomes: dict[str, int] = {}
        with audit_reason("re-processed from the admin"):
            for sr in queryset.order_by("pk")[:500]:
                result = source_record_reprocess(sr)
                outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        summary = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "nothing selected"
        self.message_user(request, f"Re-processed: {summary}", messages.SUCCESS)


@admin.register(CrossReference)
class CrossReferenceAdmin(ReadOnlyHistoryAdmin):
    list_display = ["source_id", "system", "domain", "golden", "source_record_link", "updated_at"]
    list_filter = ["system", "domain"]
    search_fields = ["source_id"]
    readonly_fields = ["system", "domain", "source_id", "golden", "source_record_link", "created_at", "updated_at"]
    fields = readonly_fields

    @admin.display(description="golden record")
    def golden(self, obj):
        return golden_link(obj.domain, obj.golden_id)

    @admin.display(description="source record")
    def source_record_link(self, obj):
        return _link("sourcerecord", obj.source_record_id, "view") if obj.source_record_id else "— (assigned on push)"


@admin.register(MatchKey)
class MatchKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["key_value", "key_type", "domain", "golden", "source_record"]
    list_filter = ["domain", "key_type"]
    search_fields = ["key_value"]
    list_select_related = ["source_record"]
    show_full_result_count = False

    @admin.display(description="golden record")
    def golden(self, obj):
        return golden_link(obj.domain, obj.golden_id)


@admin.register(PendingReference)
class PendingReferenceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["source_record", "field", "target_system", "target_domain", "target_source_id", "created_at"]
    list_filter = ["target_domain", "target_system"]
    search_fields = ["target_source_id", "source_record__source_id"]
    list_select_related = ["source_record"]


# --- systems and ownership rules (administrators edit these) ----------------------------------------------


class SystemForm(ChangeReasonForm):
    subscribed_domains = forms.MultipleChoiceField(
        choices=Domain.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Domains whose golden-record changes are pushed to this system.",
    )

    class Meta:
        model = System
        fields = ["code", "name", "kind", "description", "priority", "subscribed_domains", "is_active"]


@admin.register(System)
class SystemAdmin(ReasonedHistoryAdmin):
    form = SystemForm
    list_display = ["code", "name", "kind", "priority", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name"]

    def get_readonly_fields(self, request, obj=None):
        return ["code"] if obj is not None else []

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # source records, rules and xrefs point at systems: deactivate instead


class OwnershipRuleForm(ChangeReasonForm):
    class Meta:
        model = OwnershipRule
        fields = ["domain", "field", "system", "note"]

    def clean(self):
        data = super().clean()
        domain, field = data.get("domain"), (data.get("field") or "").strip()
        data["field"] = field
        if domain and field and get_domain(domain).get(field) is None:
            self.add_error(
                "field", f"'{field}' is not a {domain} field; use one of {', '.join(get_domain(domain).field_names)}"
            )
        return data


@admin.register(OwnershipRule)
class OwnershipRuleAdmin(ReasonedHistoryAdmin):
    form = OwnershipRuleForm
    list_display = ["domain", "field_or_domain", "system", "note", "updated_at"]
    list_filter = ["domain", "system"]
    search_fields = ["field", "note"]

    @admin.display(description="field", ordering="field")
    def field_or_domain(self, obj):
        return obj.field or "(whole domain)"


# --- exceptions, overrides, the outbox, API clients --------------------------------------------------------


@admin.register(DataException)
class DataExceptionAdmin(ReadOnlyHistoryAdmin):
    list_display = ["id", "kind", "status", "domain", "system", "source", "short_message", "age", "assignee"]
    list_filter = ["kind", "status", "domain", "system", AgeFilter]
    search_fields = ["message", "source_record__source_id"]
    list_select_related = ["source_record", "assignee"]
    history_list_display = ["status", *AUDIT_COLUMNS]
    readonly_fields = [
        "kind",
        "status",
        "domain",
        "system",
        "source",
        "golden",
        "message",
        "detail_pretty",
        "assignee",
        "resolution_note",
        "created_at",
        "updated_at",
        "resolved_at",
    ]
    fields = readonly_fields

    @admin.display(description="source record")
    def source(self, obj):
        return _link("sourcerecord", obj.source_record_id, obj.source_record) if obj.source_record_id else "—"

    @admin.display(description="golden record")
    def golden(self, obj):
        return golden_link(obj.domain, obj.golden_id)

    @admin.display(description="message")
    def short_message(self, obj):
        return obj.message if len(obj.message) <= 120 else obj.message[:117] + "…"

    @admin.display(description="age", ordering="created_at")
    def age(self, obj):
        return timesince(obj.created_at)

    @admin.display(description="detail")
    def detail_pretty(self, obj):
        return _pretty(obj.detail)


@admin.register(FieldOverride)
class FieldOverrideAdmin(ReadOnlyHistoryAdmin):
    list_display = ["field", "domain", "golden", "value", "is_active", "created_by", "created_at"]
    list_filter = ["domain", "is_active"]
    search_fields = ["field", "reason"]
    list_select_related = ["created_by"]
    readonly_fields = ["domain", "golden", "field", "value", "reason", "is_active", "created_by", "created_at"]
    fields = readonly_fields

    @admin.display(description="golden record")
    def golden(self, obj):
        return golden_link(obj.domain, obj.golden_id)


@admin.register(ChangeEvent)
class ChangeEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "type", "domain", "golden", "version", "changed", "origin_system", "actor", "occurred_at"]
    list_filter = ["type", "domain", "origin_system"]
    search_fields = ["request_id", "actor"]
    show_full_result_count = False
    readonly_fields = [
        "id",
        "event_id",
        "type",
        "domain",
        "golden",
        "version",
        "changed_fields",
        "data_pretty",
        "origin_system",
        "actor",
        "request_id",
        "occurred_at",
    ]
    fields = readonly_fields

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        golden_id = _as_uuid(search_term)
        if golden_id is not None:
            results = results | queryset.filter(golden_id=golden_id)
        return results, may_have_duplicates

    @admin.display(description="golden record")
    def golden(self, obj):
        return golden_link(obj.domain, obj.golden_id)

    @admin.display(description="changed fields")
    def changed(self, obj):
        return ", ".join(obj.changed_fields)

    @admin.display(description="data")
    def data_pretty(self, obj):
        return _pretty(obj.data)


@admin.register(ApiClient)
class ApiClientAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Keys are created with `manage.py api_client create`; the admin shows clients and can revoke them."""

    list_display = ["name", "system", "key_prefix", "scope_list", "is_active", "last_used_at", "created_at"]
    list_filter = ["is_active", "system"]
    search_fields = ["name", "key_prefix"]
    fields = ["name", "system", "scopes", "key_prefix", "is_active", "created_at", "revoked_at", "last_used_at"]
    readonly_fields = fields  # never the key hash
    actions = ["revoke"]

    @admin.display(description="scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    def has_revoke_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    @admin.action(description="Revoke the selected API clients' keys", permissions=["revoke"])
    def revoke(self, request, queryset: QuerySet[ApiClient]):
        from canonical.api.clients import ApiClientError, api_client_revoke

        for client in queryset.filter(is_active=True):
            try:
                api_client_revoke(name=client.name)
            except ApiClientError as exc:
                self.message_user(request, str(exc), messages.WARNING)
            else:
                self.message_user(request, f"Revoked {client.name}", messages.SUCCESS)


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["key", "client_name", "status_code", "created_at"]
    list_filter = ["status_code"]
    search_fields = ["key", "client_name"]
    fields = ["client_name", "key", "request_hash", "status_code", "response_pretty", "created_at"]
    readonly_fields = fields

    @admin.display(description="response")
    def response_pretty(self, obj):
        return _pretty(obj.response)
