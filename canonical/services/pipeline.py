"""The bulk ingest path on two cores: a matcher process beside the writer.

`source_records_ingest_bulk` (canonical/services/bulk.py) runs on one core: for each window of records it
matches (pass 1), then applies and writes (pass 2 and the flush), while PostgreSQL waits for it and it waits for
PostgreSQL. Here pass 1 runs in a second process (forked once per `PipelinedIngest`, with database connections
of its own: one, and one for a thread that reads the next window's blocking keys ahead, `_KeyReader`), a window
or more ahead of the calling process, which applies and writes what it is sent, in order, exactly as the bulk
path's pass 2 and flush do. The decisions are the bulk path's own (`bulk._plan`, the same BatchMatch over the same
database state and an overlay of everything sent but not yet committed), so the results and the end state are
the ones `source_records_ingest_bulk` — and record-by-record ingest — give (tests/canonical/test_ingest_pipeline.py
compares them).

How the two stay exact:

- **The matcher reads only while the writer holds the match locks.** A *segment* is one transaction of the
  writer: it takes the domain's match locks, then tells the matcher to start at a record; the matcher reads the
  committed database (which nothing else can change meanwhile: every writer of matching state takes those locks,
  README rule 8) plus its own overlay of the segment's earlier records, which the writer has not committed yet.
- **A record the bulk path would hand to record-by-record ingest ends the segment** unless it cannot change
  what later records match against: a new record with invalid values (kept as a data-quality exception, no golden
  record, no keys) is passed on and the matcher goes on; anything else (an update, a delete, a held or
  incomplete record, the same source id twice, a link the writer finds it cannot make in bulk) ends the segment
  there: the writer applies what came before, ingests that record record by record, commits, and the matcher
  starts again after it with fresh reads (and, for records that may remove rows, a fresh memo of common keys).
  A version of a record held already that changes nothing (older than the one held, or unchanged: `version_held`)
  is answered at once and the matcher goes on. Where segments keep ending after a few records (a file of
  updates), the next records go through the bulk path in the writer's process (`_SHORT_AFTER`).
- **The memos that follow the database are refreshed at every segment**: the population count is read again
  (the writer's commits moved the shared count), and the prepared features of the records the last segment sent
  are memoised under the text their stored values will be read back as (bulk's `prepared_written`, as the
  segment ends).

Unlike the bulk path, a call commits as it goes (one transaction per segment, segments end at the call's end or
earlier as above), so it is for callers outside a transaction: the CLI's `ingest --bulk` on PostgreSQL. Elsewhere
(SQLite, inside a transaction, another matcher, an evaluation's private population) `pipeline_usable()` says no and
the caller uses the bulk path.
"""

from __future__ import annotations

import copyreg
import gc
import io
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, connections, transaction

from canonical.domains import get_domain
from canonical.matching.base import Candidate, MatchOutcome, get_matcher, matcher_values
from canonical.matching.batch import BatchMatch, key_rows_bulk
from canonical.matching.fuzzy import FuzzyMatcher, _private_population, population_cache_key
from canonical.matching.fuzzy import _population as fuzzy_population
from canonical.models import SourceRecord, SourceStatus, System
from canonical.services import bulk
from canonical.services.golden import golden_compute
from canonical.services.ingest import Envelope, IngestResult, content_hash, match_lock, source_records_ingest
from canonical.services.instances import new_instance as _new
from canonical.services.ownership import rules_cached

_GONE = (
    "the matcher process ended unexpectedly; the records of the transaction in progress were not written. Run the "
    "command again: records already ingested come back unchanged (MDM_BULK_PIPELINE=false ingests in one process)."
)


class PipelineError(RuntimeError):
    """The matcher process failed or went away; the segment in progress was rolled back."""


