"""The stewardship models in the admin (read-only, with their audit history), linked to the workbench.

Decisions are taken in the workbench (/admin/workbench/, stewardship/views/), never by editing these rows.
Also here: systems and ownership rules become editable by the "MDM administrators" group as well as by
superusers (canonical/admin.py registers them for superusers only).
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from canonical.admin import AUDIT_COLUMNS, DomainScopedAdminMixin, OwnershipRuleAdmin, SystemAdmin, golden_link
from canonical.models import OwnershipRule, System
from stewardship import roles
from stewardship.models import MatchRun, MergeDecision, NotAMatch, ReviewTask


class _ReadOnly(DomainScopedAdminMixin, SimpleHistoryAdmin):
    history_list_display = AUDIT_COLUMNS

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            raise PermissionDenied("history is read-only; decisions are taken in the workbench")
        return super().history_form_view(request, object_id, version_id, extra_context)


@admin.register(ReviewTask)
class ReviewTaskAdmin(_ReadOnly):
    list_display = ["id", "domain", "status", "score", "reason", "assignee", "created_at", "workbench"]
    list_filter = ["status", "domain"]
    search_fields = ["reason", "note"]
    list_select_related = ["assignee"]
    history_list_display = ["status", *AUDIT_COLUMNS]
    readonly_fields = [
        "workbench",
        "domain",
        "golden",
        "source_record",
        "status",
        "score",
        "reason",
        "priority",
        "assignee",
        "note",
        "candidates",
        "created_by",
        "created_at",
        "decided_by",
        "decided_at",
    ]
    fields = readonly_fields

    @admin.display(description="workbench")
    def workbench(self, obj):
        return format_html('<a href="{}">compare and decide</a>', reverse("admin:workbench_compare", args=[obj.pk]))

    @admin.display(description="record under review")
    def golden(self, obj):
        return golden_link(obj.domain, obj.golden_id)


@admin.register(MergeDecision)
class MergeDecisionAdmin(_ReadOnly):
    list_display = ["id", "domain", "survivor", "actor", "channel", "reason", "created_at"]
    list_filter = ["domain", "channel"]
    search_fields = ["reason", "actor"]
    readonly_fields = [
        "domain",
        "survivor",
        "retired_ids",
        "field_choices",
        "reason",
        "actor",
        "channel",
        "request_id",
        "review_task",
        "created_at",
    ]
    fields = readonly_fields

    @admin.display(description="survivor")
    def survivor(self, obj):
        if not obj.survivor_id:
            return "—"
        url = reverse("admin:workbench_golden", args=[obj.domain, obj.survivor_id])
        return format_html('<a href="{}">{}</a>', url, str(obj.survivor_id)[:8] + "…")


@admin.register(NotAMatch)
class NotAMatchAdmin(_ReadOnly):
    list_display = ["id", "domain", "source_record_a", "source_record_b", "is_active", "origin", "created_by"]
    list_filter = ["domain", "is_active", "origin"]
    search_fields = ["reason", "created_by"]
    list_select_related = ["source_record_a", "source_record_b"]
    readonly_fields = [
        "domain",
        "source_record_a",
        "source_record_b",
        "reason",
        "is_active",
        "origin",
        "review_task",
        "created_by",
        "created_at",
    ]
    fields = readonly_fields


@admin.register(MatchRun)
class MatchRunAdmin(admin.ModelAdmin):
    list_display = ["id", "domain", "status", "partitions", "actor", "started_at", "finished_at"]
    list_filter = ["domain", "status"]
    readonly_fields = [f.name for f in MatchRun._meta.fields]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class _AdministeredByRole:
    """Superusers and members of "MDM administrators" edit; everyone else with view permission reads."""

    def has_add_permission(self, request, obj=None) -> bool:
        return roles.is_administrator(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return roles.is_administrator(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return roles.is_administrator(request.user)


class RoleOwnershipRuleAdmin(_AdministeredByRole, OwnershipRuleAdmin):
    pass


class RoleSystemAdmin(_AdministeredByRole, SystemAdmin):
    def has_delete_permission(self, request, obj=None) -> bool:
        return SystemAdmin.has_delete_permission(self, request, obj) and roles.is_administrator(request.user)


for _model, _admin in ((OwnershipRule, RoleOwnershipRuleAdmin), (System, RoleSystemAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)
