"""The hub's admin site: Django's, plus the stewardship workbench under /admin/workbench/ and a dashboard index.

Installed in place of `django.contrib.admin` (INSTALLED_APPS names `stewardship.sites.MdmAdminConfig`), so
`admin.site` is an `MdmAdminSite` and every app's `admin.py` registers on it as usual.
"""

from __future__ import annotations

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.db.models.signals import post_migrate


class MdmAdminSite(admin.AdminSite):
    site_header = "Master data hub"
    site_title = "MDM hub"
    index_title = "Dashboard"
    index_template = "stewardship/admin_index.html"

    def get_urls(self):
        from stewardship.views.urls import workbench_urls

        return [*workbench_urls(self), *super().get_urls()]

    def workbench_context(self, request) -> dict:
        """`each_context` without the app list: the workbench pages have no navigation sidebar to fill."""
        script_name = request.META["SCRIPT_NAME"]
        return {
            "site_title": self.site_title,
            "site_header": self.site_header,
            "site_url": script_name if self.site_url == "/" and script_name else self.site_url,
            "has_permission": self.has_permission(request),
            "available_apps": [],
            "is_popup": False,
            "is_nav_sidebar_enabled": False,
            "log_entries": self.get_log_entries(request),
        }

    def index(self, request, extra_context=None):
        from stewardship.views.dashboard import dashboard_context

        return super().index(request, {**dashboard_context(request), **(extra_context or {})})


class MdmAdminConfig(AdminConfig):
    default_site = "stewardship.sites.MdmAdminSite"

    def ready(self) -> None:
        super().ready()
        from stewardship.roles import roles_sync_on_migrate

        post_migrate.connect(
            roles_sync_on_migrate, sender=apps.get_app_config("stewardship"), dispatch_uid="stewardship_roles_sync"
        )
