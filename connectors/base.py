"""The connector interface: what the hub asks of every system it syncs with.

A connector pulls changes since a cursor, pushes golden records (upsert by the hub's golden id as the
system's external id, returning the system's own id) and takes a full snapshot. Each kind of system has a
package (`client.py` speaks its API, `mapping.py` translates between its shape and the canonical model,
`connector.py` ties them to this interface).

Errors are `TransportError(permanent=…)`: the retry rule is one line — a permanent error goes to the
dead-letter queue (and the stewards' exception queue), a transient one is retried with backoff.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from canonical.services.ingest import Envelope


class TransportError(Exception):
    """A call to a system failed. `permanent` says whether trying again can help.

    `retry_after` (seconds) is the system's own hint (HTTP Retry-After); `status` the HTTP status if any.
    """

    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
        self.status = status


def error_for_status(status: int, message: str, *, retry_after: float | None = None) -> TransportError:
    """429, 408 and 5xx are transient; any other 4xx (and 300: ambiguous external id) is permanent."""
    transient = status in (408, 429) or status >= 500
    return TransportError(message, permanent=not transient, retry_after=retry_after, status=status)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def backoff_delay(
    attempt: int, *, base: float, cap: float, retry_after: float | None = None, rng: random.Random | None = None
) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 1): exponential with full jitter.

    The delay is drawn uniformly from [exp/2, exp] where exp = min(cap, base * 2**(attempt-1)), so that
    many failing deliveries do not retry in lock-step; a system's Retry-After is honoured as a floor.
    """
    rng = rng or random
    exp = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = rng.uniform(exp / 2, exp)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def parse_remote_datetime(text: str) -> dt.datetime:
    """An ISO 8601 instant as systems write it (`Z`, `+0000` or `+00:00`), as an aware UTC datetime."""
    import re

    text = str(text).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    m = re.match(r"^(.*\d{2}:\d{2}:\d{2}(?:\.\d+)?)([+-])(\d{2})(\d{2})$", text)
    if m:
        text = f"{m.group(1)}{m.group(2)}{m.group(3)}:{m.group(4)}"
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


@dataclass(frozen=True)
class Cursor:
    """A compound position in a system's change stream: modification time, then id to break ties."""

    ts: dt.datetime | None = None
    id: str = ""

    def as_json(self) -> dict:
        return {"ts": self.ts.isoformat() if self.ts else None, "id": self.id}

    @classmethod
    def from_json(cls, data: dict | None) -> Cursor:
        if not data or not data.get("ts"):
            return cls()
        return cls(ts=dt.datetime.fromisoformat(data["ts"]), id=str(data.get("id") or ""))

    def after(self, other: Cursor) -> bool:
        if other.ts is None:
            return self.ts is not None
        if self.ts is None:
            return False
        return (self.ts, self.id) > (other.ts, other.id)

    def since(self, overlap: dt.timedelta) -> dt.datetime | None:
        """The inclusive lower bound of the next pull: the cursor's time minus the overlap window."""
        return self.ts - overlap if self.ts else None


@dataclass
class PullPage:
    """One page of changes, and the cursor that covers it (saved in the same transaction as its ingest)."""

    domain: str
    envelopes: list[Envelope]
    cursor: Cursor
    errors: list[str] = field(default_factory=list)  # rows that are not source records at all
    in_transaction: Callable[[], None] | None = None  # run inside the page's transaction (e.g. mark a file)
    after_commit: Callable[[], None] | None = None


@dataclass(frozen=True)
class PushItem:
    """One golden record to upsert: the hub's id is the system's external id."""

    delivery_id: int
    domain: str
    golden_id: str
    version: int
    status: str
    values: dict[str, Any]  # canonical values; references as golden id strings
    refs: dict[str, str | None] = field(default_factory=dict)  # reference field → this system's id, if known
    event: dict[str, Any] = field(default_factory=dict)  # the outbox event as a CloudEvent (webhooks send it)
    # this system's own id of the record, when the record came from there (a source record the hub pulled): the
    # push updates that record instead of creating another one under the hub's id
    remote_id: str | None = None
    # the system has this record already (a push to it succeeded before, or it came from there): an update
    known: bool = False


