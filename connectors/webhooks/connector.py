"""Outbound webhooks: each outbox event is POSTed, signed, to a subscriber as a CloudEvent. Events go one
by one and in order (no coalescing): a subscriber sees every change, including merges and unmerges."""

from __future__ import annotations

import json

from connectors.base import Connector, PushItem, PushResult, push_each

from .client import WebhookClient


class WebhookConnector(Connector):
    kind = "webhook"
    coalesce = False
    push_domains = ("legal_entity", "customer", "contract", "project", "resource", "rate_card")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.client = WebhookClient(self.base_url, self.secret)

    @classmethod
    def covers(cls, domain: str) -> set[str]:
        from canonical.domains import get_domain

        return set(get_domain(domain).field_names)

    def push(self, items: list[PushItem]) -> list[PushResult]:
        def one(item: PushItem) -> None:
            body = json.dumps(item.event, sort_keys=True, default=str).encode()
            self.client.send(item.event["id"], body)

        return push_each(items, one, self)

    def close(self) -> None:
        self.client.close()