def pipeline_usable() -> bool:
    """Whether `PipelinedIngest` can run here: PostgreSQL, the fuzzy matcher, outside any transaction, not inside
    an evaluation's private population, fork available, and not switched off (MDM_BULK_PIPELINE)."""
    return (
        getattr(settings, "MDM_BULK_PIPELINE", True)
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and isinstance(get_matcher(), FuzzyMatcher)
        and not _private_population.get()
        and "fork" in multiprocessing.get_all_start_methods()
    )


@dataclass
class _Sent:
    """A plan as it travels from the matcher to the writer (the writer has the envelope itself)."""

    index: int
    temp_id: int
    values: dict
    keys: set
    golden_id: uuid.UUID
    new: bool
    review: bool
    # a review's whole; otherwise (decision, golden id, ((golden id, score), ...), reason)
    outcome: MatchOutcome | tuple


class _NoMatch:
    """What the writer's chunks hold in place of a BatchMatch: the writer does not match, so there is nothing for
    the flush to bring up to date (`match_decided` is sent with `matcher`'s type as its sender, as in bulk)."""

    def __init__(self, matcher: FuzzyMatcher):
        self.matcher = matcher

    def prepared_written(self, written) -> None:
        pass

    def overlay_written(self, real_ids) -> None:
        pass

    def refresh(self, **kwargs) -> None:
        pass


# --- the matcher process ---------------------------------------------------------------------------------------


def _uuid_of(value: int) -> uuid.UUID:
    """The UUID of this 128-bit int, made as unpickling makes one (UUID.__setstate__), without its __init__'s
    checks: the int came from a UUID."""
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made


def _uuid_reduce(value: uuid.UUID) -> tuple:
    return _uuid_of, (value.int,)


class _Pickler(pickle.Pickler):
    """The matcher's messages pickled with UUIDs as their ints (a plan names up to 16 candidates' golden ids): the
    default pickling of a UUID builds and reads a state dict, 1.2 us each way (timeit: 16 -> 6 us to pickle a plan's
    outcome, 12 -> 10 us to unpickle it). What comes out is equal, with the same is_safe as a uuid4's."""

    dispatch_table = {**copyreg.dispatch_table, uuid.UUID: _uuid_reduce}


def _dumps(message) -> memoryview:
    buffer = io.BytesIO()
    _Pickler(buffer, pickle.HIGHEST_PROTOCOL).dump(message)
    return buffer.getbuffer()


class _Sender:
    """The matcher's messages, pickled in order and written to the pipe by a thread: a write blocks while the
    writer is busy with earlier ones, and meanwhile the matcher goes on with the next window (the GIL is released
    while the thread waits). At most _AHEAD messages wait to be written."""

    def __init__(self, pipe):
        self._pipe = pipe
        self._queue: queue.Queue = queue.Queue(maxsize=_AHEAD)
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mdm-matcher-send", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            data = self._queue.get()
            if data is None:
                return
            try:
                self._pipe.send_bytes(data)
            except BaseException as exc:  # the writer went away: the matcher stops at its next send
                self._failed = exc
                # and what is queued is dropped, so that a send() waiting for room (the queue full) gets it and
                # sees the failure, instead of waiting forever; close() ends this
                while self._queue.get() is not None:
                    pass
                return

    def send(self, message) -> None:
        if self._failed is not None:
            raise BrokenPipeError(str(self._failed))
        self._queue.put(_dumps(message))
        if self._failed is not None:
            raise BrokenPipeError(str(self._failed))

    def poll(self) -> bool:
        return self._pipe.poll()

    def recv(self):
        return self._pipe.recv()

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout=30)


_AHEAD = 16  # messages (windows of plans) the matcher may have waiting to be written
# After this many segments of a call, if they took fewer than _SHORT_BELOW records each on average, the next
# _SHORT_TAKE records go through the bulk path in one process (then the matcher is tried again): each segment's end
# costs a commit and a fresh start of the matcher. 12,000 CRM customers sent again, 10 % of them updated (1,219
# segments), one run each before this: 71.4 s pipelined, 48.1 s in one process; with it, 45.3 s, as record by record
# (docs/benchmarks.md, "A file sent again").
_SHORT_AFTER, _SHORT_BELOW, _SHORT_TAKE = 16, 64, 10_000


