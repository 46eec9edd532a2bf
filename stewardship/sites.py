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
