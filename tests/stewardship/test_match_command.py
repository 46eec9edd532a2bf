"""`manage.py match`: batch re-match after a rule change — auto-merge, review tasks, partitions, resume."""

from __future__ import annotations

import io
import signal
import time
import uuid

import pytest
from django.core.management import CommandError, call_command
from tqdm import tqdm

from canonical.audit import Channel, audit_context
from canonical.models import ChangeEvent, Customer, MatchKey, SourceRecord
from canonical.services.golden import golden_survivor_id
from stewardship.models import MatchRun, MergeDecision, ReviewTask
from stewardship.services.decisions import not_a_match_record
from stewardship.services.rematch import match_keys_rebuild, partition_golden_ids
from tests.factories import ingest, record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def golden(source_id: str) -> uuid.UUID:
    return SourceRecord.objects.get(domain="customer", source_id=source_id).golden_id


@pytest.fixture
def customers():
    """Six customers ingested under the identifier-only rules: nothing matched yet."""
    ingest("crm", "customer", record("C1", 0, name="Acme", website="https://acme.example.com", country="DE"))
    ingest("erp", "customer", record("E1", 1, name="ACME", website="https://acme-erp.example.com", country="DE"))
    ingest("crm", "customer", record("C2", 0, name="Globex", website="https://globex.example.com", country="DE"))
    ingest("erp", "customer", record("E2", 1, name="Globex", website="https://globex.example.fr", country="FR"))
    ingest("crm", "customer", record("C3", 0, name="Initech", website="https://initech.example.com", country="DE"))
    ingest("erp", "customer", record("E3", 1, name="Initech", website="https://initech-erp.example.com", country="DE"))
    assert Customer.objects.count() == 6 and not MatchKey.objects.filter(key_type="name").exists()
    with audit_context(actor="stella", channel=Channel.STEWARD, reason="two Initechs"):
        c3, e3 = (SourceRecord.objects.get(source_id=s).pk for s in ("C3", "E3"))
        not_a_match_record(domain="customer", source_ids_a=[c3], source_ids_b=[e3], reason="two Initechs", origin="api")


@pytest.fixture
def new_rules(settings):
    settings.MDM_MATCHER = "tests.stewardship.matchers.NameCountryLinkMatcher"


