"""The pipelined bulk ingest (a matcher process beside the writer) leaves exactly the state the bulk path leaves.

The bulk path's own scenario (tests/canonical/test_ingest_bulk.py: duplicates within and across systems, invalid
and incomplete rows, held and late references, re-sends, stale versions, deletes, steward overrides between
batches, a link the writer cannot make in bulk) is ingested once through `source_records_ingest_bulk` in a
transaction that is rolled back, and once through `PipelinedIngest`, which commits: the matcher process reads
only committed rows, so these tests run on committed data (transactional_db) and on PostgreSQL.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections, transaction

from canonical.audit import Channel, audit_context
from canonical.domains import get_domain
from canonical.models import Customer, SourceRecord
from canonical.services import bulk as bulk_module
from canonical.services import pipeline as pipeline_module
from canonical.services.bulk import source_records_ingest_bulk
from canonical.services.ingest import envelope_parse
from canonical.services.pipeline import PipelinedIngest, PipelineError, pipeline_usable

from .test_ingest_bulk import _company, _reset_caches, _row, assert_same_state, capture, run, scenario

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_pipelined(batches, *, batch_size: int = 500) -> list:
    """`run` through PipelinedIngest, committed: one matcher process per domain, taking every system's batches in
    turn (with steward overrides made in between)."""
    _reset_caches()
    results = []
    pipelines: dict[str, PipelinedIngest] = {}
    try:
        for step, batch in enumerate(batches):
            if callable(batch):
                with audit_context(actor="steward", channel=Channel.STEWARD, request_id=f"step-{step}"):
                    batch()
                continue
            system, domain, rows = batch
            spec = get_domain(domain)
            envelopes = [envelope_parse(r, spec=spec) for r in rows]
            if domain not in pipelines:
                pipelines[domain] = PipelinedIngest(domain=domain).__enter__()
            with audit_context(actor="pytest", channel=Channel.JOB, request_id=f"step-{step}", reason=""):
                for start in range(0, len(envelopes), batch_size):
                    chunk = envelopes[start : start + batch_size]
                    results += [(system, domain, r.as_dict()) for r in pipelines[domain].ingest(chunk, system=system)]
    finally:
        for pipelined in pipelines.values():
            pipelined.close()
    return results


def test_pipelined_ingest_leaves_the_state_the_bulk_path_leaves(monkeypatch):
    batches = scenario()
    in_bulk, state_a = run(batches, source_records_ingest_bulk)  # rolled back: the database is empty again
    assert not SourceRecord.objects.exists()

    applied, by_record = [], []  # what the writer applied from the matcher's plans, and what went record by record
    real_apply, real_by_record = bulk_module._apply, pipeline_module.source_records_ingest

    def counted_apply(chunk, plan):
        result = real_apply(chunk, plan)
        applied.append((chunk.system.code, plan.env.source_id, result is not None))
        return result

    def counted_by_record(**kwargs):
        by_record.extend((kwargs["system"].code, env.source_id) for env in kwargs["envelopes"])
        return real_by_record(**kwargs)

    monkeypatch.setattr(bulk_module, "_apply", counted_apply)
    monkeypatch.setattr(pipeline_module, "source_records_ingest", counted_by_record)
    pipelined = run_pipelined(batches)
    state_b = capture()

    # the matcher's plans were applied by the writer: links within and across systems among them
    linked = {(s, r["source_id"]) for s, d, r in pipelined if r["outcome"] == "linked"} - set(by_record)
    assert {("erp", "E60"), ("crm", "C9d"), ("crm", "CL0")} <= linked and len(linked) > 60
    # the link the writer cannot make in bulk (it would leave the name empty) went record by record, and the
    # records after it were matched again in a new segment
    assert ("crm", "CL2n", False) in applied and ("crm", "CL2n") in by_record
    assert ("crm", "CL3") in linked
    # invalid rows, updates and deletes went record by record
    assert {("crm", "BAD1"), ("erp", "EBAD")} <= set(by_record)
    assert [(s, d, r["source_id"], r["outcome"], r.get("golden_id") is None) for s, d, r in pipelined] == [
        (s, d, r["source_id"], r["outcome"], r.get("golden_id") is None) for s, d, r in in_bulk
    ]
    assert_same_state(state_a, state_b)


def test_pipelined_ingest_in_small_batches_leaves_the_same_state(settings):
    batches = scenario(seed=11, companies=60)
    _, state_a = run(batches, source_records_ingest_bulk, batch_size=7)
    settings.MDM_PIPELINE_FORGET_EVERY = 3  # the matcher reads the database again within its batches too
    run_pipelined(batches, batch_size=7)
    assert_same_state(state_a, capture())


def test_a_matcher_that_reads_again_within_its_batch_decides_the_same(settings):
    batches = scenario(seed=5, companies=150)
    _, state_a = run(batches, source_records_ingest_bulk, batch_size=400)
    settings.MDM_PIPELINE_FORGET_EVERY = 40
    run_pipelined(batches, batch_size=400)
    assert_same_state(state_a, capture())


def _envelopes(n: int, seed: int = 3) -> list:
    rng = random.Random(seed)
    spec = get_domain("customer")
    firms = [_company(rng, k) for k in range((n + 1) // 2)]
    rows = []
    for i in range(n):
        firm = firms[i // 2]  # every company twice, the second spelled differently
        if i % 2:
            firm = {**firm, "name": firm["name"].upper()}
        rows.append({"source_id": f"R{i}", "updated_at": "2026-01-01T00:00:00Z", "attributes": firm})
    return [envelope_parse(r, spec=spec) for r in rows]


def test_a_matcher_that_fails_rolls_back_the_segment_and_says_why(monkeypatch):
    envelopes = _envelopes(300)
    real_plan = bulk_module._plan

    def failing(chunk, env, **kwargs):
        if env.source_id == "R250":
            raise RuntimeError("the matcher broke on R250")
        return real_plan(chunk, env, **kwargs)

    monkeypatch.setattr(bulk_module, "_plan", failing)  # before the fork: the matcher process has it too
    with PipelinedIngest(system="crm", domain="customer") as pipelined:
        committed = pipelined.ingest(envelopes[:100])
        with pytest.raises(PipelineError, match="the matcher broke on R250"):
            pipelined.ingest(envelopes[100:])
    # the first call was committed; of the second (one transaction) nothing was written
    assert len(committed) == 100
    assert set(SourceRecord.objects.values_list("source_id", flat=True)) == {f"R{i}" for i in range(100)}


def test_a_matcher_process_that_dies_is_an_error_not_a_hang():
    envelopes = _envelopes(50)
    with PipelinedIngest(system="crm", domain="customer") as pipelined:
        pipelined._process.kill()
        with pytest.raises(PipelineError, match="matcher process ended unexpectedly"):
            pipelined.ingest(envelopes)
    assert not SourceRecord.objects.exists()


def test_not_usable_inside_a_transaction_where_the_bulk_path_runs_instead():
    assert pipeline_usable()
    with transaction.atomic():
        assert not pipeline_usable()
        with pytest.raises(PipelineError, match="no open transaction"):
            PipelinedIngest(system="crm", domain="customer")


def test_cli_bulk_ingest_of_a_large_file_goes_through_the_pipeline_with_the_same_outcome(tmp_path, monkeypatch):
    path = tmp_path / "crm.csv"
    envelopes = _envelopes(1200)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        fields = ["name", "website", "phone", "city", "country"]
        writer.writerow(["source_id", "updated_at", *fields])
        for env in envelopes:
            writer.writerow([env.source_id, "2026-01-01T00:00:00Z", *(env.attributes.get(f) or "" for f in fields)])
    calls = []
    real = PipelinedIngest.ingest

    def counted(self, envelopes, progress=None, **kwargs):
        calls.append(len(envelopes))
        return real(self, envelopes, progress=progress, **kwargs)

    monkeypatch.setattr(PipelinedIngest, "ingest", counted)
    argv = [str(path), "--system", "crm", "--domain", "customer", "--no-progress", "--bulk"]
    one_process, pipelined = _one_process_then_pipelined(argv, between=lambda: calls == [])
    assert calls == [1200]
    assert pipelined == one_process
    assert "created 600" in one_process and "linked 600" in one_process
    assert Customer.objects.count() == 600


def _one_process_then_pipelined(argv: list[str], between) -> tuple[str, str]:
    """`ingest` inside a transaction (the one-process bulk path, rolled back), then outside one (pipelined): each
    summary's counts line. The pipelined run leaves the same partition of source records into golden records;
    `between()` must hold after the first run."""
    out = StringIO()
    with transaction.atomic():  # inside a transaction: the one-process bulk path
        call_command("ingest", *argv, stdout=out)
        one_process = out.getvalue().splitlines()[1]
        partition = _partition()
        transaction.set_rollback(True)
    assert between()
    out = StringIO()
    call_command("ingest", *argv, stdout=out)
    assert _partition() == partition
    return one_process, out.getvalue().splitlines()[1]


def test_the_matcher_takes_the_cli_s_first_batch_from_the_fork(tmp_path, monkeypatch):
    """The CLI's first batch (kept by the check pass) reaches the matcher through the fork, not the pipe: its "go"
    carries no envelopes; the next batches' do. The outcome is the one-process path's, batch for batch."""
    path = tmp_path / "crm.csv"
    _csv(path, 1300)
    sent = []
    real_send = PipelinedIngest._send

    def recorded(self, message):
        if message[0] == "go":
            sent.append(None if message[2] is None else len(message[2]))
        return real_send(self, message)

    monkeypatch.setattr(PipelinedIngest, "_send", recorded)
    argv = [str(path), "--system", "crm", "--domain", "customer", "--no-progress", "--bulk", "--batch-size", "500"]
    one_process, pipelined = _one_process_then_pipelined(argv, between=lambda: sent == [])
    assert sent == [None, 500, 300]
    assert pipelined == one_process
    assert SourceRecord.objects.count() == 1300


def test_the_matcher_finds_what_it_sent_memoised_when_it_reads_it_back(tmp_path, monkeypatch):
    """The features of the records one call sent are memoised under the text the database gives back for their
    stored values: the next call, reading them as candidates, finds every one there."""
    from canonical.matching import fuzzy

    log = tmp_path / "memo.log"
    original_put, original_get = fuzzy._PreparedCache.put_text, fuzzy._PreparedCache.get_text

    def put_text(self, defn, text, features):  # in the matcher process (forked with these in place)
        with log.open("a") as fh:
            fh.write(json.dumps(["put", text]) + "\n")
        return original_put(self, defn, text, features)

    def get_text(self, defn, text, decode):
        with log.open("a") as fh:
            fh.write(json.dumps(["get", text, (defn.domain, "text", text) in self.entries]) + "\n")
        return original_get(self, defn, text, decode)

    monkeypatch.setattr(fuzzy._PreparedCache, "put_text", put_text)
    monkeypatch.setattr(fuzzy._PreparedCache, "get_text", get_text)
    _reset_caches()
    envelopes = _envelopes(400)
    with audit_context(actor="pytest", channel=Channel.JOB), PipelinedIngest(domain="customer") as pipelined:
        first = pipelined.ingest(envelopes[0::2], system="crm")  # a company each: nothing to read back yet
        second = pipelined.ingest(envelopes[1::2], system="erp")  # each again, spelled otherwise
    assert {r.outcome for r in first} == {"created"} and {r.outcome for r in second} == {"linked"}
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    put = {e[1] for e in entries if e[0] == "put"}
    assert len(put) == 400  # each call's records, as its segment ended
    # (the matcher memoises before it takes the next call: every read of those texts comes after)
    read_back = [e[2] for e in entries if e[0] == "get" and e[1] in put]
    assert len(read_back) >= 200 and all(read_back)


def test_a_first_batch_added_to_after_the_fork_is_sent_whole():
    """The matcher has `first` as it was when it was forked: given the same list with records added since, the
    writer sends it (the matcher would otherwise match only the records it has, and the two disagree)."""
    envelopes = _envelopes(1200)
    first = envelopes[:1000]
    with audit_context(actor="pytest", channel=Channel.JOB), PipelinedIngest(domain="customer", first=first) as p:
        first += envelopes[1000:]  # the same list, longer
        results = p.ingest(first, system="crm")
    assert len(results) == 1200 and SourceRecord.objects.count() == 1200


def _partition() -> set[frozenset[str]]:
    groups: dict = {}
    for sid, golden in SourceRecord.objects.values_list("source_id", "golden_id"):
        groups.setdefault(golden, set()).add(sid)
    return {frozenset(g) for g in groups.values()}


def _renamed(envelopes, prefix):
    spec = get_domain("customer")
    return [
        envelope_parse(
            {"source_id": f"{prefix}{i}", "updated_at": "2026-01-01T00:00:00Z", "attributes": env.attributes},
            spec=spec,
        )
        for i, env in enumerate(envelopes)
    ]


def test_after_a_writer_error_mid_segment_the_next_call_does_not_apply_the_old_calls_plans(monkeypatch):
    """The writer fails (its segment rolls back) while the matcher is still sending that call's plans: the next call
    on the same instance must ingest its own records, not the earlier call's plans under its envelopes."""
    first = _envelopes(600, seed=3)
    second = _renamed(_envelopes(600, seed=5), "B")
    with PipelinedIngest(system="crm", domain="customer") as pipelined:
        real_apply = bulk_module._apply

        def failing(chunk, plan):  # patched after the fork: only the writer has it
            if plan.env.source_id == "R10":
                raise RuntimeError("writer failed")
            return real_apply(chunk, plan)

        monkeypatch.setattr(bulk_module, "_apply", failing)
        with pytest.raises(RuntimeError, match="writer failed"):
            pipelined.ingest(first)
        monkeypatch.setattr(bulk_module, "_apply", real_apply)
        time.sleep(1)  # the old matcher, had it been left running, would have sent the rest by now
        results = pipelined.ingest(second)
    assert [r.source_id for r in results] == [env.source_id for env in second]
    stored = dict(SourceRecord.objects.values_list("source_id", "attributes"))
    assert set(stored) == {env.source_id for env in second}
    assert all(stored[env.source_id] == env.attributes for env in second)


