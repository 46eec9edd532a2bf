"""`manage.py match`: batch re-match after a rule change — auto-merge, review tasks, partitions, resume."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.management import CommandError, call_command

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
    ],
)
def test_bad_arguments_say_what_to_do(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("match", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert MatchRun.objects.count() == 0
