"""Operational visibility: health, Prometheus metrics, the operations dashboard and structured logs."""


def ops_setup() -> None:
    """Called from ConnectorsConfig.ready(): admin pages, Celery tasks and the structured-log observers."""
    from connectors.reconciliation import admin as _reconciliation_admin  # noqa: F401
    from connectors.reconciliation import tasks as _reconciliation_tasks  # noqa: F401

    from . import tasks as _ops_tasks  # noqa: F401
    from .logging import observers_connect

    observers_connect()
