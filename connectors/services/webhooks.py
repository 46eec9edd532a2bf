"""Inbound webhooks: a system pushes its changes to the hub, signed with the connection's secret.

Receipt checks the signature and the whole body, then stores the webhook once per (system, webhook id) —
the same webhook sent again, even concurrently, is stored once — and queues its ingest. Every refusal is
answered like the rest of the API, `{"detail": "<one sentence>", "errors": {field: [messages]}}`, and
stores nothing: 404 (no enabled connection with a secret), 401 (signature) and 400 (body).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from canonical.audit import Channel, audit_context
from canonical.domains import DOMAINS, get_domain
from canonical.services.ingest import EnvelopeError, envelope_parse, source_records_ingest
from connectors.models import Connection, InboundWebhook, InboundWebhookStatus
from connectors.webhooks.client import SignatureError, verify
from connectors.webhooks.mapping import INBOUND_SHAPE


@dataclass
class WebhookAnswer:
    status: int
    body: dict


def _refused(status: int, detail: str, errors: dict | None = None) -> WebhookAnswer:
    return WebhookAnswer(status, {"detail": detail, "errors": errors or {}})


def webhook_receive(*, system: str, headers, body: bytes) -> WebhookAnswer:
    conn = Connection.objects.filter(system_id=system, enabled=True).first()
    if conn is None or not conn.secret:
        return _refused(404, f"no enabled webhook connection for system '{system}'")
    try:
        webhook_id = verify(conn.secret, headers, body)
    except SignatureError as exc:
        return _refused(401, str(exc), exc.errors)
    if (problem := _id_problem(webhook_id)) is not None:
        return _refused(400, f"webhook-id: {problem}; nothing was stored", {"webhook-id": [problem]})
    try:
        payload = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _refused(400, f"the body is not JSON; {INBOUND_SHAPE}", {"body": ["not JSON"]})
    errors: dict = {}
    if not isinstance(payload, dict):
        return _refused(400, f"the body is not a JSON object; {INBOUND_SHAPE}", {"body": ["not a JSON object"]})
    domain = payload.get("domain")
    if domain not in DOMAINS:
        errors["domain"] = [f"expected one of {', '.join(DOMAINS)}"]
    records = payload.get("records")
    if not isinstance(records, list) or not records:
        errors["records"] = ["a non-empty list of source records is required"]
    if not errors:
        spec = get_domain(domain)
        for n, record in enumerate(records):
            try:
                envelope_parse(record, spec=spec)
            except EnvelopeError as exc:
                errors.setdefault("records", {})[str(n)] = exc.errors
    if errors:
        return _refused(400, _summary(errors), errors)
    try:
        with transaction.atomic():
            hook = InboundWebhook.objects.create(system_id=system, webhook_id=webhook_id, domain=domain,
                                                 payload=payload)  # fmt: skip
            transaction.on_commit(lambda: _queue(hook.pk))
    except IntegrityError:
        existing = InboundWebhook.objects.get(system_id=system, webhook_id=webhook_id)
        return WebhookAnswer(200, {"status": "duplicate", "id": existing.pk, "webhook_id": webhook_id})
    return WebhookAnswer(202, {"status": "accepted", "id": hook.pk, "webhook_id": webhook_id})


def _id_problem(webhook_id: str) -> str | None:
    """Why the (signed) webhook-id cannot be kept in InboundWebhook.webhook_id, else None."""
    max_length = InboundWebhook._meta.get_field("webhook_id").max_length
    if len(webhook_id) > max_length:
        return f"longer than {max_length} characters"
    if "\x00" in webhook_id:
        return "holds a NUL character (\\u0000), which cannot be stored"
    return None  # an unpaired surrogate cannot be signed: verify() refuses it


def _summary(errors: dict) -> str:
    """One sentence for `detail`: the batch-level problem, or how many records are malformed and the first."""
    if "records" in errors and isinstance(errors["records"], dict):
        first = next(iter(errors["records"]))
        return f"{len(errors['records'])} record(s) malformed (first: records[{first}]); nothing was stored"
    field, messages = next(iter(errors.items()))
    return f"{field}: {messages[0]}; nothing was stored"


def _queue(pk: int) -> None:
    from connectors.tasks import webhook_process

    try:
        webhook_process.delay(pk)
    except Exception:  # noqa: BLE001  (the sweep picks it up)
        pass


def webhook_process(*, webhook_pk: int) -> InboundWebhook:
    """Ingest a stored webhook (idempotent: done once, under a row lock)."""
    with transaction.atomic():
        hook = InboundWebhook.objects.select_for_update().get(pk=webhook_pk)
        if hook.status == InboundWebhookStatus.DONE:
            return hook
        spec = get_domain(hook.domain)
        envelopes = [envelope_parse(r, spec=spec) for r in hook.payload["records"]]
        with audit_context(actor=f"connector:{hook.system_id}", channel=Channel.CONNECTOR,
                           reason=f"webhook {hook.webhook_id} from {hook.system_id}"):  # fmt: skip
            results = source_records_ingest(system=hook.system_id, domain=hook.domain, envelopes=envelopes)
        hook.status = InboundWebhookStatus.DONE
        hook.results = [r.as_dict() for r in results]
        hook.processed_at = timezone.now()
        hook.save()
        return hook


def webhooks_waiting(*, older_than_seconds: float = 30) -> list[int]:
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    return list(
        InboundWebhook.objects.filter(status=InboundWebhookStatus.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:500]
    )