@dataclass
class PushResult:
    """What became of one PushItem: `remote_id` on success, else an error (with permanence)."""

    delivery_id: int
    remote_id: str | None = None
    created: bool = False
    error: TransportError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Connector:
    """Base class of the connectors of one kind of system. Subclasses fill in the three verbs."""

    kind: ClassVar[str] = ""
    coalesce: ClassVar[bool] = True  # a push sends current state, so it also settles older pending changes
    pull_domains: ClassVar[tuple[str, ...]] = ()
    push_domains: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, system: str, base_url: str, secret: str = "", options: dict | None = None):
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.options = options or {}
        # Set by the relay for a push: called with the items of each request just before it is sent, it holds
        # their deliveries' leases for that request and returns the items still this worker's to send.
        self.request_hold: Callable[[list[PushItem]], list[PushItem]] | None = None

    def held(self, items: list[PushItem]) -> tuple[list[PushItem], list[PushResult]]:
        """Before a request: the items still ours to send, and a result for each of the others (their lease ran
        out and another worker may have taken them: the relay finds the delivery no longer its own)."""
        if self.request_hold is None:
            return items, []
        kept = self.request_hold(items)
        if len(kept) == len(items):
            return items, []
        ids = {item.delivery_id for item in kept}
        lost = TransportError("the delivery's lease ran out before its request was sent", permanent=False)
        return kept, [
            PushResult(delivery_id=item.delivery_id, error=lost) for item in items if item.delivery_id not in ids
        ]

    # --- the interface ------------------------------------------------------------------------------------
    def pull(self, *, domain: str, cursor: Cursor, overlap: dt.timedelta) -> Iterator[PullPage]:
        """Changes of `domain` with modification time ≥ cursor - overlap, oldest first, page by page."""
        raise NotImplementedError(f"{self.kind} does not pull {domain}")

    def push(self, items: list[PushItem]) -> list[PushResult]:
        """Upsert golden records by external id; one result per item (a batch may partly fail)."""
        raise NotImplementedError(f"{self.kind} does not take pushes")

    def snapshot(self, *, domain: str) -> Iterator[PullPage]:
        """Every live record of `domain` (for reconciliation): a pull from the beginning."""
        yield from self.pull(domain=domain, cursor=Cursor(), overlap=dt.timedelta(0))

    # --- helpers ------------------------------------------------------------------------------------------
    @classmethod
    def covers(cls, domain: str) -> set[str]:
        """Canonical fields of `domain` this system's mapping sends on push (empty: domain not pushed)."""
        return set()

    def close(self) -> None:
        pass


def envelopes_parse(domain: str, payloads: list[tuple[str, dict]]) -> tuple[list[Envelope], list[str]]:
    """Turn (label, ingest-shaped dict) pairs into envelopes; a row that is not a source record becomes an
    error naming its label, the others go on (bad *values* are the pipeline's data-quality exceptions)."""
    from canonical.domains import get_domain
    from canonical.services.ingest import EnvelopeError, envelope_parse

    spec = get_domain(domain)
    envelopes, errors = [], []
    for label, payload in payloads:
        try:
            envelopes.append(envelope_parse(payload, spec=spec))
        except EnvelopeError as exc:
            errors.append(f"{label}: {exc}")
    return envelopes, errors


def push_each(
    items: list[PushItem], push_one: Callable[[PushItem], str | None], connector: Connector | None = None
) -> list[PushResult]:
    """Push items one call each. After a 429 the rest are not tried (they get the same answer), so a
    rate-limited system is not hammered; `push_one` returns the remote id or raises TransportError. Each item is
    first held for its call (`connector.held`): one no longer ours is not sent."""
    results: list[PushResult] = []
    for n, item in enumerate(items):
        if connector is not None:
            _, lost = connector.held([item])
            if lost:
                results.extend(lost)
                continue
        try:
            remote_id = push_one(item)
        except TransportError as exc:
            results.append(PushResult(delivery_id=item.delivery_id, error=exc))
            if exc.status == 429:
                results.extend(PushResult(delivery_id=rest.delivery_id, error=exc) for rest in items[n + 1 :])
                break
            continue
        results.append(PushResult(delivery_id=item.delivery_id, remote_id=remote_id))
    return results
