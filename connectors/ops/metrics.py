"""/metrics in the Prometheus text format.

Everything about the hub's state is read from the database at scrape time by one custom collector, so the
numbers are the same whichever web process answers (multi-process safe, nothing kept in memory). API
latency is a histogram observed by a middleware in each web process: per process unless
PROMETHEUS_MULTIPROC_DIR is set (prometheus_client's multi-process mode, which then aggregates the
processes' files at scrape time).

Derived measures (from what the hub stores, not from counters):
- match outcomes: `new` = golden records made, `auto` = source records that joined an existing golden record
  (links beyond the first of each golden record), `review` = review tasks opened by the matcher;
- records out of sync per system = differences of its last reconciliation run that the run did not heal.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count, Max, Min, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

API_LATENCY = Histogram(
    "mdm_api_request_duration_seconds",
    "Latency of API requests (per web process unless PROMETHEUS_MULTIPROC_DIR is set).",
    ["method", "route", "status"],
    registry=None,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EXCEPTION_AGES = (("lt_1h", 0, 3600), ("1h_1d", 3600, 86400), ("1d_7d", 86400, 7 * 86400), ("gt_7d", 7 * 86400, None))
CYCLE_BUCKETS = (60, 300, 900, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400)


class HubCollector:
    """Reads the hub's state from the database on every scrape."""

    def describe(self) -> list:
        return []  # no collection at registration time

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        yield from self._source_records()
        yield from self._matching()
        yield from self._exceptions(now)
        yield from self._outbox(now)
        yield from self._sync_runs()
        yield from self._reconciliation()
        yield from self._deals(now)
        yield from self._heartbeat(now)

    # --- ingest and matching ----------------------------------------------------------------------------------

    def _source_records(self) -> Iterator[Metric]:
        from canonical.models import SourceRecord

        g = GaugeMetricFamily("mdm_source_records", "Source records held, by system, domain and status.",
                              labels=["system", "domain", "status"])  # fmt: skip
        rows = SourceRecord.objects.values_list("system_id", "domain", "status").annotate(n=Count("id"))
        for system, domain, status, n in rows.order_by():
            g.add_metric([system, domain, status], n)
        yield g

    def _matching(self) -> Iterator[Metric]:
        from canonical.domains import DOMAINS
        from canonical.models import SourceRecord
        from stewardship.models import ReviewTask
        from stewardship.models.review_tasks import PENDING_REVIEW

        outcomes = GaugeMetricFamily(
            "mdm_match_outcomes",
            "Match outcomes derived from what is stored: new = golden records made, auto = source records linked to "
            "an existing golden record, review = review tasks opened.",
            labels=["domain", "outcome"],
        )
        links = {
            d: (n, g)
            for d, n, g in SourceRecord.objects.filter(golden_id__isnull=False)
            .values_list("domain")
            .annotate(n=Count("id"), g=Count("golden_id", distinct=True))
            .order_by()
        }
        reviews = dict(ReviewTask.objects.values_list("domain").annotate(n=Count("id")).order_by())
        backlog = dict(
            ReviewTask.objects.filter(status__in=PENDING_REVIEW)
            .values_list("domain")
            .annotate(n=Count("id"))
            .order_by()
        )
        for name, spec in DOMAINS.items():
            n, g = links.get(name, (0, 0))
            outcomes.add_metric([name, "new"], spec.model.objects.count())
            outcomes.add_metric([name, "auto"], n - g)
            outcomes.add_metric([name, "review"], reviews.get(name, 0))
        yield outcomes
        b = GaugeMetricFamily("mdm_review_backlog", "Review tasks waiting for a steward (open or deferred).",
                              labels=["domain"])  # fmt: skip
        for name in DOMAINS:
            b.add_metric([name], backlog.get(name, 0))
        yield b

    def _exceptions(self, now) -> Iterator[Metric]:
        from canonical.models import DataException, ExceptionKind, ExceptionStatus

        open_ = DataException.objects.filter(status=ExceptionStatus.OPEN)
        aggregates = {}
        for label, low, high in EXCEPTION_AGES:
            q = Q(created_at__lte=now - _seconds(low))
            if high is not None:
                q &= Q(created_at__gt=now - _seconds(high))
            aggregates[label] = Count("id", filter=q)
        rows = {r["kind"]: r for r in open_.values("kind").annotate(oldest=Min("created_at"), **aggregates).order_by()}
        backlog = GaugeMetricFamily("mdm_exceptions_open", "Open exceptions waiting for a steward, by kind and age.",
                                    labels=["kind", "age"])  # fmt: skip
        oldest = GaugeMetricFamily("mdm_exception_oldest_age_seconds", "Age of the oldest open exception, by kind.",
                                   labels=["kind"])  # fmt: skip
        for kind in ExceptionKind.values:
            row = rows.get(kind, {})
            for label, _, _ in EXCEPTION_AGES:
                backlog.add_metric([kind, label], row.get(label, 0))
            oldest.add_metric([kind], (now - row["oldest"]).total_seconds() if row.get("oldest") else 0)
        yield backlog
        yield oldest

    # --- outbound ---------------------------------------------------------------------------------------------

    def _outbox(self, now) -> Iterator[Metric]:
        import datetime as dt

        from connectors.models import Connection, DeadLetter, Delivery, DeliveryStatus

        systems = list(Connection.objects.values_list("system_id", flat=True))
        open_rows = {
            s: (n, first)
            for s, n, first in Delivery.objects.filter(status__in=(DeliveryStatus.PENDING, DeliveryStatus.LEASED))
            .values_list("system_id")
            .annotate(n=Count("id"), first=Min("created_at"))
            .order_by()
        }
        pending = GaugeMetricFamily("mdm_outbox_pending", "Deliveries waiting to be pushed, by system.",
                                    labels=["system"])  # fmt: skip
        age = GaugeMetricFamily("mdm_outbox_oldest_pending_age_seconds",
                                "Age of the oldest delivery still waiting (the outbox lag), by system.",
                                labels=["system"])  # fmt: skip
        lag = GaugeMetricFamily("mdm_outbox_delivery_lag_seconds",
                                "Change committed → delivered, over the last hour's deliveries (up to 1000 each).",
                                labels=["system", "quantile"])  # fmt: skip
        since = now - dt.timedelta(hours=1)
        for system in sorted(set(systems) | set(open_rows)):
            n, first = open_rows.get(system, (0, None))
            pending.add_metric([system], n)
            age.add_metric([system], (now - first).total_seconds() if first else 0)
            rows = list(
                Delivery.objects.filter(system_id=system, status=DeliveryStatus.DONE, delivered_at__gte=since)
                .order_by("-delivered_at")
                .values_list("delivered_at", "created_at")[:1000]
            )
            values = sorted((d - c).total_seconds() for d, c in rows)
            for q in (0.5, 0.99):
                lag.add_metric([system, str(q)], values[min(len(values) - 1, int(q * len(values)))] if values else 0)
        yield pending
        yield age
        yield lag
        dead = GaugeMetricFamily("mdm_dead_letters", "Dead letters not replayed yet, by system.", labels=["system"])
        counts = dict(
            DeadLetter.objects.filter(replayed_at__isnull=True)
            .values_list("system_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        for system in sorted(set(systems) | set(counts)):
            dead.add_metric([system], counts.get(system, 0))
        yield dead

    def _sync_runs(self) -> Iterator[Metric]:
        from connectors.models import SyncRun

        runs = CounterMetricFamily("mdm_sync_runs", "Recorded pull and push runs, by system, direction and status.",
                                   labels=["system", "direction", "status"])  # fmt: skip
        last = GaugeMetricFamily("mdm_sync_last_run_timestamp_seconds", "When the last run started (Unix time).",
                                 labels=["system", "direction"])  # fmt: skip
        for system, direction, status, n in (
            SyncRun.objects.values_list("system_id", "direction", "status").annotate(n=Count("id")).order_by()
        ):
            runs.add_metric([system, direction, status], n)
        for system, direction, at in (
            SyncRun.objects.values_list("system_id", "direction").annotate(at=Max("started_at")).order_by()
        ):
            last.add_metric([system, direction], at.timestamp())
        yield runs
        yield last

    def _reconciliation(self) -> Iterator[Metric]:
        from connectors.models.reconciliation import DifferenceAction, DifferenceKind
        from connectors.reconciliation.services import reconciliation_last_runs

        diffs = GaugeMetricFamily("mdm_reconciliation_differences",
                                  "Differences found by each system's last reconciliation run, by kind.",
                                  labels=["system", "kind"])  # fmt: skip
        out_of_sync = GaugeMetricFamily("mdm_records_out_of_sync",
                                        "Records of each system still out of sync after its last reconciliation run "
                                        "(raised for a steward, waiting for one, or a push on its way).",
                                        labels=["system"])  # fmt: skip
        when = GaugeMetricFamily("mdm_reconciliation_last_run_timestamp_seconds",
                                 "When each system's last reconciliation run started (Unix time).",
                                 labels=["system", "status"])  # fmt: skip
        for system, run in sorted(reconciliation_last_runs().items()):
            for kind in DifferenceKind.values:
                diffs.add_metric([system, kind], run.counts.get(kind, 0))
            healed = run.actions.get(DifferenceAction.HEALED, 0)
            out_of_sync.add_metric([system], sum(run.actions.values()) - healed)
            when.add_metric([system, run.status], run.started_at.timestamp())
        yield diffs
        yield out_of_sync
        yield when

    # --- business ---------------------------------------------------------------------------------------------

    def _deals(self, now) -> Iterator[Metric]:
        from connectors.models import DealCycle

        done = DealCycle.objects.filter(cycle_seconds__isnull=False)
        agg = done.aggregate(
            total=Count("id"),
            sum=Sum("cycle_seconds"),
            **{f"le_{b}": Count("id", filter=Q(cycle_seconds__lte=b)) for b in CYCLE_BUCKETS},
        )
        buckets = [(str(float(b)), agg[f"le_{b}"]) for b in CYCLE_BUCKETS] + [("+Inf", agg["total"])]
        h = HistogramMetricFamily("mdm_project_setup_cycle_seconds",
                                  "Deal closed-won in the CRM → project created in the PSA, per deal.")  # fmt: skip
        h.add_metric([], buckets, sum_value=agg["sum"] or 0)
        yield h
        waiting = DealCycle.objects.filter(project_created_at__isnull=True).aggregate(
            n=Count("id"), first=Min("closed_at")
        )
        w = GaugeMetricFamily("mdm_deals_waiting_for_setup", "Closed-won deals whose project does not exist yet.")
        w.add_metric([], waiting["n"])
        yield w
        a = GaugeMetricFamily("mdm_deals_waiting_oldest_age_seconds",
                              "How long the oldest deal has waited for its project.")  # fmt: skip
        a.add_metric([], (now - waiting["first"]).total_seconds() if waiting["first"] else 0)
        yield a

    def _heartbeat(self, now) -> Iterator[Metric]:
        from connectors.models import WorkerHeartbeat

        newest = WorkerHeartbeat.objects.order_by("-at").values_list("at", flat=True).first()
        g = GaugeMetricFamily("mdm_worker_heartbeat_age_seconds",
                              "Age of the newest worker heartbeat (-1: none yet).")  # fmt: skip
        g.add_metric([], (now - newest).total_seconds() if newest else -1)
        yield g


def _seconds(n: float):
    import datetime as dt

    return dt.timedelta(seconds=n)


def metrics_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(API_LATENCY)
    return registry


def metrics_text() -> bytes:
    return generate_latest(metrics_registry())


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Open by default (scraped from inside the network); MDM_METRICS_TOKEN set → a Bearer token is required."""
    token = getattr(settings, "MDM_METRICS_TOKEN", "")
    if token and request.headers.get("Authorization", "") != f"Bearer {token}":
        return HttpResponse("metrics need Authorization: Bearer <MDM_METRICS_TOKEN>\n", status=401,
                            content_type="text/plain")  # fmt: skip
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)


class ApiLatencyMiddleware:
    """Observe the latency of every request under /api/ by method, route pattern and status."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        t0 = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (getattr(match, "route", None) or "unmatched") if match is not None else "unmatched"
        API_LATENCY.labels(request.method, route, str(response.status_code)).observe(time.perf_counter() - t0)
        return response