def _matcher_main(raw_pipe, domain: str, writers_end, first: list[list[Envelope]]) -> None:
    """The forked matcher: waits for ("go", start, envelopes or None, forget_common, system, population) and matches
    a segment (None: of the envelopes it has, sent before or taken over from the writer in the fork: `first`, a
    list it is popped from, so that nothing else holds it once the next are sent); ("stop",) while idle or matching
    is answered ("stopped",); ("quit",) ends it."""
    from canonical.matching import fuzzy

    # What the fork inherited is long-lived (this process's caches grow beside it): out of the collector's sight,
    # and collections less often while matching, as the bulk path does (bulk._collections_less_often: at Python's
    # default the cyclic collector walked the matcher's caches every few hundred records)
    writers_end.close()  # the fork's copy of the writer's end: without it, a writer that dies never ends this one
    gc.freeze()
    pipe = _Sender(raw_pipe)
    reader = _KeyReader()
    try:
        spec = get_domain(domain)
        matcher = get_matcher()
        envelopes: list[Envelope] = first.pop() if first else []
        systems: dict[str, System] = {}
        system: System | None = None
        while True:
            message = pipe.recv()
            if message[0] == "quit":
                return
            if message[0] == "stop":
                pipe.send(("stopped",))
                continue
            _, start, given, forget, code, population = message
            if given is not None:
                envelopes = given
            # the population the bulk path would read now (the writer's): for the common-keys memo's condition here,
            # and for the segment's BatchMatch (_match_segment)
            cache_key = population_cache_key(domain)
            if population >= fuzzy._POPULATION_CACHE_FROM:
                fuzzy._population_memo[cache_key] = (time.monotonic(), population)
            else:
                fuzzy._population_memo.pop(cache_key, None)
            if forget:  # records were updated or removed: a key found common may not be any more
                fuzzy._common_key_memo.pop(domain, None)
            if code not in systems:
                systems[code] = System.objects.get(code=code)
            system = systems[code]
            with rules_cached(), bulk._collections_less_often():
                _match_segment(pipe, reader, system, spec, matcher, envelopes, start, population)
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        return
    except BaseException:
        try:
            pipe.send(("error", traceback.format_exc()))
        except (OSError, ValueError):
            pass
    finally:
        reader.close()
        pipe.close()


