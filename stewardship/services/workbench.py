"""What the stewardship workbench reads (queues, compare, golden record page) and its few bulk actions.

Selectors here build everything a page shows with a constant number of queries, whatever the queue size:
the page's tasks in one query, the golden records they name in one query per domain, the source records in
one. Decisions are the services in reviews.py, merge.py, data_exceptions.py and overrides.py; the bulk
actions here only loop over them, one savepoint per item, so one refusal does not undo the others.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    UUIDField,
    Value,
    When,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, Replace, TruncDate
from django.utils import timezone

from canonical.domains import DOMAINS, DomainSpec, get_domain
from canonical.models import (
    ChangeEvent,
    ChangeEventType,
    CrossReference,
    DataException,
    ExceptionKind,
    ExceptionStatus,
    FieldOverride,
    GoldenStatus,
    SourceRecord,
)
from canonical.services.golden import golden_compute, golden_survivor_map, golden_values
from stewardship.models import PENDING_REVIEW, MergeDecision, MergeMove, ReviewStatus, ReviewTask

from .common import StewardshipError
from .data_exceptions import data_exception_assign, data_exception_ignore, data_exception_resolve, data_exception_retry
from .merge import referencing_fields
from .reviews import review_task_assign

# --- vocabulary ----------------------------------------------------------------------------------------------

# Score bands (the matcher's probability of a match), best first. The queue is ordered by band, then business
# weight, then age: a likely duplicate of a client with open contracts comes before a weak one of nobody.
SCORE_BANDS: list[tuple[int, float | None, str]] = [
    (3, 0.9, "very likely (≥ 0.90)"),
    (2, 0.7, "likely (0.70–0.89)"),
    (1, 0.5, "possible (0.50–0.69)"),
    (0, None, "weak (< 0.50)"),
]
BAND_LABELS = {band: label for band, _, label in SCORE_BANDS}

AGE_RANGES: dict[str, tuple[int | None, int | None, str]] = {
    "1d": (None, 1, "under a day"),
    "7d": (1, 7, "1–7 days"),
    "30d": (7, 30, "7–30 days"),
    "old": (30, None, "over 30 days"),
}

# Business weight: how much hangs on a record, counted from the live records that reference it.
# (referencing domain, reference field, only open ones?) per domain, and how the count reads.
BUSINESS_WEIGHT: dict[str, tuple[list[tuple[str, str]], str]] = {
    "customer": ([("contract", "customer")], "open contracts"),
    "legal_entity": ([("customer", "legal_entity"), ("contract", "counterparty")], "customers and contracts"),
    "contract": ([("project", "contract")], "projects"),
    "project": ([], ""),
    "resource": ([("project", "project_manager")], "projects managed"),
    "rate_card": ([("contract", "rate_card")], "contracts"),
}

# The exception queues stewards work: a name, its kinds, and what it is about.
EXCEPTION_QUEUES: dict[str, tuple[list[str], str]] = {
    "data_quality": ([ExceptionKind.VALIDATION, ExceptionKind.INCOMPLETE], "Data quality"),
    "ownership_conflict": ([ExceptionKind.OWNERSHIP_CONFLICT], "Ownership conflicts"),
    "unresolved_reference": ([ExceptionKind.UNRESOLVED_REFERENCE], "Unresolved references"),
    "dead_letter": ([ExceptionKind.DEAD_LETTER], "Sync dead letters"),
    "reconciliation": ([ExceptionKind.RECONCILIATION], "Reconciliation"),
}
KIND_QUEUE = {kind: queue for queue, (kinds, _) in EXCEPTION_QUEUES.items() for kind in kinds}

# Matcher comparison names that are not field names.
_COMPARISON_FIELDS = {"web domain": "website", "start": "start_date", "address": "address_line1", "e-mail": "email"}


def _age_filter(qs: QuerySet, age: str | None, *, now: dt.datetime | None = None) -> QuerySet:
    if age not in AGE_RANGES:
        return qs
    low, high, _ = AGE_RANGES[age]
    now = now or timezone.now()
    if low is not None:
        qs = qs.filter(created_at__lte=now - dt.timedelta(days=low))
    if high is not None:
        qs = qs.filter(created_at__gt=now - dt.timedelta(days=high))
    return qs


def _user_filter(qs: QuerySet, assignee: str | None, user) -> QuerySet:
    if not assignee:
        return qs
    if assignee == "me":
        return qs.filter(assignee=user)
    if assignee == "none":
        return qs.filter(assignee__isnull=True)
    return qs.filter(assignee__username=assignee)


# --- golden record titles and values -------------------------------------------------------------------------


def golden_title(spec: DomainSpec, record) -> str:
    parts = [str(getattr(record, name) or "") for name in spec.title_fields]
    return " ".join(p for p in parts if p).strip() or str(record.pk)


def golden_titles(domain: str, ids: Iterable[Any]) -> dict[uuid.UUID, tuple[str, str]]:
    """{golden id: (title, status)} in one query."""
    spec = get_domain(domain)
    wanted = {uuid.UUID(str(i)) for i in ids if i}
    if not wanted:
        return {}
    rows = spec.model.objects.filter(pk__in=wanted).only("pk", "status", *spec.title_fields)
    return {r.pk: (golden_title(spec, r), r.status) for r in rows}


def display_value(spec: DomainSpec, name: str, value: Any, ref_titles: dict[str, dict] | None = None) -> str:
    """A golden (or source) value as a steward reads it: references by their title, lists joined."""
    fspec = spec.get(name)
    if value is None or value == "" or value == []:
        return "—"
    if fspec is not None and fspec.kind == "ref":
        if isinstance(value, dict):
            gid = value.get("golden_id")
            label = f"{value.get('system')}:{value.get('source_id')}" if value.get("source_id") else None
            value = gid or label
            if gid is None:
                return label or "—"
        titles = (ref_titles or {}).get(fspec.ref_domain, {})
        try:
            title = titles.get(uuid.UUID(str(value)))
        except ValueError:
            title = None
        return title[0] if title else str(value)[:8] + "…"
    if fspec is not None and fspec.kind == "bool":
        return "yes" if value else "no"
    if fspec is not None and fspec.kind == "lines" and isinstance(value, list):
        return "; ".join(
            f"{line.get('role')} {line.get('grade') or ''} {line.get('rate')}/{line.get('unit')}".replace("  ", " ")
            for line in value
            if isinstance(line, dict)
        )
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _ref_ids(spec: DomainSpec, values: Iterable[dict]) -> dict[str, set]:
    out: dict[str, set] = defaultdict(set)
    for vals in values:
        for f in spec.ref_fields:
            v = vals.get(f.name)
            if isinstance(v, dict):
                v = v.get("golden_id")
            if v:
                out[f.ref_domain].add(v)
    return out


def ref_titles_for(spec: DomainSpec, values: Iterable[dict]) -> dict[str, dict]:
    """Titles of every record the given value dicts reference: one query per referenced domain."""
    return {d: golden_titles(d, ids) for d, ids in _ref_ids(spec, values).items()}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()
    return a == b


def _present(v: Any) -> bool:
    return v is not None and v != "" and v != []


# --- the review queue ----------------------------------------------------------------------------------------


@dataclass
class QueueFilters:
    domain: str = ""
    status: str = "pending"  # pending (open + deferred) | open | deferred
    band: int | None = None
    system: str = ""
    age: str = ""
    assignee: str = ""  # "" any | me | none | a username

    def as_query(self) -> dict[str, str]:
        out = {
            "domain": self.domain,
            "status": "" if self.status == "pending" else self.status,
            "band": "" if self.band is None else str(self.band),
            "system": self.system,
            "age": self.age,
            "assignee": self.assignee,
        }
        return {k: v for k, v in out.items() if v}


def review_queue_filters_parse(params) -> QueueFilters:
    """Filters from a query string; unknown values raise StewardshipError (a 400 with the field named)."""
    errors: dict[str, list[str]] = {}
    f = QueueFilters()
    domain = (params.get("domain") or "").strip()
    if domain and domain not in DOMAINS:
        errors["domain"] = [f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}"]
    f.domain = domain
    status = (params.get("status") or "pending").strip()
    if status not in ("pending", "open", "deferred"):
        errors["status"] = ["expected pending, open or deferred"]
    f.status = status
    band = (params.get("band") or "").strip()
    if band:
        if band not in {str(b) for b in BAND_LABELS}:
            errors["band"] = [f"expected one of {', '.join(str(b) for b in BAND_LABELS)}"]
        else:
            f.band = int(band)
    f.system = (params.get("system") or "").strip()[:32]
    age = (params.get("age") or "").strip()
    if age and age not in AGE_RANGES:
        errors["age"] = [f"expected one of {', '.join(AGE_RANGES)}"]
    f.age = age
    f.assignee = (params.get("assignee") or "").strip()[:150]
    if errors:
        raise StewardshipError(errors)
    return f


def _band_expr() -> Case:
    whens = [When(score__gte=low, then=Value(band)) for band, low, _ in SCORE_BANDS if low is not None]
    return Case(*whens, default=Value(0), output_field=IntegerField())


def _best_candidate_expr():
    """The best candidate's golden id (candidates[0].golden_id), as the database stores a golden id.

    Read through a lookup of the task by its own id, so that sorting the whole queue carries narrow rows
    (the candidates JSON is read only for the tasks whose weight the sort needs).
    """
    text = KT("candidates__0__golden_id")
    if connection.vendor == "postgresql":
        best = Cast(text, UUIDField())
    else:
        best = Replace(text, Value("-"), Value(""), output_field=CharField())  # SQLite: UUIDs as 32 hex digits
    own = ReviewTask.objects.filter(pk=OuterRef("pk")).order_by().annotate(best=best).values("best")[:1]
    return Subquery(own, output_field=best.output_field)


def _weight_of(domain: str, target: str):
    """Live records referencing the golden id in field `target` of the task (0 if none), as a subquery."""
    refs, _ = BUSINESS_WEIGHT[domain]
    total = None
    today = timezone.localdate()
    for ref_domain, fname in refs:
        qs = (
            get_domain(ref_domain)
            .model.objects.filter(**{f"{fname}_id": OuterRef(target)})
            .exclude(status=GoldenStatus.MERGED)
        )
        if ref_domain == "contract":
            qs = qs.filter(Q(end_date__isnull=True) | Q(end_date__gte=today))
        count = qs.order_by().values(f"{fname}_id").annotate(n=Count("pk")).values("n")[:1]
        term = Coalesce(Subquery(count, output_field=IntegerField()), Value(0))
        total = term if total is None else total + term
    return total


def _weight_expr(domains: Iterable[str]):
    whens = []
    for domain in domains:
        own = _weight_of(domain, "golden_id")
        if own is None:
            continue
        whens.append(When(domain=domain, then=own + _weight_of(domain, "best_candidate_id")))
    return Case(*whens, default=Value(0), output_field=IntegerField())


def review_queue(*, filters: QueueFilters, user, domains: Iterable[str]) -> QuerySet[ReviewTask]:
    """Pending review tasks in `domains` matching the filters, highest priority first.

    Priority: score band, then business weight (live records referencing the record under review and its best
    candidate: a customer's open contracts, a resource's projects…), then age (oldest first).
    """
    domains = [d for d in DOMAINS if d in set(domains)]
    if filters.domain:
        domains = [d for d in domains if d == filters.domain]
    statuses = {"pending": list(PENDING_REVIEW), "open": [ReviewStatus.OPEN], "deferred": [ReviewStatus.DEFERRED]}
    qs = ReviewTask.objects.filter(status__in=statuses[filters.status], domain__in=domains)
    if filters.system:
        qs = qs.filter(source_record__system_id=filters.system)
    qs = _age_filter(qs, filters.age)
    qs = _user_filter(qs, filters.assignee, user)
    qs = qs.annotate(band=_band_expr())
    if filters.band is not None:
        qs = qs.filter(band=filters.band)
    qs = qs.annotate(best_candidate_id=_best_candidate_expr()).annotate(weight=_weight_expr(domains))
    return qs.select_related("source_record", "assignee").order_by("-band", "-weight", "created_at", "id")


def review_queue_known_count(filters: QueueFilters, counts: dict[str, dict[str, int]]) -> int | None:
    """The queue's length from the per-domain counts when only domain and status filter it (else None)."""
    if filters.band is not None or filters.system or filters.age or filters.assignee:
        return None
    return sum(c[filters.status] for d, c in counts.items() if not filters.domain or d == filters.domain)


