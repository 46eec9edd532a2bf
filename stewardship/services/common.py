"""What every steward service shares: the error it raises, who is acting, and the audit block it runs in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.db import transaction

from canonical.audit import AuditContext, Channel, audit_context, current_context


class StewardshipError(ValueError):
    """Bad input to a steward action: `errors` maps a field to messages (the API answers 400 with them)."""

    def __init__(self, errors: dict[str, list[str]], *, status_code: int = 400):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors
        self.status_code = status_code


class NotFound(StewardshipError):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors, status_code=404)


def real_user(user):
    """The Django user, or None for API-client principals and anonymous callers (they have no user row)."""
    user_model = get_user_model()
    return user if isinstance(user, user_model) and user.pk is not None else None


def actor_name(user=None, actor: str | None = None) -> str:
    if actor:
        return actor
    if user is not None and getattr(user, "is_authenticated", False):
        return user.get_username()
    return current_context().actor


@contextmanager
def steward_action(
    *, reason: str, user=None, actor: str | None = None, channel: str | None = None
) -> Iterator[AuditContext]:
    """Enter the audit block of a decision: a person acts as a steward, a batch run as a job. One transaction: the
    decision's changes and their history rows are written together or not at all."""
    who = actor_name(user, actor)
    chan = channel or (Channel.STEWARD if user is not None or actor is None else Channel.JOB)
    outer = current_context()
    # one time for the decision's history rows (an as-of read sees all of it or none), shared with an enclosing
    # decision; the transaction outermost, so that what runs on commit (the relay, eagerly) is not part of it
    moment = outer.moment if outer.moment is not None else []
    with transaction.atomic(), audit_context(actor=who, channel=chan, reason=reason, user=user, moment=moment) as ctx:
        yield ctx


def require_reason(reason: str | None, errors: dict[str, list[str]], *, what: str = "this decision") -> str:
    text = (reason or "").strip()
    if not text:
        errors.setdefault("reason", []).append(f"a reason is required for {what}")
    return text