class _KeyReader:
    """Reads blocking keys' rows (key_rows_bulk) on a connection of its own, in a thread: the matcher asks for the
    next window's while it matches this one, so PostgreSQL's work on them is not time the matcher waits (psycopg
    lets go of the GIL while it waits). It reads committed rows as the matcher's own connection does, and within a
    segment nothing commits. A read still pending when a segment ends is dropped unused (`_match_segment` keeps it
    for its own segment only): it may finish after the writer commits."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mdm-matcher-read")

    def read(self, domain: str, keys: list) -> Future | tuple[dict, dict]:
        if not keys:
            return {}, {}
        return self._pool.submit(key_rows_bulk, domain, keys)

    def close(self) -> None:
        self._pool.submit(connections.close_all)
        self._pool.shutdown(wait=True, cancel_futures=False)


_LOOK_FIRST, _LOOK_MOST = 512, 16_384  # source ids a segment looks up at first, and at most at a time


class _Lookups:
    """What a segment needs to know of its records' source ids, looked up as the matcher comes to them: which are
    held already (and their held version), which a push gave a cross-reference, which pending references wait for.
    Asked in growing steps rather than for the whole rest of the batch at the segment's start: a batch whose
    records end segments often (updates) would otherwise ask for the rest of the batch at every one of them."""

    def __init__(self, chunk, envelopes: list[Envelope], start: int):
        self._chunk, self._envelopes = chunk, envelopes
        self._to, self._step = start, _LOOK_FIRST

    def cover(self, end: int) -> None:
        """Make sure the records before `end` are looked up (bulk's `_look_up`)."""
        end = min(end, len(self._envelopes))
        while self._to < end:
            stop = min(len(self._envelopes), max(end, self._to + self._step))
            bulk._look_up(self._chunk, list(dict.fromkeys(env.source_id for env in self._envelopes[self._to : stop])))
            self._to, self._step = stop, min(self._step * 2, _LOOK_MOST)


def _match_segment(
    pipe, reader: _KeyReader, system: System, spec, matcher, envelopes: list[Envelope], start: int, population: int
) -> None:
    """Pass 1 of bulk's `_chunk_ingest` from `start`, sending each window's plans as it is matched, until a record
    ends the segment or the envelopes end. Then the features of the records sent are memoised for the segments
    after (`_segment_ended`).

    A version of a held record that changes nothing (stale, or unchanged: `version_held`) does not end it: its
    result is sent as it is ("noop"), with nothing to write."""
    chunk = bulk._Chunk(
        system=system,
        spec=spec,
        batch=BatchMatch(domain=spec.name, matcher=matcher),
        existing={},
        pushed=set(),
        waiting=set(),
    )
    lookups = _Lookups(chunk, envelopes, start)
    chunk.batch._db_population = population  # what the writer read under the locks (nothing written since)
    sent: list[tuple[int, dict]] = []  # (temporary id, values) of each record sent
    n = len(envelopes)
    i, prefetched_to = start, start
    forget_every = settings.MDM_PIPELINE_FORGET_EVERY
    forget_at = start + forget_every
    ahead: tuple[tuple[int, int], tuple] | None = None  # the window begun ahead: (its bounds, _prefetch_ahead's)
    while i < n:
        if i >= forget_at:
            # What was read from the database (every key's rows, candidates' sources, by id), kept for a whole
            # segment, grows with the segment and with the hub (more rows a key, up to its cap): read it again from
            # here, as the bulk path's next chunk would. The overlay (what is not committed) stays, and the database
            # has not changed since the segment started (the writer's rows are not committed). Re-reading every
            # 2,000 records, a 100,000-record load's matcher peaked at 497 MiB instead of 588 (batches of 25,000),
            # and took ~12 % longer (one run each); with small memos (MDM_MATCH_FEATURE_CACHE_HOT=10000,
            # MDM_MATCH_FEATURE_CACHE=20000) and 500 here its RSS levelled off at ~220 MiB, where without it it grew
            # to 330 (docs/benchmarks.md).
            population = chunk.batch._db_population
            chunk.batch.invalidate()
            chunk.batch._db_population = population
            prefetched_to = i
            forget_at = i + forget_every
        if pipe.poll():  # the writer found a link it cannot make in bulk: it wants the matcher to stop
            message = pipe.recv()
            if message[0] != "stop":
                raise PipelineError(f"unexpected message while matching: {message[0]!r}")
            pipe.send(("stopped",))
            return
        plans: list[bulk._Plan] = []
        j = i
        lookups.cover(i + 3 * bulk._WINDOW)  # this window, the next one read ahead, and the record after them
        while j < n and len(plans) < bulk._WINDOW and bulk._maybe_simple(chunk, envelopes[j]):
            if j >= prefetched_to:
                end = min(n, j + bulk._WINDOW)
                if ahead is not None and ahead[0] == (j, end):
                    bulk._prefetch_resume(chunk, ahead[1])
                else:
                    bulk._prefetch(chunk, envelopes[j:end])
                prefetched_to = end
                # the next window's key rows read by the reader while this one is matched (the database does not
                # change within a segment)
                ahead = None
                if end < n:
                    following = (end, min(n, end + bulk._WINDOW))
                    ahead = (following, bulk._prefetch_ahead(chunk, envelopes[slice(*following)], reader.read))
            plan = bulk._plan(chunk, envelopes[j], survival=False)
            if plan is None:
                break
            plans.append(plan)
            chunk.seen.add(plan.env.source_id)
            j += 1
        if plans:
            pipe.send(("plans", [_sent(i + k, plan) for k, plan in enumerate(plans)]))
            sent += [(plan.sr.pk, plan.sr.values) for plan in plans]
        if j >= n:
            break
        if len(plans) == bulk._WINDOW:
            i = j
            continue
        env = envelopes[j]
        unchanging = bulk._unchanging(chunk, env)
        if unchanging is not None:  # stale or unchanged: nothing to write, nothing changes for later records
            pipe.send(("noop", j, unchanging))
            i = j + 1
            continue
        # not simple: record by record. A new record with invalid values changes nothing later records match
        # against (no golden record, no keys, no pending reference); anything else ends the segment.
        inert = bulk._maybe_simple(chunk, env) and bulk._valid_values(chunk, env) is None
        chunk.seen.add(env.source_id)
        pipe.send(("rbr", j, inert))
        if not inert:
            _segment_ended(pipe, chunk, j + 1, sent)
            return
        i = j + 1
    _segment_ended(pipe, chunk, n, sent)


def _segment_ended(pipe, chunk, end: int, sent: list[tuple[int, dict]]) -> None:
    """Tell the writer the segment ends before `end`, then memoise the features of the records it was sent under
    the text their stored values will be read back as (bulk's `prepared_written`, no query): while the writer
    finishes writing them, not after its commit with the writer waiting (0.9 s at a 50,000-record segment's end)."""
    pipe.send(("end", end))
    chunk.batch.prepared_written(sent)


def _outcome(outcome: MatchOutcome) -> MatchOutcome | tuple:
    """The outcome as the writer needs it (`_outcome_back` makes it a MatchOutcome again). A review keeps its
    candidates whole (the review task stores their reasons and field comparisons). Otherwise the candidates go with
    their golden ids and scores only, as plain tuples: their explanations are built on first read
    (ScoredCandidate), which pickling would force for every candidate of every record (22 % of the matcher's time in
    a first trial), and nothing the writer does reads them."""
    if outcome.decision == "review":
        return outcome
    return (
        outcome.decision,
        outcome.golden_id,
        tuple((c.golden_id, c.score) for c in outcome.candidates),
        outcome.reason,
    )


def _outcome_back(sent: MatchOutcome | tuple) -> MatchOutcome:
    if isinstance(sent, MatchOutcome):
        return sent
    decision, golden_id, candidates, reason = sent
    return MatchOutcome(
        decision=decision,
        golden_id=golden_id,
        candidates=[Candidate(g, score, "", []) for g, score in candidates],
        reason=reason,
    )


def _sent(index: int, plan) -> _Sent:
    return _Sent(
        index=index,
        temp_id=plan.sr.pk,
        values=plan.sr.values,
        keys=plan.keys,
        golden_id=plan.golden_id,
        new=plan.new,
        review=plan.review,
        outcome=_outcome(plan.outcome),
    )


# --- the writer (the calling process) ---------------------------------------------------------------------------


class _Forked:
    """The matcher's process: a plain fork running `target(*args)`, then `os._exit`. Not multiprocessing.Process:
    its child runs the after-fork hooks libraries registered, and kombu's closes the parent's broker connections
    from the child, reading a socket the parent still owns: in the test suite (Celery had published to Redis
    before) the matcher hung there forever, and the writer with it."""

    def __init__(self, target, args: tuple):
        self._target, self._args = target, args
        self.pid: int | None = None
        self._status: int | None = None

    def start(self) -> None:
        pid = os.fork()
        if pid == 0:  # the child
            code = 0
            try:
                self._target(*self._args)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        self.pid = pid

    def _reap(self, block: bool) -> None:
        if self._status is not None or self.pid is None:
            return
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere
            self._status = -1
            return
        if pid:
            self._status = status

    def is_alive(self) -> bool:
        self._reap(block=False)
        return self.pid is not None and self._status is None

    def join(self, timeout: float | None = None) -> None:
        if timeout is None:
            self._reap(block=True)
            return
        deadline = time.monotonic() + timeout
        while self.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)

    def kill(self) -> None:
        if self.is_alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class PipelinedIngest:
    """Ingest batches of one domain's records with a matcher process beside this one (see the module docstring).
    Use as a context manager; `ingest(envelopes)` gives what `source_records_ingest_bulk` gives, and commits as it
    goes. One instance may take several systems' batches in turn (`ingest(..., system=)`): its matcher keeps its
    memo of prepared features from one to the next."""

    def __init__(self, *, system: System | str | None = None, domain: str, first: list[Envelope] | None = None) -> None:
        """`first`: the list the first ingest() call will be given, filled already: the matcher, forked when this
        is entered, has it from the fork instead of through the pipe (50,000 envelopes: 0.3 s to pickle here and
        0.15 s to unpickle there, with the matcher waiting). It must not change until that call."""
        if not pipeline_usable():
            raise PipelineError("the pipelined ingest needs PostgreSQL, the fuzzy matcher and no open transaction")
        self.spec = get_domain(domain)
        self.system = System.objects.get(code=system) if isinstance(system, str) else system
        self._systems: dict[str, System] = {self.system.code: self.system} if self.system is not None else {}
        self.matcher = get_matcher()
        self._forget = False
        self._pipe = None
        self._process = None
        self._progress: Callable[[int], None] | None = None
        self._reported = 0
        self._closed = False
        self._first = first
        self._first_len = 0  # how much of it the matcher has: its length when the matcher was forked

    def __enter__(self) -> PipelinedIngest:
        self._start()
        return self

    def _start(self) -> None:
        connections.close_all()  # the child must not share this process's connection (it opens its own)
        self._pipe, theirs = multiprocessing.Pipe()
        # The child closes its copy of this end at once: if this process dies, the child's reads then end.
        first = [self._first] if self._first is not None else []
        self._first_len = len(self._first) if self._first is not None else 0
        self._process = _Forked(_matcher_main, (theirs, self.spec.name, self._pipe, first))
        self._process.start()
        theirs.close()
        self._inbox = queue.Queue(maxsize=4 * _AHEAD)
        self._receiver = threading.Thread(target=self._receive, name="mdm-pipeline-recv", daemon=True)
        self._receiver.start()

    def _receive(self) -> None:
        """Read the matcher's messages as they come (unpickled by `_recv`), so its writes do not wait for this
        process to finish applying a window."""
        while True:
            try:
                data = self._pipe.recv_bytes()
            except (EOFError, OSError):
                self._inbox.put(None)
                return
            self._inbox.put(data)

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        if self._process is None:
            return
        try:
            self._pipe.send(("quit",))
        except (OSError, ValueError):
            pass
        self._process.join(timeout=10)
        self._abandon()

    def _abandon(self) -> None:
        """End the matcher process now, whatever it is doing, and the thread reading it (which may be waiting to
        put into a full inbox)."""
        if self._process is None:
            return
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        while self._receiver.is_alive():  # the process's end closed: the thread reads end-of-file and leaves
            try:
                self._inbox.get(timeout=0.1)
            except queue.Empty:
                pass
        self._pipe.close()
        self._process = None

    def _recv(self):
        data = self._inbox.get()
        if data is None:
            raise PipelineError(_GONE)
        message = pickle.loads(data)
        if message[0] == "error":
            raise PipelineError(f"the matcher process failed:\n{message[1]}")
        return message

    def _send(self, message) -> None:
        try:
            self._pipe.send(message)
        except OSError:
            raise PipelineError(_GONE) from None

    def _stop(self) -> None:
        """Make the matcher stop and drop what it sent since (it is waiting for the next segment after this)."""
        self._send(("stop",))
        while self._recv()[0] != "stopped":
            pass

    def ingest(
        self,
        envelopes: list[Envelope],
        progress: Callable[[int], None] | None = None,
        *,
        system: System | str | None = None,
        committed: Callable[[int], None] | None = None,
    ) -> list[IngestResult]:
        """`source_records_ingest_bulk(envelopes)`'s results, committed as it goes; `progress(n)` is told of every
        n records done (in the transaction in progress), `committed(n)` of every n records committed. `system`:
        whose records these are (by default the one the instance was made for)."""
        if self._closed:
            raise PipelineError("this PipelinedIngest was closed: make another")
        if system is None:
            system = self.system
        if system is None:
            raise PipelineError("ingest(): no system given, and none when the PipelinedIngest was made")
        code = system if isinstance(system, str) else system.code
        if code not in self._systems:
            self._systems[code] = system if isinstance(system, System) else System.objects.get(code=code)
        system = self._systems[code]
        if connection.in_atomic_block:
            raise PipelineError("the pipelined ingest commits as it goes: call it outside any transaction")
        if self._process is None:  # a call before failed (its matcher was ended) or the instance was closed
            self._start()
        results: list[IngestResult] = []
        self._progress, self._reported = progress, 0
        # the matcher has these envelopes already when they are the `first` it was forked with (the first call),
        # unchanged (it must not change: had records been added since, the matcher would not have them)
        given = self._first is not None and envelopes is self._first and len(envelopes) == self._first_len
        start, done = 0, 0
        since, segments = 0, 0  # segments since `since`
        self._first = None
        try:
            with bulk._collections_less_often(), rules_cached():
                while start < len(envelopes):
                    if segments >= _SHORT_AFTER and start - since < segments * _SHORT_BELOW:
                        # Segments this short (updates end them) cost more than the second core gains: the next
                        # records go through the bulk path in this process, which takes updates in its stride;
                        # then the matcher is tried again
                        part = envelopes[start : start + _SHORT_TAKE]
                        self._in_one_process(system, part, results, committed)
                        start += len(part)
                        done = len(results)
                        since, segments = start, 0
                        self._forget = True  # the records changed since the matcher's memo of common keys
                        continue
                    segments += 1
                    with transaction.atomic():
                        match_lock(self.spec.name)  # before the matcher reads anything (README rule 8)
                        # The population as the bulk path would read it here. The matcher takes it from this
                        # message rather than from the cache, which without Redis is each process's own; and once
                        # this process has read it, its commits move the shared count (fuzzy.population_add).
                        population = fuzzy_population(self.spec.name)
                        self._send(("go", start, None if given else envelopes, self._forget, system.code, population))
                        given, self._forget = True, False
                        before, start = start, self._segment(system, envelopes, start, results)
                        if start <= before:  # each segment takes a record at least: the two disagree on the batch
                            raise PipelineError("the matcher ended a segment without taking a record of it")
                    if committed is not None and len(results) > done:
                        committed(len(results) - done)
                    done = len(results)
        except BaseException:
            # The segment in progress was rolled back, and the matcher may still be sending its plans: they must
            # never be taken for the next call's. End it; the next call starts another (with a fresh memo).
            self._abandon()
            self._forget = False
            raise
        return results

    def _in_one_process(
        self,
        system: System,
        envelopes: list[Envelope],
        results: list[IngestResult],
        committed: Callable[[int], None] | None,
    ) -> None:
        """The bulk path's ingest of these envelopes here, in transactions of MDM_BULK_BATCH_SIZE records."""
        size = settings.MDM_BULK_BATCH_SIZE
        for begin in range(0, len(envelopes), size):
            part = bulk.source_records_ingest_bulk(
                system=system, domain=self.spec.name, envelopes=envelopes[begin : begin + size]
            )
            results.extend(part)
            if self._progress is not None:
                self._progress(len(part))
            self._reported = len(results)
            if committed is not None:
                committed(len(part))

    def _segment(self, system: System, envelopes: list[Envelope], start: int, results: list[IngestResult]) -> int:
        """Apply and write what the matcher sends for one segment, as bulk's `_chunk_ingest` does after its pass 1,
        in chunks with bulk's boundaries. Returns where the next segment starts."""
        spec = self.spec
        chunk, chunk_end = None, -1

        def chunk_for(index: int):
            nonlocal chunk, chunk_end
            if index >= chunk_end:
                if chunk is not None:
                    bulk._flush(chunk, last=True)
                chunk = bulk._Chunk(
                    system=system, spec=spec, batch=_NoMatch(self.matcher), existing={}, pushed=set(), waiting=set()
                )
                chunk_end = (index // bulk._CHUNK + 1) * bulk._CHUNK
            return chunk

        def by_record(index: int) -> None:
            bulk._flush(chunk_for(index))
            results.extend(source_records_ingest(system=system, domain=spec.name, envelopes=[envelopes[index]]))

        while True:
            if self._progress is not None and len(results) > self._reported:
                self._progress(len(results) - self._reported)
                self._reported = len(results)
            message = self._recv()
            kind = message[0]
            if kind == "plans":
                plans = [self._plan(system, envelopes[s.index], s) for s in message[1]]
                indexes = [s.index for s in message[1]]
                k = 0
                while k < len(plans):  # a window may straddle a chunk boundary of bulk's: apply it in parts
                    current = chunk_for(indexes[k])
                    end = k
                    while end < len(plans) and indexes[end] < chunk_end:
                        end += 1
                    part = plans[k:end]
                    made = {p.golden_id for p in part if p.new}
                    bulk._load_goldens(
                        current,
                        {p.golden_id for p in part if p.golden_id not in current.goldens and p.golden_id not in made},
                    )
                    current.review_known = bulk._review_known(current, part)
                    for offset, plan in enumerate(part):
                        result = bulk._apply(current, plan)
                        if result is None:  # not linkable in bulk: record by record, then a new segment after it
                            self._stop()
                            by_record(indexes[k + offset])
                            self._forget = True
                            return indexes[k + offset] + 1
                        results.append(result)
                    k = end
            elif kind == "noop":  # a version that changes nothing (version_held): its result, nothing to write
                results.append(message[2])
            elif kind == "rbr":
                _, index, inert = message
                by_record(index)
                if not inert:
                    self._forget = True
            elif kind == "end":
                if chunk is not None:
                    bulk._flush(chunk, last=True)
                if self._progress is not None and len(results) > self._reported:
                    self._progress(len(results) - self._reported)
                    self._reported = len(results)
                return message[1]
            else:
                raise PipelineError(f"unexpected message from the matcher: {kind!r}")

    def _plan(self, system: System, env: Envelope, sent: _Sent) -> bulk._Plan:
        sr = _new(
            SourceRecord,
            pk=sent.temp_id,
            system_id=system.code,
            domain=self.spec.name,
            source_id=env.source_id,
            attributes=env.attributes,
            values=sent.values,
            updated_at=env.updated_at,
            deleted=False,
            content_hash=content_hash(env.attributes, False),  # here: the matcher leaves it out (bulk._plan)
            status=SourceStatus.APPLIED,
            errors={},
            conflicts={},
        )
        sr.golden_id = sent.golden_id
        # a new golden record's survivorship here: the matcher leaves it out (bulk._plan, survival=False)
        survival = golden_compute(self.spec.name, None, [sr]) if sent.new else None
        return bulk._Plan(
            env=env,
            sr=sr,
            match_values=matcher_values(self.spec, sent.values),  # as the matcher made them: cheaper than sending
            outcome=_outcome_back(sent.outcome),
            keys=sent.keys,
            golden_id=sent.golden_id,
            new=sent.new,
            survival=survival,
            review=sent.review,
        )
