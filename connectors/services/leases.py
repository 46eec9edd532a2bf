"""Keeping a lease while the work it covers runs, from a thread of its own.

A lease (a delivery's, a pull cursor's) says which worker may do a piece of work until when; a worker that dies
loses it when it runs out. Work that can take longer than the lease (a page of 2,000 records ingested record by
record, a push whose settling waits for a pull's match lock) keeps it with a `LeaseKeeper`: `renew` runs every
`every()` seconds on the keeper's thread, with its own database connection, so on PostgreSQL each renewal commits
at once while the work's own transaction is still open (on SQLite it waits for that transaction's commit). A killed
worker's keeper dies with it, so its lease runs out as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.db import connection as db_connection

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """`with LeaseKeeper(renew, every=..., what=...):` runs `renew()` every `every()` seconds while the block runs.

    Not started inside a caller's transaction: the lease is not seen by others before that commits, and a renewal
    would wait for the commit. A renewal that fails (the database restarting; SQLite locked by the work's own
    transaction) is tried again at the next beat, with one warning a keeper."""

    MIN_PERIOD = 0.2  # seconds: a lease of a fraction of a second (tests) is not renewed in a busy loop

    def __init__(
        self, renew: Callable[[], None], *, every: Callable[[], float], what: str, max_seconds: float | None = None
    ) -> None:
        """`max_seconds`: stop renewing after that long (logged), so a worker stuck in its work while alive (a
        response that trickles in past the HTTP timeout) loses the lease as a dead one would."""
        self.renew, self.every, self.what, self.max_seconds = renew, every, what, max_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{what}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        if not db_connection.in_atomic_block:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(max(1.0, self.every() * 3))

    def _run(self) -> None:
        failed = 0
        deadline = None if self.max_seconds is None else time.monotonic() + self.max_seconds
        try:
            while not self._stop.wait(max(self.every(), self.MIN_PERIOD)):
                if deadline is not None and time.monotonic() > deadline:
                    logger.warning("stopped renewing the lease of %s after %.0f s: the work is taking longer than it "
                                   "can; the lease now runs out as a dead worker's would", self.what, self.max_seconds,
                                   extra={"event": "lease.renewal_stopped", "lease": self.what})  # fmt: skip
                    return
                try:
                    self.renew()
                except Exception:  # noqa: BLE001 - tried again at the next beat
                    failed += 1
                    logger.log(logging.WARNING if failed == 1 else logging.DEBUG,
                               "could not renew the lease of %s; trying again", self.what, exc_info=failed == 1,
                               extra={"event": "lease.renewal_failed", "lease": self.what})  # fmt: skip
                    db_connection.close()
        finally:
            db_connection.close()
