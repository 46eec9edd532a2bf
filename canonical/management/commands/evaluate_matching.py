"""python manage.py evaluate_matching --domain DOMAIN FILE.csv

Ingests a labelled CSV (source_id, cluster, optional system, canonical field names) through the hub's real
pipeline and prints, as its last line, one JSON object with pairwise precision / recall / F1 over the records
the hub put in the same golden record without a steward, the pairs it sent to stewards (review_tasks), and
B-cubed precision / recall / F1 as a cluster metric.

The evaluation runs in one transaction on the configured database: the domain is cleared first (so earlier
data cannot join the clusters), the file is ingested, the result measured, and everything is rolled back, so
the database is left exactly as it was. Progress goes to standard error.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import IO

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from canonical.audit import Channel, audit_context
from canonical.domains import DOMAINS, DomainSpec, get_domain


class _Rollback(Exception):
    pass


def pair_count(sizes) -> int:
    return sum(n * (n - 1) // 2 for n in sizes)


def evaluate_clusters(truth: dict[str, str], predicted: dict[str, str]) -> dict[str, float | int]:
    """Pairwise and B-cubed precision / recall / F1 of `predicted` (record → cluster) against `truth`."""
    records = list(truth)
    by_truth: dict[str, set[str]] = defaultdict(set)
    by_pred: dict[str, set[str]] = defaultdict(set)
    for r in records:
        by_truth[truth[r]].add(r)
        by_pred[predicted[r]].add(r)
    joint: dict[tuple[str, str], int] = defaultdict(int)
    for r in records:
        joint[(truth[r], predicted[r])] += 1
    true_pairs = pair_count(len(s) for s in by_truth.values())
    predicted_pairs = pair_count(len(s) for s in by_pred.values())
    correct = pair_count(joint.values())
    precision = correct / predicted_pairs if predicted_pairs else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    b_p = b_r = 0.0
    for r in records:
        overlap = joint[(truth[r], predicted[r])]
        b_p += overlap / len(by_pred[predicted[r]])
        b_r += overlap / len(by_truth[truth[r]])
    n = len(records) or 1
    b_p, b_r = b_p / n, b_r / n
    b_f1 = 2 * b_p * b_r / (b_p + b_r) if b_p + b_r else 0.0
    return {
        "true_pairs": true_pairs,
        "predicted_pairs": predicted_pairs,
        "correct_pairs": correct,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "bcubed_precision": round(b_p, 4),
        "bcubed_recall": round(b_r, 4),
        "bcubed_f1": round(b_f1, 4),
    }


def read_labelled(path: Path, domain: str) -> list[dict]:
    """Rows as {"source_id", "cluster", "system", "attributes"}; a CommandError naming the line on bad input.

    Every row is checked here, before the evaluation starts, as `manage.py ingest` checks a file: its
    structure, NUL characters, the system code, and what the pipeline's envelope_parse would refuse. A file
    with a bad row is not evaluated at all. Lines are the file's physical lines (blank lines and the lines
    inside quoted values count); a row is named by its first line."""
    spec = get_domain(domain)
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}. Give the path of a labelled CSV file.") from None
    with fh:
        try:
            rows = _labelled_rows(fh, path, spec)
        except UnicodeDecodeError as exc:
            line, reason = _undecodable_line(path) or (None, exc.reason)
            where = f"{path}: line {line}" if line else str(path)
            raise CommandError(f"{where}: not UTF-8 text ({reason}); save the file as UTF-8 CSV") from None
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not rows:
        raise CommandError(f"{path}: no records")
    return rows


def _labelled_rows(fh: IO[str], path: Path, spec: DomainSpec) -> list[dict]:
    from django.core.exceptions import ValidationError

    from canonical.models import System
    from canonical.services.ingest import EnvelopeError, envelope_parse

    domain = spec.name
    reader = csv.reader(fh, strict=True)  # strict: a quote left open to the end of the file is an error

    def refuse(line: int, message: str) -> CommandError:
        return CommandError(f"{path}: line {line}: {message}")

    try:
        header = next(reader, None) or []
    except csv.Error as exc:
        raise refuse(1, f"unreadable header row ({exc}); the first line names the columns") from None
    header = [name.strip() for name in header]
    if any("\x00" in name for name in header):
        raise refuse(1, "a NUL character (\\x00) in the header row; remove it and save the file again")
    duplicates = sorted({name for name in header if name and header.count(name) > 1})
    if duplicates:
        raise refuse(1, f"column(s) named more than once: {', '.join(duplicates)}; name each column once")
    missing = [c for c in ("source_id", "cluster") if c not in header]
    if missing:
        raise refuse(
            1,
            f"missing column(s) {', '.join(missing)}; a labelled CSV has source_id, cluster, "
            f"optional system, then {domain} fields ({', '.join(spec.field_names)})",
        )
    labels = ("source_id", "cluster", "system")
    ignored = [
        name or f"(unnamed column {i + 1})"
        for i, name in enumerate(header)
        if name not in labels and spec.get(name) is None
    ]
    if ignored:
        print(f"warning: ignoring column(s) that are not {domain} fields: {', '.join(ignored)}", file=sys.stderr)
    column = {name: i for i, name in enumerate(header) if name}
    fields = [(i, name) for i, name in enumerate(header) if name not in labels and spec.get(name) is not None]
    code_field = System._meta.get_field("code")
    width = len(header)
    rows, seen = [], set()
    end = 1
    while True:
        start = end + 1  # the row's first line (its last is reader.line_num)
        try:
            cells = next(reader)
        except StopIteration:
            return rows
        except csv.Error as exc:
            if str(exc) == "unexpected end of data":
                raise refuse(
                    start,
                    "a quoted value in this row is never closed, so the rest of the file is read into it; "
                    'close the quote (or double a quote inside a value: "")',
                ) from None
            if str(exc).startswith("field larger than field limit"):
                raise refuse(
                    start, f"a value longer than {csv.field_size_limit():,} characters (an unclosed quote?)"
                ) from None
            raise refuse(start, f"not valid CSV ({exc}); check this row for a stray or unclosed quote") from None
        end = reader.line_num
        if not cells or all(not cell.strip() for cell in cells):
            continue
        if len(cells) != width:
            raise refuse(
                start,
                f"{len(cells)} cells but the header has {width} columns (a stray comma or quote?); "
                "give every row one cell per column",
            )
        nul = next((i for i, cell in enumerate(cells) if "\x00" in cell), None)
        if nul is not None:
            name = header[nul] or f"unnamed column {nul + 1}"
            raise refuse(start, f"a NUL character (\\x00) in {name}; remove it and save the file again")
        source_id = cells[column["source_id"]].strip()
        cluster = cells[column["cluster"]].strip()
        system = (cells[column["system"]].strip() if "system" in column else "") or "eval"
        if not source_id or not cluster:
            raise refuse(start, "source_id and cluster must not be empty")
        try:
            code_field.run_validators(system)  # as a System's code: its length and characters
        except ValidationError as exc:
            raise refuse(
                start,
                f"system {_shown(system)} is not a system code ({' '.join(exc.messages)}); write a code such as "
                "crm or erp_eu, or leave the cell empty for 'eval'",
            ) from None
        if (system, source_id) in seen:
            raise refuse(start, f"duplicate source_id {source_id!r} for system {system!r}")
        seen.add((system, source_id))
        attributes = {name: cells[i] for i, name in fields if cells[i] != ""}
        try:
            envelope_parse({"source_id": source_id, "attributes": attributes}, spec=spec, allow_unknown=True)
        except EnvelopeError as exc:
            text = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in exc.errors.items())
            raise refuse(start, f"{text}; fix the row and run the command again") from None
        rows.append({"source_id": source_id, "cluster": cluster, "system": system, "attributes": attributes})


def _shown(value: str, limit: int = 40) -> str:
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}… ({len(value)} characters)"


def _undecodable_line(path: Path) -> tuple[int, str] | None:
    """The first line with bytes that are not UTF-8, and why. The text reader decodes a block at a time, so its
    error does not say which line; lines are split here as the csv reader counts them (at CR, LF or CRLF)."""
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return number, exc.reason
    return None


def domain_clear(domain: str) -> int:
    """Remove a domain's records (inside the evaluation's transaction, which is rolled back). Returns goldens removed."""
    from canonical.models import ChangeEvent, CrossReference, DataException, MatchKey, PendingReference, SourceRecord

    model = get_domain(domain).model
    MatchKey.objects.filter(domain=domain)._raw_delete(MatchKey.objects.db)
    PendingReference.objects.filter(source_record__domain=domain).delete()
    DataException.objects.filter(domain=domain)._raw_delete(DataException.objects.db)
    CrossReference.objects.filter(domain=domain)._raw_delete(CrossReference.objects.db)
    ChangeEvent.objects.filter(domain=domain)._raw_delete(ChangeEvent.objects.db)
    try:
        from stewardship.models import ReviewTask  # the stewardship app's queue, where it exists

        ReviewTask.objects.filter(domain=domain)._raw_delete(ReviewTask.objects.db)
    except (ImportError, LookupError, Exception):  # noqa: BLE001 - optional app, optional field
        pass
    SourceRecord.objects.filter(domain=domain)._raw_delete(SourceRecord.objects.db)
    count = model.objects.count()
    model.objects.all()._raw_delete(model.objects.db)
    return count


class ReviewPairs:
    """A `match_decided` receiver counting the pairs sent to stewards in `domain`: for each record the matcher sent
    to review, its candidates at or above the review threshold (at least one)."""

    def __init__(self, domain: str):
        from canonical.matching.definitions import get_definition

        self.domain = domain
        self.threshold = get_definition(domain).review_probability
        self.pairs = 0

    def __call__(self, sender, domain: str, values, outcome, **kwargs) -> None:
        if domain == self.domain and outcome.decision == "review":
            self.pairs += max(1, sum(1 for c in outcome.candidates if c.score >= self.threshold))


def evaluate(
    domain: str,
    rows: list[dict],
    *,
    batch_size: int = 200,
    progress: bool = True,
    reprocess_incomplete: bool = False,
    bulk: bool = False,
    per_system: bool = False,
) -> dict:
    """Ingest labelled rows through the pipeline (in a rolled-back transaction) and measure the clusters.
    `bulk`: through the opt-in bulk path (canonical/services/bulk.py), which leaves the same state.
    `per_system`: each system's rows as one export (systems in order of first appearance, file order within
    each), as the CLI ingests one file per system, instead of the file's interleaved order."""
    from canonical.matching.fuzzy import population_private
    from canonical.matching.signals import match_decided
    from canonical.models import SourceRecord, SourceStatus, System
    from canonical.services.ingest import envelope_parse, match_lock, source_record_reprocess, source_records_ingest

    if bulk:
        from canonical.services.bulk import source_records_ingest_bulk as source_records_ingest

    spec = get_domain(domain)
    count_reviews = ReviewPairs(domain)

    result: dict = {}
    started = time.perf_counter()
    match_decided.connect(count_reviews, dispatch_uid="evaluate_matching")
    try:
        # the run's population is its own (the hub's processes do not count its records, nor it theirs)
        with (
            population_private(domain),
            audit_context(
                actor="evaluate_matching", channel=Channel.JOB, reason=f"match-quality evaluation of {domain}"
            ),
        ):
            with transaction.atomic():
                match_lock(domain)  # before the domain's rows are cleared (the ingests take it again, held)
                cleared = domain_clear(domain)
                if cleared:
                    print(f"cleared {cleared} {domain} golden records for the run (rolled back after)", file=sys.stderr)
                for code in sorted({r["system"] for r in rows}):
                    System.objects.get_or_create(code=code, defaults={"name": code, "kind": "evaluation"})
                by_system: dict[str, list[dict]] = defaultdict(list)
                bar = tqdm(total=len(rows), desc=f"ingest {domain}", unit="rec", file=sys.stderr, disable=not progress)
                # in file order (or each system's rows together), one batch per run of the same system
                ordered = rows
                if per_system:
                    grouped: dict[str, list[dict]] = {}
                    for row in rows:
                        grouped.setdefault(row["system"], []).append(row)
                    ordered = [row for group in grouped.values() for row in group]
                batch: list[dict] = []
                done, analyze_at = 0, _ANALYZE_FROM
                for row in ordered:
                    if batch and (row["system"] != batch[0]["system"] or len(batch) >= batch_size):
                        _ingest(batch, domain, spec, envelope_parse, source_records_ingest)
                        bar.update(len(batch))
                        done += len(batch)
                        if done >= analyze_at:
                            _analyze(spec)
                            analyze_at = 2 * done
                        batch = []
                    batch.append(row)
                    by_system[row["system"]].append(row)
                if batch:
                    _ingest(batch, domain, spec, envelope_parse, source_records_ingest)
                    bar.update(len(batch))
                bar.close()
                retried = 0
                if reprocess_incomplete:
                    # what an operator's batch re-match does: a record held for lack of a required value (it
                    # came before any record it could join) runs through the pipeline again, once
                    for sr in SourceRecord.objects.filter(domain=domain, status=SourceStatus.INCOMPLETE).order_by("pk"):
                        source_record_reprocess(sr)
                        retried += 1
                golden_of = {
                    (s, sid): str(g) if g else None
                    for s, sid, g in SourceRecord.objects.filter(domain=domain).values_list(
                        "system_id", "source_id", "golden_id"
                    )
                }
                truth, predicted = {}, {}
                for row in rows:
                    key = f"{row['system']}:{row['source_id']}"
                    truth[key] = row["cluster"]
                    predicted[key] = golden_of.get((row["system"], row["source_id"])) or f"unmatched:{key}"
                result = evaluate_clusters(truth, predicted)
                result["not_in_a_golden_record"] = sum(1 for v in predicted.values() if v.startswith("unmatched:"))
                result["reprocessed_incomplete"] = retried
                raise _Rollback
    except _Rollback:
        pass
    finally:
        match_decided.disconnect(dispatch_uid="evaluate_matching")
    seconds = round(time.perf_counter() - started, 2)
    return {
        "domain": domain,
        "records": len(rows),
        "true_pairs": result["true_pairs"],
        "predicted_pairs": result["predicted_pairs"],
        "precision": result["precision"],
        "recall": result["recall"],
        "f1": result["f1"],
        "review_tasks": count_reviews.pairs,
        "seconds": seconds,
        "path": "bulk" if bulk else "record by record",
        "bcubed_precision": result["bcubed_precision"],
        "bcubed_recall": result["bcubed_recall"],
        "bcubed_f1": result["bcubed_f1"],
        "not_in_a_golden_record": result["not_in_a_golden_record"],
        **({"reprocessed_incomplete": result["reprocessed_incomplete"]} if reprocess_incomplete else {}),
    }


