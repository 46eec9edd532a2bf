"""Inbound webhooks: a system pushes its changes to the hub, signed with the connection's secret.

Receipt checks the signature and the whole body, then stores the webhook once per (system, webhook id) —
the same webhook sent again, even concurrently, is stored once — and queues its ingest. Every refusal is
answered like the rest of the API, `{"detail": "<one sentence>", "errors": {field: [messages]}}`, and
stores nothing: 404 (no enabled connection with a secret), 401 (signature) and 400 (body).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from canonical.audit import Channel, audit_context
from canonical.domains import DOMAINS, get_domain
from canonical.services.ingest import EnvelopeError, envelope_parse, source_records_ingest
from canonical.validation import path_text, refuse_json_constant, text_problem, unstorable_at
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
        payload = _payload_parse(body)
    except ValueError as exc:
        return _refused(400, f"the body is not JSON ({exc}); {INBOUND_SHAPE}", {"body": [f"not JSON: {exc}"]})
    if not isinstance(payload, dict):
        return _refused(400, f"the body is not a JSON object; {INBOUND_SHAPE}", {"body": ["not a JSON object"]})
    records = payload.get("records")
    # Outside the records first (their contents are each record's own field errors, below).
    rest = {k: v for k, v in payload.items() if k != "records" or not isinstance(v, list)}
    if (found := unstorable_at(rest, max_levels=_MAX_NESTING)) is not None:
        message = f"{path_text(found[0]) or 'the body'}: {found[1]}"
        return _refused(400, f"body: {message}; nothing was stored", {"body": [message]})
    errors: dict = {}
    domain = payload.get("domain")
    if not isinstance(domain, str) or domain not in DOMAINS:
        errors["domain"] = [f"expected one of {', '.join(DOMAINS)}"]
    if not isinstance(records, list) or not records:
        errors["records"] = ["a non-empty list of source records is required"]
    if not errors:
        spec = get_domain(domain)
        for n, record in enumerate(records):
            # Checked before envelope_parse, whose messages may quote a value (an unknown key, an updated_at):
            # one holding an unpaired surrogate could not even be encoded into the 400 answer.
            if (unstorable := _record_unstorable(record)) is not None:
                errors.setdefault("records", {})[str(n)] = unstorable
                continue
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


# The payload is stored as jsonb before it is ingested. Records nest 4 levels down to their attributes, and
# envelope_parse allows 16 more inside an attribute; deeper JSON would pass the parser (about 1,000 levels)
# and then overflow the JSON encoder on the way to PostgreSQL.
_MAX_NESTING = 32


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 and friends: valid JSON, but Infinity once read
        raise ValueError(f"the number {text[:30]}{'…' if len(text) > 30 else ''} is out of range")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # over Python's int digit limit: its message is advice for the server
        raise ValueError(f"a whole number of {len(text.lstrip('-'))} digits is too long") from None


def _payload_parse(body: bytes) -> Any:
    """The body as JSON, or ValueError saying why it is not JSON the hub can read (NaN, Infinity and
    numbers that overflow to it included, as JSON has no such numbers)."""
    try:
        return json.loads(body or b"null", parse_constant=refuse_json_constant, parse_float=_finite_float,
                          parse_int=_int)  # fmt: skip
    except RecursionError:
        raise ValueError("nested too deeply") from None
    # JSONDecodeError and UnicodeDecodeError are ValueErrors, with a message saying where.


def _record_unstorable(record: Any) -> dict[str, list[str]] | None:
    """unstorable_at for one record (at depth 3 of the body), as field errors shaped like envelope_parse's."""
    if (found := unstorable_at(record, max_levels=_MAX_NESTING, level=3)) is None:
        return None
    where, what = found
    if where and isinstance(where[0], str):
        field, inside = where[0], path_text(where[1:])
    else:
        field, inside = "non_field_errors", path_text(where)
    return {field: [f"{inside}: {what}" if inside else what]}


def _id_problem(webhook_id: str) -> str | None:
    """Why the (signed) webhook-id cannot be kept in InboundWebhook.webhook_id, else None."""
    max_length = InboundWebhook._meta.get_field("webhook_id").max_length
    if len(webhook_id) > max_length:
        return f"longer than {max_length} characters"
    return text_problem(webhook_id)


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
