"""Celery tasks of operations: the worker heartbeat that /health reads."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="connectors.heartbeat", ignore_result=True)
def heartbeat() -> str:
    """Run by beat on a worker: proves that beat, the broker and a worker all work."""
    from .health import heartbeat_write

    return heartbeat_write()


def _worker_ready(sender=None, **kwargs) -> None:
    """A worker that has just started counts as alive at once (before beat's first heartbeat)."""
    from .health import heartbeat_write

    try:
        heartbeat_write(worker=getattr(sender, "hostname", None))
    except Exception:  # noqa: BLE001  (a database hiccup at start-up must not stop the worker)
        import logging

        logging.getLogger(__name__).warning("could not write the start-up heartbeat", exc_info=True)


def _connect() -> None:
    from celery.signals import worker_ready

    worker_ready.connect(_worker_ready, dispatch_uid="connectors.ops.worker_ready", weak=False)


_connect()