def test_without_redis_the_matcher_reads_the_population_the_writer_has_committed_since(monkeypatch, settings, tmp_path):
    """With a cache that is each process's own (no Redis), the matcher still scores with the population the bulk
    path would read: the writer's, sent with each segment."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    from django.core.cache import cache

    from canonical.matching import batch as batch_module
    from canonical.matching import fuzzy, scoring

    cache.clear()
    fuzzy._population_memo.clear()
    monkeypatch.setattr(fuzzy, "_POPULATION_CACHE_FROM", 50)  # a "big" hub at test size, before the fork
    monkeypatch.setattr(batch_module, "MIN_TF_POPULATION", 50)
    monkeypatch.setattr(scoring, "MIN_TF_POPULATION", 50)
    seen = tmp_path / "population"
    real = batch_module.BatchMatch._population

    def recorded(self):
        value = real(self)
        with seen.open("a") as fh:
            fh.write(f"{os.getpid()} {value}\n")
        return value

    monkeypatch.setattr(batch_module.BatchMatch, "_population", recorded)
    source_records_ingest_bulk(system="crm", domain="customer", envelopes=_renamed(_envelopes(100, seed=1), "P"))
    assert pipeline_usable()
    a = _renamed(_envelopes(300, seed=2), "A")
    b = _renamed(_envelopes(300, seed=4), "B")
    with PipelinedIngest(system="crm", domain="customer") as pipelined:
        pipelined.ingest(a)
        seen.write_text("")
        pipelined.ingest(b)
    live = SourceRecord.objects.filter(source_id__startswith="A", status="applied").count() + 100
    pid, first = seen.read_text().split()[:2]
    assert int(pid) != os.getpid()  # read in the matcher process
    # the database's live records, plus those of the segment matched before the first term frequency was needed
    assert live <= int(first) <= live + 10, f"the matcher scored with population {first}; the database held {live}"


def test_a_writer_that_dies_does_not_leave_its_matcher_process_behind():
    connections.close_all()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a writer that starts its matcher and dies without closing it
        try:
            os.close(r)
            pipelined = PipelinedIngest(system="crm", domain="customer").__enter__()
            os.write(w, str(pipelined._process.pid).encode())
        finally:
            os._exit(0)
    os.close(w)
    matcher = int(os.read(r, 100).decode())
    os.close(r)
    os.waitpid(pid, 0)
    for _ in range(50):
        try:
            os.kill(matcher, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(matcher, signal.SIGKILL)
        pytest.fail("the matcher process outlived its writer")


def _csv(path, n: int) -> None:
    fields = ["name", "website", "phone", "city", "country"]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source_id", "updated_at", *fields])
        for env in _envelopes(n):
            writer.writerow([env.source_id, "2026-01-01T00:00:00Z", *(env.attributes.get(f) or "" for f in fields)])


def test_an_interrupted_cli_ingest_counts_only_the_records_committed(tmp_path, monkeypatch):
    """The pipelined path tells the progress bar as it applies records, in a transaction committed later: the
    "interrupted" message must count what was committed, not what was applied."""
    import re

    from django.core.management.base import CommandError

    path = tmp_path / "crm.csv"
    _csv(path, 1500)
    real_apply, applied = bulk_module._apply, [0]

    def interrupting(chunk, plan):  # the writer's
        applied[0] += 1
        if applied[0] == 1100:
            raise KeyboardInterrupt
        return real_apply(chunk, plan)

    monkeypatch.setattr(bulk_module, "_apply", interrupting)
    argv = [str(path), "--system", "crm", "--domain", "customer", "--no-progress", "--bulk"]
    with pytest.raises(CommandError, match="interrupted") as info:
        call_command("ingest", *argv, "--batch-size", "1000")
    claimed = int(re.search(r"about (\d+) of", str(info.value)).group(1))
    assert claimed == SourceRecord.objects.count() == 1000  # the first batch of 1,000 was committed


def test_a_matcher_failure_in_the_cli_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    from django.core.management.base import CommandError

    path = tmp_path / "crm.csv"
    _csv(path, 1200)
    real_plan = bulk_module._plan

    def failing(chunk, env, **kwargs):  # patched before the fork: the matcher's
        if env.source_id == "R700":
            raise RuntimeError("matcher broke")
        return real_plan(chunk, env, **kwargs)

    monkeypatch.setattr(bulk_module, "_plan", failing)
    argv = [str(path), "--system", "crm", "--domain", "customer", "--no-progress", "--bulk"]
    with pytest.raises(CommandError, match="(?s)the matcher process failed.*matcher broke.*about 0 of 1200 records"):
        call_command("ingest", *argv)
    assert not SourceRecord.objects.exists()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_closed_pipelined_ingest_refuses_more_work_and_leaves_no_process():
    envelopes = _envelopes(10)
    with PipelinedIngest(system="crm", domain="customer") as pipelined:
        pipelined.ingest(envelopes[:5])
        pid = pipelined._process.pid
    with pytest.raises(PipelineError, match="closed"):
        pipelined.ingest(envelopes[5:])
    assert _gone(pid)  # ended and reaped (a zombie would still answer)
    assert SourceRecord.objects.count() == 5


def test_the_matcher_does_not_run_the_after_fork_hooks_libraries_registered(tmp_path):
    """multiprocessing.Process runs every hook registered with multiprocessing.util.register_after_fork in its child;
    kombu's closes the parent's broker connections there and can block on their sockets (the suite hung so). The
    matcher is a plain fork: no such hook runs in it."""
    import multiprocessing.util

    ran = tmp_path / "hook-ran"

    class Holder:
        pass

    holder = Holder()

    def hook(obj):  # kombu's blocked here; this one only leaves a trace
        ran.write_text("ran")

    multiprocessing.util.register_after_fork(holder, hook)
    try:
        envelopes = _envelopes(20)
        with PipelinedIngest(system="crm", domain="customer") as pipelined:
            results = pipelined.ingest(envelopes)
    finally:
        del holder  # the registry holds it weakly
    assert len(results) == 20 and not ran.exists()


def _resent(n: int, *, changed_every: int = 0, stale_every: int = 0) -> list:
    """n CRM customers, then the same again: every `changed_every`-th changed (later), every `stale_every`-th an
    older version, the rest unchanged."""
    rng = random.Random(5)
    firms = [_company(rng, i) for i in range(n)]
    first = [_row(f"C{i}", 1, **firm) for i, firm in enumerate(firms)]
    again = []
    for i, firm in enumerate(firms):
        if changed_every and i % changed_every == 0:
            again.append(_row(f"C{i}", 2, **{**firm, "city": "Rome"}))
        elif stale_every and i % stale_every == 0:
            again.append(_row(f"C{i}", 0, **{**firm, "city": "Oslo"}))
        else:
            again.append(_row(f"C{i}", 1, **firm))
    return [("crm", "customer", first), ("crm", "customer", again)]


def _outcomes(results) -> list[tuple]:
    return [(r["source_id"], r["outcome"], r.get("golden_id") is None, r.get("message")) for _, _, r in results]


def _segments(monkeypatch) -> list[int]:
    """The start of every segment the writer asks the matcher for, as it asks."""
    starts = []
    real = PipelinedIngest._send

    def counted(self, message):
        if message[0] == "go":
            starts.append(message[1])
        return real(self, message)

    monkeypatch.setattr(PipelinedIngest, "_send", counted)
    return starts


def _calls(monkeypatch, module, name: str) -> list[dict]:
    """The keyword arguments of every call of `module.name` from now on (the function still runs)."""
    calls: list[dict] = []
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda **kw: calls.append(kw) or real(**kw))
    return calls


def test_a_batch_sent_again_unchanged_or_stale_is_one_segment_with_nothing_written(monkeypatch):
    batches = _resent(300, stale_every=7)
    in_bulk, state_a = run(batches, source_records_ingest_bulk)
    starts = _segments(monkeypatch)
    by_record = _calls(monkeypatch, pipeline_module, "source_records_ingest")
    pipelined = run_pipelined(batches, batch_size=1000)

    again = [r for _, _, r in pipelined[300:]]
    assert {r["outcome"] for r in again} == {"unchanged", "stale"}
    assert sum(r["outcome"] == "stale" for r in again) == len(range(0, 300, 7))
    assert all(r["golden_id"] for r in again)
    assert starts == [0, 0]  # one segment for each batch: the versions that change nothing do not end one
    assert by_record == []  # and none of them went record by record
    assert _outcomes(pipelined) == _outcomes(in_bulk)
    assert_same_state(state_a, capture())


def _updates_pipelined(monkeypatch) -> tuple[list, list[int], list[dict]]:
    """400 customers, then the same with every other one updated, through the pipeline, compared with the bulk
    path's state; returns the pipelined results, the segments' starts and the calls of the bulk path made in it."""
    batches = _resent(400, changed_every=2)
    in_bulk, state_a = run(batches, source_records_ingest_bulk)
    starts = _segments(monkeypatch)
    in_one_process = _calls(monkeypatch, bulk_module, "source_records_ingest_bulk")
    pipelined = run_pipelined(batches, batch_size=1000)
    assert _outcomes(pipelined) == _outcomes(in_bulk)
    assert_same_state(state_a, capture())
    return pipelined, starts, in_one_process


def test_a_batch_of_updates_goes_on_in_one_process_once_its_segments_are_short(monkeypatch):
    pipelined, starts, in_one_process = _updates_pipelined(monkeypatch)

    # every update ends a segment: after 16 of them (two records each) the rest of the batch went to the bulk path
    assert starts[:2] == [0, 0] and len(starts) == 1 + pipeline_module._SHORT_AFTER
    assert [len(kw["envelopes"]) for kw in in_one_process] == [400 - (starts[-1] + 2)]  # after the last segment
    assert sum(r["outcome"] == "updated" for _, _, r in pipelined) == 200


def test_after_records_taken_in_one_process_the_matcher_is_tried_again(monkeypatch):
    monkeypatch.setattr(pipeline_module, "_SHORT_TAKE", 100)
    _, starts, in_one_process = _updates_pipelined(monkeypatch)

    # 16 short segments, 100 records in one process, 16 short segments again, ...
    assert [len(kw["envelopes"]) for kw in in_one_process][:2] == [100, 100]
    first_taken = starts[pipeline_module._SHORT_AFTER] + 2  # where the first 100 began
    assert starts[1 + pipeline_module._SHORT_AFTER] == first_taken + 100  # the matcher again, after them