def review_queue_page(*, queue: QuerySet[ReviewTask], number: Any, per_page: int = 50, count: int | None = None):
    """One page of the queue: the ordering runs over ids only, then the page's tasks are read with their
    annotations and related rows (the sort over every pending task never carries wide rows). `count`, when
    the caller knows it, saves counting the queue again. Returns (page, tasks in queue order)."""
    from django.core.paginator import Paginator

    paginator = Paginator(queue.values_list("id", flat=True), per_page)
    if count is not None:
        paginator.count = count  # a cached_property: set, it is not computed
    page = paginator.get_page(number)
    ids = list(page.object_list)
    by_id = {t.pk: t for t in queue.order_by().filter(pk__in=ids)} if ids else {}
    return page, [by_id[i] for i in ids if i in by_id]


def review_queue_counts(*, domains: Iterable[str]) -> dict[str, dict[str, int]]:
    """{domain: {"open": n, "deferred": n, "pending": n}} for every domain in `domains`, in one query."""
    out = {d: {"open": 0, "deferred": 0, "pending": 0} for d in DOMAINS if d in set(domains)}
    rows = (
        ReviewTask.objects.filter(status__in=PENDING_REVIEW, domain__in=list(out))
        .values("domain", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        out[row["domain"]][row["status"]] = row["n"]
        out[row["domain"]]["pending"] += row["n"]
    return out


@dataclass
class QueueRow:
    task: ReviewTask
    title: str
    candidate_title: str
    candidates: int
    band_label: str
    weight_label: str
    url: str = ""  # the compare page, set by the view


def review_queue_rows(tasks: list[ReviewTask]) -> list[QueueRow]:
    """The page's tasks with the titles of their records and best candidates (one query per domain on the page)."""
    ids: dict[str, set] = defaultdict(set)
    for t in tasks:
        ids[t.domain].add(t.golden_id)
        if t.candidates:
            ids[t.domain].add(t.candidates[0]["golden_id"])
    titles = {d: golden_titles(d, wanted) for d, wanted in ids.items()}
    rows = []
    for t in tasks:
        own = titles[t.domain].get(t.golden_id, (str(t.golden_id), ""))[0]
        best = ""
        if t.candidates:
            best = titles[t.domain].get(uuid.UUID(t.candidates[0]["golden_id"]), (t.candidates[0]["golden_id"], ""))[0]
        weight = getattr(t, "weight", 0) or 0
        label = BUSINESS_WEIGHT[t.domain][1]
        rows.append(
            QueueRow(
                task=t,
                title=own,
                candidate_title=best,
                candidates=len(t.candidates),
                band_label=BAND_LABELS[getattr(t, "band", 0)],
                weight_label=f"{weight} {label}" if label else "",
            )
        )
    return rows


def review_queue_systems() -> list[str]:
    from canonical.models import System

    return list(System.objects.order_by("code").values_list("code", flat=True))


def stewards_of(domain: str | None = None) -> list:
    """Users who may be given a task of `domain` (its steward group, and superusers): for the assign menu."""
    from stewardship.roles import DOMAIN_STEWARDS

    users = get_user_model().objects.filter(is_active=True, is_staff=True)
    if domain:
        users = users.filter(Q(is_superuser=True) | Q(groups__name=DOMAIN_STEWARDS[domain]))
    else:
        users = users.filter(Q(is_superuser=True) | Q(groups__name__in=list(DOMAIN_STEWARDS.values())))
    return list(users.distinct().order_by("username"))


def review_tasks_assign(*, task_ids: list[int], assignee, user=None) -> list[dict]:
    """Assign several tasks (to a steward, or to nobody). One savepoint per task; refusals are reported."""
    if not task_ids:
        raise StewardshipError({"tasks": ["choose at least one task"]})
    results = []
    for task_id in task_ids:
        try:
            with transaction.atomic():
                review_task_assign(task_id=task_id, assignee=assignee, user=user)
            results.append({"task": task_id, "assigned": True})
        except StewardshipError as exc:
            results.append({"task": task_id, "assigned": False, "errors": exc.errors})
    return results


# --- the compare page ----------------------------------------------------------------------------------------


@dataclass
class CompareColumn:
    golden_id: uuid.UUID
    record: Any
    title: str
    is_review: bool
    candidate: dict | None
    selected: bool
    sources: list[SourceRecord]
    merged_into: uuid.UUID | None = None  # a candidate merged elsewhere since the task was opened


@dataclass
class CompareCell:
    column: CompareColumn
    value: Any
    display: str
    system: str | None
    at: dt.datetime | None
    rule: str
    state: str  # review | same | differs | missing | only
    similarity: dict | None = None
    chosen: bool = False


@dataclass
class CompareRow:
    name: str
    label: str
    cells: list[CompareCell]
    differs: bool
    preview: str
    preview_origin: str
    evidence: bool = False  # a matcher comparison that is not one of the domain's fields

    @property
    def all_empty(self) -> bool:
        return not self.evidence and self.preview == "—" and all(c.display == "—" for c in self.cells)


@dataclass
class Compare:
    task: ReviewTask
    spec: DomainSpec
    columns: list[CompareColumn]
    rows: list[CompareRow]
    survivor_id: uuid.UUID
    selected_ids: list[str]
    choices: dict[str, str]
    explanations: list[dict]


def _parse_at(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None


def review_compare(
    *,
    task: ReviewTask,
    selected_ids: list[str] | None = None,
    choices: dict[str, str] | None = None,
    survivor_id: str | None = None,
) -> Compare:
    """The record under review and its candidates side by side, with a preview of the merged golden record.

    `selected_ids`: the candidates to merge (default: the best one). `choices`: {field: golden id whose value
    survives}. Reads a fixed number of queries (records, sources, overrides, referenced titles, ownership).
    """
    spec = get_domain(task.domain)
    model = spec.model
    cand_by_id = {c["golden_id"]: c for c in task.candidates}
    wanted = [str(task.golden_id), *cand_by_id]
    survivors = golden_survivor_map(task.domain, wanted)
    live_ids = {str(v) for v in survivors.values()} | set(wanted)
    records = {r.pk: r for r in model.objects.filter(pk__in=live_ids)}
    sources_by_golden: dict[uuid.UUID, list[SourceRecord]] = defaultdict(list)
    for sr in SourceRecord.objects.filter(domain=task.domain, golden_id__in=list(records)).order_by("system_id", "pk"):
        sources_by_golden[sr.golden_id].append(sr)
    valid_candidates = [c for c in cand_by_id if uuid.UUID(c) in records]
    if selected_ids is None:
        selected = valid_candidates[:1]
    else:
        selected = [c for c in selected_ids if c in cand_by_id]
    columns: list[CompareColumn] = []
    for gid in wanted:
        uid = uuid.UUID(gid)
        record = records.get(uid)
        if record is None:
            continue
        survivor = survivors.get(uid)
        columns.append(
            CompareColumn(
                golden_id=uid,
                record=record,
                title=golden_title(spec, record),
                is_review=gid == str(task.golden_id),
                candidate=cand_by_id.get(gid),
                selected=gid == str(task.golden_id) or gid in selected,
                sources=sources_by_golden.get(uid, []),
                merged_into=survivor if survivor and survivor != uid else None,
            )
        )
    values = {c.golden_id: golden_values(c.record) for c in columns}
    overrides = {
        (o.golden_id, o.field): o
        for o in FieldOverride.objects.filter(domain=task.domain, golden_id__in=list(values), is_active=True)
    }
    in_merge = [c for c in columns if c.selected and c.merged_into is None]
    group_ids = [c.golden_id for c in in_merge]
    if survivor_id and any(str(g) == survivor_id for g in group_ids):
        survivor = uuid.UUID(survivor_id)
    else:
        oldest = sorted(in_merge, key=lambda c: (c.record.created_at, str(c.golden_id)))
        survivor = oldest[0].golden_id if oldest else task.golden_id
    choices = {k: v for k, v in (choices or {}).items() if spec.get(k) and uuid.UUID(v) in values} if choices else {}
    group_sources = [
        sr for c in in_merge for sr in c.sources if not sr.deleted and sr.status == "applied"
    ]  # live sources of the merged record, as survivorship will see them
    preview_overrides = {f: o.value for (g, f), o in overrides.items() if g == survivor}
    for name, gid in choices.items():
        preview_overrides[name] = values[uuid.UUID(gid)][name]
    survival = golden_compute(task.domain, survivor, group_sources, overrides=preview_overrides)
    titles = ref_titles_for(spec, [*values.values(), survival.values])
    review_values = values.get(task.golden_id, {})
    by_title = {c.golden_id: c.title for c in columns}

    # per-field similarity from the stored explanation of each candidate
    similarity: dict[tuple[str, str], dict] = {}
    evidence: dict[str, dict[str, dict]] = defaultdict(dict)
    for gid, cand in cand_by_id.items():
        for comp in cand.get("comparisons") or []:
            cname = str(comp.get("field", ""))
            fname = _COMPARISON_FIELDS.get(cname, cname.replace(" ", "_"))
            if spec.get(fname) is not None and (fname, gid) not in similarity:
                similarity[(fname, gid)] = {**comp, "name": cname}
            else:
                evidence[cname][gid] = comp

    rows: list[CompareRow] = []
    for fspec in spec.fields:
        name = fspec.name
        cells = []
        differs = False
        for col in columns:
            value = values[col.golden_id][name]
            prov = (col.record.provenance or {}).get(name) or {}
            ov = overrides.get((col.golden_id, name))
            if col.is_review:
                state = "review"
            elif not _present(value) and not _present(review_values.get(name)):
                state = "same"
            elif not _present(value) or not _present(review_values.get(name)):
                state = "missing" if not _present(value) else "only"
            elif value == review_values.get(name):
                state = "same"
            else:
                state = "case" if _same(value, review_values.get(name)) else "differs"
            if state in ("differs", "missing", "only"):
                differs = True
            cells.append(
                CompareCell(
                    column=col,
                    value=value,
                    display=display_value(spec, name, value, titles),
                    system=prov.get("system") or ("steward" if ov else None),
                    at=_parse_at(prov.get("at")) or (ov.created_at if ov else None),
                    rule=prov.get("rule", ""),
                    state=state,
                    similarity=similarity.get((name, str(col.golden_id))),
                    chosen=choices.get(name) == str(col.golden_id),
                )
            )
        prov = survival.provenance.get(name) or {}
        if name in choices:
            origin = f"chosen: {by_title.get(uuid.UUID(choices[name]), choices[name])}"
        elif prov.get("rule") == "steward_override":
            origin = "steward override"
        elif prov:
            origin = f"{prov.get('system')} ({prov.get('rule')})"
        else:
            origin = ""
        rows.append(
            CompareRow(
                name=name,
                label=name.replace("_", " "),
                cells=cells,
                differs=differs,
                preview=display_value(spec, name, survival.values.get(name), titles),
                preview_origin=origin,
            )
        )
    for cname, per_candidate in evidence.items():
        cells = []
        for col in columns:
            comp = per_candidate.get(str(col.golden_id))
            if col.is_review:
                first = next(iter(per_candidate.values()))
                display = display_value(spec, "", first.get("value_a"))
            else:
                display = display_value(spec, "", comp.get("value_b")) if comp else "—"
            cells.append(
                CompareCell(
                    column=col,
                    value=None,
                    display=display,
                    system=None,
                    at=None,
                    rule="",
                    state="review" if col.is_review else "same",
                    similarity=comp,
                )
            )
        rows.append(
            CompareRow(
                name=f"evidence:{cname}",
                label=cname,
                cells=cells,
                differs=False,
                preview="",
                preview_origin="",
                evidence=True,
            )
        )
    explanations = [
        {"golden_id": gid, "title": by_title.get(uuid.UUID(gid), gid), **cand} for gid, cand in cand_by_id.items()
    ]
    return Compare(
        task=task,
        spec=spec,
        columns=columns,
        rows=rows,
        survivor_id=survivor,
        selected_ids=selected,
        choices=choices,
        explanations=explanations,
    )


def review_neighbours(
    *, task: ReviewTask, filters: QueueFilters, user, domains: Iterable[str]
) -> dict[str, int | None]:
    """The tasks before and after `task` in the (filtered) queue order, for j/k navigation: two small queries."""
    qs = review_queue(filters=filters, user=user, domains=domains)
    ids = list(qs.values_list("id", flat=True)[:500])
    if task.pk not in ids:
        return {"previous": None, "next": ids[0] if ids else None}
    i = ids.index(task.pk)
    return {"previous": ids[i - 1] if i > 0 else None, "next": ids[i + 1] if i + 1 < len(ids) else None}


# --- the golden record page ----------------------------------------------------------------------------------


@dataclass
class FieldLine:
    name: str
    label: str
    value: Any
    display: str
    provenance: dict
    override: FieldOverride | None
    source_values: list[dict]
    personal: bool


@dataclass
class HistoryEntry:
    when: dt.datetime
    version: int | None
    kind: str
    actor: str
    channel: str
    reason: str
    changes: list[tuple[str, str, str]]


@dataclass
class RelatedGroup:
    label: str
    domain: str
    rows: list[tuple[uuid.UUID, str, str]]
    total: int


@dataclass
class GoldenPage:
    spec: DomainSpec
    record: Any
    title: str
    fields: list[FieldLine]
    sources: list[dict]
    history: list[HistoryEntry]
    related: list[RelatedGroup]
    merged_from: list[tuple[uuid.UUID, str]]
    merges: list[MergeDecision]
    open_tasks: list[ReviewTask]
    open_exceptions: list[DataException]
    xrefs: list[CrossReference]


def _history_value(spec: DomainSpec, row, name: str) -> Any:
    f = spec.get(name)
    if f is not None and f.kind == "ref":
        return getattr(row, f"{name}_id")
    return getattr(row, name)


def _short(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, uuid.UUID):
        return str(value)[:8] + "…"
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def golden_history(*, spec: DomainSpec, golden_id: uuid.UUID, limit: int = 50) -> list[HistoryEntry]:
    """The record's versions, newest first, each with the fields it changed (old → new) and who/why."""
    rows = list(spec.model.history.filter(id=golden_id).order_by("-history_date", "-history_id")[: limit + 1])
    names = ["status", *spec.field_names]
    entries = []
    for i, row in enumerate(rows[:limit]):
        previous = rows[i + 1] if i + 1 < len(rows) else None
        changes = []
        for name in names:
            new = _history_value(spec, row, name)
            old = _history_value(spec, previous, name) if previous is not None else None
            if previous is None and not _present(new):
                continue
            if previous is None or old != new:
                changes.append((name.replace("_", " "), _short(old) if previous else "", _short(new)))
        if previous is not None and previous.merged_into_id != row.merged_into_id:
            changes.append(("merged into", _short(previous.merged_into_id), _short(row.merged_into_id)))
        kind = {"+": "created", "~": "changed", "-": "deleted"}.get(row.history_type, row.history_type)
        entries.append(
            HistoryEntry(
                when=row.history_date,
                version=getattr(row, "version", None),
                kind=kind,
                actor=row.history_actor or "",
                channel=row.history_channel or "",
                reason=row.history_change_reason or "",
                changes=changes,
            )
        )
    return entries


def golden_related(*, spec: DomainSpec, golden_id: uuid.UUID, limit: int = 20) -> list[RelatedGroup]:
    """Live records of other domains that reference this one (a customer's contracts and projects, …)."""
    groups = []
    for ref_spec, fspec in referencing_fields(spec.name):
        qs = ref_spec.model.objects.filter(**{f"{fspec.name}_id": golden_id}).exclude(status=GoldenStatus.MERGED)
        rows = list(qs.only("pk", "status", *ref_spec.title_fields).order_by(*ref_spec.title_fields)[: limit + 1])
        if not rows:
            continue
        total = len(rows) if len(rows) <= limit else qs.count()
        label = f"{ref_spec.name.replace('_', ' ')}s (as {fspec.name.replace('_', ' ')})"
        groups.append(
            RelatedGroup(
                label=label,
                domain=ref_spec.name,
                rows=[(r.pk, golden_title(ref_spec, r), r.status) for r in rows[:limit]],
                total=total,
            )
        )
    return groups


def golden_record_page(*, domain: str, golden_id: uuid.UUID) -> GoldenPage | None:
    """Everything the golden record page shows; None if there is no such record."""
    spec = get_domain(domain)
    record = spec.model.objects.filter(pk=golden_id).first()
    if record is None:
        return None
    values = golden_values(record)
    sources = list(SourceRecord.objects.filter(domain=domain, golden_id=golden_id).order_by("system_id", "source_id"))
    titles = ref_titles_for(spec, [values, *(s.values for s in sources)])
    overrides = {o.field: o for o in FieldOverride.objects.filter(domain=domain, golden_id=golden_id, is_active=True)}
    fields = []
    for f in spec.fields:
        prov = (record.provenance or {}).get(f.name) or {}
        winner = prov.get("source_record")
        per_source = []
        for s in sources:
            if f.name not in (s.values or {}):
                continue
            v = s.values.get(f.name)
            per_source.append(
                {
                    "system": s.system_id,
                    "source_id": s.source_id,
                    "display": display_value(spec, f.name, v, titles),
                    "wins": s.pk == winner,
                    "conflict": f.name in (s.conflicts or {}),
                    "live": s.is_live,
                }
            )
        fields.append(
            FieldLine(
                name=f.name,
                label=f.name.replace("_", " "),
                value=values[f.name],
                display=display_value(spec, f.name, values[f.name], titles),
                provenance={**prov, "at": _parse_at(prov.get("at"))},
                override=overrides.get(f.name),
                source_values=per_source,
                personal=f.personal,
            )
        )
    source_rows = [
        {"sr": s, "can_unmerge": len(sources) > 1, "conflicts": sorted(s.conflicts or {}), "live": s.is_live}
        for s in sources
    ]
    merged_from = [
        (r.pk, golden_title(spec, r))
        for r in spec.model.objects.filter(merged_into_id=golden_id).only("pk", *spec.title_fields)[:50]
    ]
    retired_in = MergeMove.objects.filter(from_golden_id=golden_id).values("merge_id")
    merges = list(
        MergeDecision.objects.filter(domain=domain)
        .filter(Q(survivor_id=golden_id) | Q(pk__in=retired_in))
        .order_by("-created_at")[:20]
    )
    return GoldenPage(
        spec=spec,
        record=record,
        title=golden_title(spec, record),
        fields=fields,
        sources=source_rows,
        history=golden_history(spec=spec, golden_id=golden_id),
        related=golden_related(spec=spec, golden_id=golden_id),
        merged_from=merged_from,
        merges=merges,
        open_tasks=list(
            ReviewTask.objects.filter(domain=domain, status__in=PENDING_REVIEW)
            .filter(Q(golden_id=golden_id))
            .order_by("-priority")[:10]
        ),
        open_exceptions=list(
            DataException.objects.filter(status=ExceptionStatus.OPEN)
            .filter(Q(golden_id=golden_id) | Q(source_record__golden_id=golden_id, source_record__domain=domain))
            .order_by("-created_at")[:20]
        ),
        xrefs=list(CrossReference.objects.filter(domain=domain, golden_id=golden_id).order_by("system_id")),
    )


# --- the exception queues ------------------------------------------------------------------------------------


@dataclass
class ExceptionFilters:
    queue: str = ""
    status: str = ExceptionStatus.OPEN
    domain: str = ""
    system: str = ""
    age: str = ""
    assignee: str = ""

    def as_query(self) -> dict[str, str]:
        out = {
            "queue": self.queue,
            "status": "" if self.status == ExceptionStatus.OPEN else self.status,
            "domain": self.domain,
            "system": self.system,
            "age": self.age,
            "assignee": self.assignee,
        }
        return {k: v for k, v in out.items() if v}


def exception_filters_parse(params) -> ExceptionFilters:
    errors: dict[str, list[str]] = {}
    f = ExceptionFilters()
    f.queue = (params.get("queue") or "").strip()
    if f.queue and f.queue not in EXCEPTION_QUEUES:
        errors["queue"] = [f"expected one of {', '.join(EXCEPTION_QUEUES)}"]
    f.status = (params.get("status") or ExceptionStatus.OPEN).strip()
    if f.status not in ExceptionStatus.values:
        errors["status"] = [f"expected one of {', '.join(ExceptionStatus.values)}"]
    f.domain = (params.get("domain") or "").strip()
    if f.domain and f.domain not in DOMAINS:
        errors["domain"] = [f"unknown domain {f.domain!r}; expected one of {', '.join(DOMAINS)}"]
    f.system = (params.get("system") or "").strip()[:32]
    f.age = (params.get("age") or "").strip()
    if f.age and f.age not in AGE_RANGES:
        errors["age"] = [f"expected one of {', '.join(AGE_RANGES)}"]
    f.assignee = (params.get("assignee") or "").strip()[:150]
    if errors:
        raise StewardshipError(errors)
    return f


def exception_queue(*, filters: ExceptionFilters, user, domains: Iterable[str]) -> QuerySet[DataException]:
    """Exceptions in `domains` (and those of no domain), oldest first (the longest wait is handled first)."""
    qs = DataException.objects.filter(status=filters.status).filter(Q(domain__in=list(domains)) | Q(domain=""))
    if filters.queue:
        qs = qs.filter(kind__in=EXCEPTION_QUEUES[filters.queue][0])
    if filters.domain:
        qs = qs.filter(domain=filters.domain)
    if filters.system:
        qs = qs.filter(system_id=filters.system)
    qs = _age_filter(qs, filters.age)
    qs = _user_filter(qs, filters.assignee, user)
    return qs.select_related("source_record", "assignee").order_by("created_at", "id")


def exception_queue_counts(*, domains: Iterable[str]) -> dict[str, int]:
    """Open exceptions per queue, in one query."""
    out = dict.fromkeys(EXCEPTION_QUEUES, 0)
    rows = (
        DataException.objects.filter(status=ExceptionStatus.OPEN)
        .filter(Q(domain__in=list(domains)) | Q(domain=""))
        .values("kind")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        queue = KIND_QUEUE.get(row["kind"])
        if queue:
            out[queue] += row["n"]
    return out


def data_exceptions_act(*, action: str, exception_ids: list[int], reason: str = "", user=None) -> list[dict]:
    """Retry, resolve or ignore several exceptions (the reason is required to ignore); one savepoint each."""
    if action not in ("retry", "resolve", "ignore"):
        raise StewardshipError({"action": ["expected retry, resolve or ignore"]})
    if not exception_ids:
        raise StewardshipError({"exceptions": ["choose at least one exception"]})
    if action == "ignore" and not (reason or "").strip():
        raise StewardshipError({"reason": ["a reason is required for ignoring an exception"]})
    results = []
    for pk in exception_ids:
        try:
            with transaction.atomic():
                if action == "retry":
                    exc, result = data_exception_retry(exception_id=pk, user=user, reason=reason)
                    results.append({"exception": pk, "ok": True, "status": exc.status, "outcome": result.outcome})
                    continue
                if action == "resolve":
                    exc = data_exception_resolve(exception_id=pk, note=reason, user=user)
                else:
                    exc = data_exception_ignore(exception_id=pk, reason=reason, user=user)
            results.append({"exception": pk, "ok": True, "status": exc.status})
        except StewardshipError as exc:
            results.append({"exception": pk, "ok": False, "errors": exc.errors})
    return results


def data_exceptions_assign(*, exception_ids: list[int], assignee, user=None) -> list[dict]:
    if not exception_ids:
        raise StewardshipError({"exceptions": ["choose at least one exception"]})
    results = []
    for pk in exception_ids:
        try:
            with transaction.atomic():
                data_exception_assign(exception_id=pk, assignee=assignee, user=user)
            results.append({"exception": pk, "ok": True})
        except StewardshipError as exc:
            results.append({"exception": pk, "ok": False, "errors": exc.errors})
    return results


# --- the dashboard -------------------------------------------------------------------------------------------


@dataclass
class Dashboard:
    days: list[dt.date]
    review_backlog: dict[str, int]  # domain -> pending tasks now
    exception_backlog: dict[str, int]  # queue -> open exceptions now
    review_trend: list[int]  # pending tasks at the end of each day
    exception_trend: list[int]
    decisions: dict[str, list[int]]  # kind -> per day
    auto_links: list[int]
    reviews_opened: list[int]
    auto_merge_rate: list[float | None]  # auto links / (auto links + review tasks opened), per day

    @property
    def overall_auto_merge_rate(self) -> float | None:
        links, opened = sum(self.auto_links), sum(self.reviews_opened)
        return links / (links + opened) if links + opened else None


def _per_day(rows: Iterable[tuple[dt.date, int]], days: list[dt.date]) -> list[int]:
    got = defaultdict(int)
    for day, n in rows:
        if isinstance(day, dt.datetime):
            day = day.date()
        got[day] += n
    return [got.get(d, 0) for d in days]


def _backlog_trend(qs: QuerySet, closed_at: str, days: list[dt.date]) -> list[int]:
    """Items open at the end of each day: created before it, not closed by then (one query, one count per day)."""
    tz = timezone.get_current_timezone()
    aggregates = {}
    for i, day in enumerate(days):
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        aggregates[f"d{i}"] = Count(
            "id", filter=Q(created_at__lt=end) & (Q(**{f"{closed_at}__isnull": True}) | Q(**{f"{closed_at}__gte": end}))
        )
    out = qs.aggregate(**aggregates)
    return [out[f"d{i}"] for i in range(len(days))]


def dashboard_stats(*, days: int = 14, domains: Iterable[str] | None = None) -> Dashboard:
    """Backlog per queue now and over the last `days`, decisions per day, and the auto-merge rate per day.

    Auto-merge rate: of the arriving records that the matcher put with an existing golden record or sent to a
    steward, the share it linked alone (a cross-reference created for a golden record that already had one,
    against review tasks opened). A constant number of queries, whatever the volume.
    """
    domains = list(domains if domains is not None else DOMAINS)
    today = timezone.localdate()
    day_list = [today - dt.timedelta(days=n) for n in range(days - 1, -1, -1)]
    tz = timezone.get_current_timezone()
    since = dt.datetime.combine(day_list[0], dt.time.min, tzinfo=tz)

    counts = review_queue_counts(domains=domains)
    review_backlog = {d: c["pending"] for d, c in counts.items()}
    exception_backlog = exception_queue_counts(domains=domains)

    tasks = ReviewTask.objects.filter(domain__in=domains).annotate(
        closed_at=Case(
            When(status__in=list(PENDING_REVIEW), then=Value(None)),
            default=Coalesce("decided_at", "updated_at"),
        )
    )
    review_trend = _backlog_trend(
        tasks.filter(Q(closed_at__isnull=True) | Q(closed_at__gte=since)), "closed_at", day_list
    )
    excs = DataException.objects.filter(Q(domain__in=domains) | Q(domain=""))
    exception_trend = _backlog_trend(
        excs.filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=since)), "resolved_at", day_list
    )

    decided = (
        ReviewTask.objects.filter(
            domain__in=domains, decided_at__gte=since, status__in=[ReviewStatus.MERGED, ReviewStatus.NOT_A_MATCH]
        )
        .annotate(day=TruncDate("decided_at"))
        .values("day", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_status: dict[str, list[tuple]] = defaultdict(list)
    for row in decided:
        by_status[row["status"]].append((row["day"], row["n"]))
    unmerges = (  # one "split_out" event on the record a source record leaves, per unmerge
        ChangeEvent.objects.filter(
            type=ChangeEventType.UNMERGED, occurred_at__gte=since, domain__in=domains, data__has_key="split_out"
        )
        .annotate(day=TruncDate("occurred_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("day", "n")
    )
    overrides = (
        FieldOverride.objects.filter(created_at__gte=since, domain__in=domains)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("day", "n")
    )
    handled = (
        DataException.history.filter(
            history_date__gte=since,
            history_channel="steward",
            status__in=[ExceptionStatus.RESOLVED, ExceptionStatus.IGNORED],
        )
        .filter(Q(domain__in=domains) | Q(domain=""))
        .annotate(day=TruncDate("history_date"))
        .values("day")
        .annotate(n=Count("id", distinct=True))
        .order_by()
        .values_list("day", "n")
    )
    decisions = {
        "merged": _per_day(by_status[ReviewStatus.MERGED], day_list),
        "not a match": _per_day(by_status[ReviewStatus.NOT_A_MATCH], day_list),
        "unmerged": _per_day(unmerges, day_list),
        "overrides": _per_day(overrides, day_list),
        "exceptions handled": _per_day(handled, day_list),
    }

    xref_history = CrossReference.history.model
    earlier = xref_history.objects.filter(
        history_type="+",
        domain=OuterRef("domain"),
        golden_id=OuterRef("golden_id"),
        history_id__lt=OuterRef("history_id"),
    )
    links = (
        xref_history.objects.filter(
            history_type="+", history_date__gte=since, source_record__isnull=False, domain__in=domains
        )
        .exclude(history_channel="steward")
        .filter(Exists(earlier))
        .annotate(day=TruncDate("history_date"))
        .values("day")
        .annotate(n=Count("history_id"))
        .order_by()
        .values_list("day", "n")
    )
    opened = (
        ReviewTask.objects.filter(created_at__gte=since, domain__in=domains)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("day", "n")
    )
    auto_links = _per_day(links, day_list)
    reviews_opened = _per_day(opened, day_list)
    rate = [(a / (a + r)) if a + r else None for a, r in zip(auto_links, reviews_opened, strict=True)]
    return Dashboard(
        days=day_list,
        review_backlog=review_backlog,
        exception_backlog=exception_backlog,
        review_trend=review_trend,
        exception_trend=exception_trend,
        decisions=decisions,
        auto_links=auto_links,
        reviews_opened=reviews_opened,
        auto_merge_rate=rate,
    )
