from django.apps import AppConfig


class CanonicalConfig(AppConfig):
    name = "canonical"
    verbose_name = "Golden records"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from . import audit  # noqa: F401  (history signal receivers)
        from .services.defaults import defaults_ensure_on_migrate

        post_migrate.connect(defaults_ensure_on_migrate, sender=self)
