"""Server time of the stewards' busiest pages with 10,000 open review tasks (issue 4: under 300 ms).

Needs PostgreSQL, in a database of its own (it adds golden records, contracts and review tasks there):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mdm_ui .venv/bin/python benchmarks/steward_pages.py \
        --tasks 10000 --runs 7

Data (made once, topped up to --tasks): customers and resources in pairs, each pair one pending review task
(85 % customer, 15 % resource) with 1–3 candidates and their stored per-field explanation; a source record
per record; open contracts on a third of the customers (the queue's business weight); a few hundred
exceptions. Rows are written with simple-history's bulk_create_with_history, so history exists as usual.

Then, per page, one warm-up request and --runs timed requests through Django's test client (the whole
server side: middleware, view, queries, template), signed in as a customer steward. Prints one line per page
with the median, min and max in milliseconds and the number of queries, and a JSON summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")

BATCH = 1000
FIELDS = ["name", "web domain", "phone", "address", "country"]
LEVELS = [("exact", 2.5), ("similar", 1.1), ("different", -2.0), ("missing", 0.0)]


def _comparisons(rng: random.Random, a: str, b: str) -> list[dict]:
    out = []
    for name in FIELDS:
        level, weight = rng.choice(LEVELS)
        out.append(
            {"field": name, "value_a": a if name == "name" else None, "value_b": b, "level": level, "weight": weight}
        )
    return out


def seed(target: int, *, rng: random.Random) -> None:
    """Top the database up to `target` pending review tasks (and what they refer to)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import transaction
    from django.utils import timezone
    from simple_history.utils import bulk_create_with_history
    from tqdm import tqdm

    from canonical.audit import Channel, audit_context
    from canonical.models import Contract, Customer, DataException, Resource, SourceRecord, System
    from stewardship.models import PENDING_REVIEW, ReviewTask
    from stewardship.roles import DOMAIN_STEWARDS

    user = get_user_model().objects.filter(username="bench-steward").first()
    if user is None:
        user = get_user_model().objects.create_user("bench-steward", password="bench", is_staff=True)
        user.groups.add(Group.objects.get(name=DOMAIN_STEWARDS["customer"]))
        user.groups.add(Group.objects.get(name=DOMAIN_STEWARDS["resource"]))
    have = ReviewTask.objects.filter(status__in=PENDING_REVIEW).count()
    missing = max(0, target - have)
    if not missing:
        return
    for code in ("crm", "erp", "hr", "psa"):
        System.objects.get_or_create(code=code, defaults={"name": code.upper()})
    now = timezone.now()
    with audit_context(actor="bench", channel=Channel.JOB, reason="benchmark data"):
        for start in tqdm(range(0, missing, BATCH), desc="review tasks", unit="batch"):
            n = min(BATCH, missing - start)
            with transaction.atomic():
                customers, resources, sources, tasks, contracts = [], [], [], [], []
                for i in range(n):
                    k = have + start + i
                    domain = "resource" if k % 100 < 15 else "customer"
                    group = []
                    for j in range(1 + 1 + k % 3):  # the record under review and 1–3 candidates
                        gid = uuid.uuid4()
                        if domain == "customer":
                            customers.append(
                                Customer(
                                    id=gid,
                                    name=f"Bench Client {k} {'GmbH' if j else 'Ltd'}",
                                    website=f"https://client{k}-{j}.example.com",
                                    city=rng.choice(["Berlin", "Bonn", "Köln", "Hamburg"]),
                                    country="DE",
                                )
                            )
                        else:
                            resources.append(Resource(id=gid, first_name=f"Ada{k}", last_name=f"Bench{j}"))
                        sources.append(
                            SourceRecord(
                                system_id="erp" if j == 0 else ("crm" if domain == "customer" else "hr"),
                                domain=domain,
                                source_id=f"BENCH-{k}-{j}",
                                attributes={},
                                values={"name": f"Bench Client {k}"},
                                updated_at=now,
                                content_hash=uuid.uuid4().hex,
                                status="applied",
                                golden_id=gid,
                            )
                        )
                        group.append(gid)
                    score = round(rng.uniform(0.45, 0.97), 3)
                    tasks.append(
                        (
                            domain,
                            group,
                            [
                                {
                                    "golden_id": str(g),
                                    "score": round(score - 0.02 * c, 3),
                                    "reason": f"similar name, score {score:.2f}",
                                    "comparisons": _comparisons(rng, f"bench client {k}", f"bench client {k}"),
                                }
                                for c, g in enumerate(group[1:])
                            ],
                            score,
                        )
                    )
                bulk_create_with_history(customers, Customer, batch_size=500)
                bulk_create_with_history(resources, Resource, batch_size=500)
                made = SourceRecord.objects.bulk_create(sources, batch_size=500)
                by_golden = {s.golden_id: s for s in made}
                for c in customers[::3]:
                    contracts.append(
                        Contract(
                            contract_number=f"K-{c.pk.hex[:10]}", title="Bench SOW", customer_id=c.pk, currency="EUR"
                        )
                    )
                bulk_create_with_history(contracts, Contract, batch_size=500)
                rows = [
                    ReviewTask(
                        domain=domain,
                        golden_id=group[0],
                        source_record=by_golden.get(group[0]),
                        candidates=cands,
                        score=score,
                        reason=cands[0]["reason"],
                        priority=int(round(score * 100)),
                        created_by="bench",
                    )
                    for domain, group, cands, score in tasks
                ]
                bulk_create_with_history(rows, ReviewTask, batch_size=500)
        if DataException.objects.count() < 300:
            bulk_create_with_history(
                [
                    DataException(
                        kind=rng.choice(["validation", "incomplete", "ownership_conflict", "unresolved_reference"]),
                        domain="customer",
                        system_id="erp",
                        message=f"bench exception {i}",
                    )
                    for i in range(300)
                ],
                DataException,
            )


