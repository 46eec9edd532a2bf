from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "connectors"
    verbose_name = "Connectors and sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from canonical.models import ChangeEvent

        from .signals import change_event_saved

        # Outbox plumbing: every ChangeEvent gets its deliveries and feed position in its own transaction.
        post_save.connect(change_event_saved, sender=ChangeEvent, dispatch_uid="connectors.outbox")
        # Reconciliation and operations: admin pages, Celery tasks, structured-log observers.
        from .ops import ops_setup

        ops_setup()