def run_match(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("match", *args, stdout=out, stderr=err)
    assert "partition/s" in err.getvalue() or "nothing left" in out.getvalue()  # tqdm progress on stderr
    return out.getvalue()


def test_rematch_after_a_rule_change_merges_reviews_and_respects_not_a_match(customers, new_rules):
    out = run_match("--domain", "customer", "--partitions", "3")

    run = MatchRun.objects.get()
    assert run.status == "finished" and run.finished_partitions == [0, 1, 2] and run.keys_state == "done"
    assert f"match run #{run.pk} finished" in out
    assert MatchKey.objects.filter(key_type="name").count() == 6  # keys rebuilt with the new matcher
    # Acme (same name and country) merged into the older record: its id is stable
    assert golden("E1") == golden("C1")
    decision = MergeDecision.objects.get()
    assert decision.survivor_id == golden("C1") and decision.channel == "job"
    assert decision.actor == f"job:match#{run.pk}" and decision.reason.startswith(f"batch run #{run.pk}: same name")
    retired = Customer.objects.get(status="merged")
    assert golden_survivor_id("customer", retired.pk) == golden("C1")
    last = retired.history.first()
    assert (last.history_actor, last.history_channel) == (f"job:match#{run.pk}", "job")
    assert ChangeEvent.objects.filter(type="golden.merged").count() == 2
    # Globex (same name, other country): one review task, not two mirror images
    task = ReviewTask.objects.get()
    assert {str(task.golden_id), *task.candidate_ids} == {str(golden("C2")), str(golden("E2"))}
    assert task.created_by == f"job:match#{run.pk}"
    # Initech: a steward said not a match — neither merged nor proposed
    assert golden("C3") != golden("E3")
    assert run.counts["merged"] == 1 and run.counts["review"] == 1


def test_running_again_changes_nothing(customers, new_rules):
    run_match("--domain", "customer", "--partitions", "2")
    events = ChangeEvent.objects.count()
    run_match("--domain", "customer", "--partitions", "5")
    assert MergeDecision.objects.count() == 1 and ReviewTask.objects.count() == 1
    assert ChangeEvent.objects.count() == events


def test_resume_skips_finished_partitions(customers, new_rules):
    match_keys_rebuild(domain="customer", source_record_ids=SourceRecord.objects.values_list("pk", flat=True))
    run = MatchRun.objects.create(domain="customer", partitions=4, keys_state="done")
    acme = {
        p
        for p in range(4)
        for g in partition_golden_ids(domain="customer", partition=p, partitions=4)
        if g in (golden("C1"), golden("E1"))
    }
    run.finished_partitions = sorted(acme)  # as if a run had stopped after the partitions holding Acme
    run.save()
    out = run_match("--domain", "customer", "--resume")
    run.refresh_from_db()
    assert f"match run #{run.pk} finished" in out and MatchRun.objects.count() == 1
    assert sorted(run.finished_partitions) == [0, 1, 2, 3]
    assert golden("E1") != golden("C1")  # its partitions were done: not examined again
    assert run.counts["merged"] == 0 and ReviewTask.objects.count() == 1


def test_a_single_partition_runs_only_its_records(customers, new_rules):
    run_match("--domain", "customer", "--partition", "1/2")
    run = MatchRun.objects.get()
    assert run.finished_partitions == [0] and run.status == "running"
    first = run.counts["examined"]
    assert 0 < first < 6  # only its share of the six records
    run_match("--domain", "customer", "--partition", "2/2")
    run.refresh_from_db()
    assert run.status == "finished" and MatchRun.objects.count() == 1
    assert first < run.counts["examined"] <= 6
    assert golden("E1") == golden("C1")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--domain", "nope"], "unknown domain 'nope'"),
        (["--domain", "customer", "--partition", "0/3"], "write N/M"),
        (["--domain", "customer", "--partition", "4/3"], "write N/M"),
        (["--domain", "customer", "--partition", "x"], "write N/M"),
        (["--domain", "customer", "--partitions", "0"], "between 1 and 10000"),
        (["--domain", "customer", "--partitions", "3", "--partition", "1/2"], "disagrees"),
        (["--domain", "customer", "--worker-timeout", "0"], "--worker-timeout must be between 0.1 and 600 seconds"),
    ],
)
def test_bad_arguments_say_what_to_do(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("match", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert MatchRun.objects.count() == 0


@pytest.fixture
def no_worker(eager_celery):
    """Tasks go to the real Redis broker (REDIS_URL), where no Celery worker runs. A command still waiting after
    30 s fails the test instead of hanging it."""
    import redis

    from mdm.celery import app

    app.conf.task_always_eager = False  # (eager_celery puts the setting back)
    assert app.conf.broker_url.startswith("redis://")
    client = redis.Redis.from_url(app.conf.broker_url)

    def expire(signum, frame):
        raise TimeoutError("manage.py match is still waiting after 30 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(30)
    try:
        yield client
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        client.close()


@pytest.mark.redis
def test_with_no_worker_running_the_command_says_how_to_start_one_and_changes_nothing(db, no_worker):
    queued = no_worker.llen("celery")
    started = time.monotonic()
    with pytest.raises(CommandError) as caught:
        call_command("match", "--domain", "customer", "--worker-timeout", "0.5", stdout=io.StringIO())
    message = str(caught.value)
    assert "no Celery worker is consuming the 'celery' queue (none that does answered within 0.5 s)" in message
    assert "`.venv/bin/celery -A mdm worker -l info --concurrency 2`" in message and "Nothing was changed" in message
    assert MatchRun.objects.count() == 0 and no_worker.llen("celery") == queued  # no run, nothing queued
    # a run left unfinished: the message says how to continue it, and it is left as it was
    run = MatchRun.objects.create(domain="customer", partitions=4, keys_state="done", finished_partitions=[1])
    with pytest.raises(CommandError, match=f"with --resume to continue run #{run.pk}"):
        call_command("match", "--domain", "customer", "--resume", "--worker-timeout", "0.5", stdout=io.StringIO())
    run.refresh_from_db()
    assert (run.finished_partitions, run.status) == ([1], "running") and no_worker.llen("celery") == queued
    assert time.monotonic() - started < 20


@pytest.mark.redis
def test_waiting_for_the_workers_stops_when_none_answers_any_more(db, no_worker, monkeypatch):
    from canonical.management.commands import match

    monkeypatch.setattr(match, "WORKER_CHECK_SECONDS", 0.0)  # ask at once rather than after a quiet minute
    run = MatchRun.objects.create(domain="customer", partitions=3, keys_state="done", finished_partitions=[0])
    command = match.Command(stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError) as caught:
        command._wait(run, [0, 1, 2], bar=tqdm(disable=True), worker_timeout=0.5)
    message = str(caught.value)
    assert "no Celery worker is consuming the 'celery' queue any more" in message
    assert f"2 partition(s) of run #{run.pk} stay queued" in message and ".venv/bin/celery -A mdm worker" in message
    assert "`manage.py match --domain customer --resume`" in message


def test_no_progress_leaves_the_progress_bars_out(customers, new_rules):
    quiet, shown = io.StringIO(), io.StringIO()
    call_command(
        "match", "--domain", "customer", "--partitions", "2", "--no-progress", stdout=io.StringIO(), stderr=quiet
    )
    assert MatchRun.objects.get().status == "finished"  # it rebuilt the keys and matched, without a bar
    assert quiet.getvalue() == ""
    call_command("match", "--domain", "customer", "--partitions", "3", stdout=io.StringIO(), stderr=shown)
    assert "match keys" in shown.getvalue() and "partition" in shown.getvalue()
