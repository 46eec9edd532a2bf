"""Reconciliation runs and items in the admin (read-only), and the operations dashboard's entry.

Imported from ConnectorsConfig.ready(), so that it sits beside whatever connectors/admin.py registers.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from canonical.admin import DomainScopedAdminMixin
from connectors.models import OperationsDashboard, ReconciliationItem, ReconciliationRun


class ReadOnlyAdmin(DomainScopedAdminMixin, admin.ModelAdmin):
    """Read-only; a role sees the items of the domains it may view (canonical.admin.DomainScopedAdminMixin)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "system", "started_at", "status", "records", "differences_shown", "actions_shown",
                    "duration_ms", "trigger"]  # fmt: skip
    list_filter = ["system", "status", "trigger"]
    date_hierarchy = "started_at"
    readonly_fields = ["system", "domains", "trigger", "status", "started_at", "finished_at", "duration_ms", "records",
                       "counts", "actions", "errors", "request_id", "items_link"]  # fmt: skip
    fields = readonly_fields

    @admin.display(description="differences")
    def differences_shown(self, run: ReconciliationRun) -> str:
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(run.counts.items())) or "none"

    @admin.display(description="actions")
    def actions_shown(self, run: ReconciliationRun) -> str:
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(run.actions.items())) or "—"

    @admin.display(description="items")
    def items_link(self, run: ReconciliationRun) -> str:
        url = reverse("admin:connectors_reconciliationitem_changelist") + f"?run__id__exact={run.pk}"
        return format_html('<a href="{}">{} difference(s)</a>', url, run.differences)


@admin.register(ReconciliationItem)
class ReconciliationItemAdmin(ReadOnlyAdmin):
    list_display = ["id", "run", "domain", "kind", "action", "source_id", "golden_id", "fields_shown", "exception_link"]
    list_filter = ["kind", "action", "domain", "run__system"]
    search_fields = ["source_id", "golden_id"]
    list_select_related = ["run"]
    readonly_fields = ["run", "domain", "kind", "action", "source_id", "golden_id", "fields", "reason", "outcome",
                       "exception_link"]  # fmt: skip
    fields = readonly_fields

    @admin.display(description="fields")
    def fields_shown(self, item: ReconciliationItem) -> str:
        return ", ".join(sorted(item.fields)) if item.kind == "field_drift" else ""

    @admin.display(description="exception")
    def exception_link(self, item: ReconciliationItem) -> str:
        if not item.exception_id:
            return "—"
        url = reverse("admin:canonical_dataexception_change", args=[item.exception_id])
        return format_html('<a href="{}">#{}</a>', url, item.exception_id)


@admin.register(OperationsDashboard)
class OperationsDashboardAdmin(admin.ModelAdmin):
    """Its list page is the dashboard: staff only (the admin site's own login check, plus is_staff here)."""

    def has_view_permission(self, request, obj=None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        from connectors.ops.dashboard import dashboard_view

        return dashboard_view(request, admin_site=self.admin_site, extra_context=extra_context)