_ANALYZE_FROM = 1_000


def _analyze(spec) -> None:
    """Planner statistics for the tables matching reads, as the hub grows (at 1,000 records, then each time it
    has doubled). The evaluation runs in one transaction that is rolled back, so autovacuum — which keeps them
    up to date in a running hub — never sees its rows; ANALYZE inside the transaction counts them."""
    from django.db import connection

    from canonical.models import CrossReference, MatchKey, SourceRecord

    if connection.vendor != "postgresql":
        return
    tables = [m._meta.db_table for m in (SourceRecord, MatchKey, CrossReference, spec.model)]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(t) for t in tables))


def _ingest(batch, domain, spec, envelope_parse, source_records_ingest) -> None:
    envelopes = [
        envelope_parse({"source_id": r["source_id"], "attributes": r["attributes"]}, spec=spec, allow_unknown=True)
        for r in batch
    ]
    source_records_ingest(system=batch[0]["system"], domain=domain, envelopes=envelopes)


class Command(BaseCommand):
    help = "Measure match quality on a labelled CSV: pairwise precision/recall/F1, B-cubed, review pairs."

    def add_arguments(self, parser):
        parser.add_argument("--domain", required=True, help=f"one of {', '.join(DOMAINS)}")
        parser.add_argument("file", help="labelled CSV: source_id, cluster, optional system, canonical fields")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar on standard error")
        parser.add_argument(
            "--retry-held",
            action="store_true",
            help="after the load, run records held as incomplete through the pipeline once more (as a batch re-match would)",
        )
        parser.add_argument(
            "--bulk",
            action="store_true",
            help="ingest through the opt-in bulk path (ingest --bulk), which leaves the same state, faster",
        )
        parser.add_argument(
            "--per-system",
            action="store_true",
            help="ingest each system's rows together, as one export per system (default: the file's order)",
        )
        parser.add_argument(
            "--batch-size", type=int, default=200, help="records per ingest call (default 200; 1 to 10,000)"
        )

    def handle(self, *args, **options):
        domain = options["domain"]
        if domain not in DOMAINS:
            raise CommandError(f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}")
        if not 1 <= options["batch_size"] <= 10_000:
            raise CommandError(f"--batch-size must be between 1 and 10,000 (got {options['batch_size']})")
        rows = read_labelled(Path(options["file"]), domain)
        data = evaluate(
            domain,
            rows,
            progress=not options["no_progress"],
            reprocess_incomplete=options["retry_held"],
            bulk=options["bulk"],
            per_system=options["per_system"],
            batch_size=options["batch_size"],
        )
        self.stdout.write(json.dumps(data))