def timed(client, path: str, runs: int) -> dict:
    from django.db import connection

    response = client.get(path)  # warm-up (templates compiled, connection open)
    assert response.status_code == 200, (path, response.status_code)
    queries = []
    with connection.execute_wrapper(
        lambda execute, sql, params, many, context: queries.append(sql) or execute(sql, params, many, context)
    ):
        client.get(path)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return {
        "path": path,
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "queries": len(queries),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000, help="pending review tasks to have (topped up)")
    parser.add_argument("--runs", type=int, default=7, help="timed requests per page")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database of its own: the benchmark adds 10,000 review tasks there")

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0)
    seed(args.tasks, rng=random.Random(args.seed))
    from django.db import connection

    with connection.cursor() as cursor:  # fresh planner statistics, as autovacuum keeps them in production
        cursor.execute("ANALYZE")

    from stewardship.models import PENDING_REVIEW, ReviewTask
    from stewardship.services.workbench import QueueFilters, review_queue

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-steward"))
    domains = ["customer", "resource"]
    top = review_queue(filters=QueueFilters(), user=None, domains=domains).first()
    three = ReviewTask.objects.filter(status__in=PENDING_REVIEW, domain="customer").order_by("-id").first()
    for t in ReviewTask.objects.filter(status__in=PENDING_REVIEW, domain="customer").order_by("-id")[:50]:
        if len(t.candidates) == 3:
            three = t
            break
    pages = {
        "queue (all domains)": reverse("admin:workbench_reviews"),
        "queue (customer, page 20)": reverse("admin:workbench_reviews") + "?domain=customer&page=20",
        "queue (band ≥ 0.90, unassigned)": reverse("admin:workbench_reviews") + "?band=3&assignee=none",
        "compare (top task)": reverse("admin:workbench_compare", args=[top.pk]),
        f"compare ({len(three.candidates)} candidates)": reverse("admin:workbench_compare", args=[three.pk]),
    }
    pending = ReviewTask.objects.filter(status__in=PENDING_REVIEW).count()
    print(f"pending review tasks: {pending}; {args.runs} timed requests per page after one warm-up")
    results = {}
    for name, path in pages.items():
        r = timed(client, path, args.runs)
        results[name] = r
        print(
            f"{name:36} median {r['median_ms']:7.1f} ms  (min {r['min_ms']:.1f}, max {r['max_ms']:.1f})  {r['queries']} queries"
        )
    print(
        json.dumps(
            {
                "pending_tasks": pending,
                "runs": args.runs,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "pages": {k: {kk: v for kk, v in r.items() if kk != "path"} for k, r in results.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
