"""Outbox plumbing: the canonical app writes a ChangeEvent with every golden change; here, in the same
transaction, the connectors add its deliveries and its change-feed position."""

from __future__ import annotations


def change_event_saved(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if not created or raw:
        return
    from .services.outbox import outbox_on_event

    outbox_on_event(event=instance)
