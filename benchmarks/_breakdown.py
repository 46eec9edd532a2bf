"""Where a benchmark's time goes, measured in the run itself (`dedup_100k.py --breakdown`).

`breakdown()` is a context manager; inside it, on the default connection of this thread:

- every statement (Django's execute wrapper) and every bulk COPY (canonical.services.bulk's `_copy`) is timed:
  its wall time, and its wait, the wall time minus this thread's CPU time meanwhile (the time PostgreSQL, or the
  network, or the scheduler on a busy machine, kept the client waiting), grouped by `statement_label` (COPY by
  table);
- the matcher's feature memo (canonical.matching.fuzzy `prepared_cache`) counts its look-ups by tier: found as
  they are, found packed (unpacked), or prepared;
- the cyclic garbage collector's runs are counted and timed per generation (gc.callbacks).

On exit the report dict it yielded is filled in; `report_lines()` renders it. Instrumentation costs a little
CPU itself (a digest per memo look-up outside the first tier), so a run with it is not the run to time.
"""

from __future__ import annotations

import gc
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock


def statement_label(sql: str) -> str:
    """A statement's group: its text with whitespace collapsed, savepoint names and the placeholder lists of `IN
    (…)` made alike, so one statement's runs add up (a COPY is labelled by its caller)."""
    text = re.sub(r"\s+", " ", sql).strip()
    text = re.sub(r'"s\d+_x\d+"', '"s…"', text)  # Django's savepoint names
    return re.sub(r"%s(?:, %s)+", "%s, …", text)


@contextmanager
def breakdown() -> Iterator[dict[str, Any]]:
    from django.db import connection

    from canonical.matching import fuzzy
    from canonical.services import bulk

    statements: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # label -> count, wall, wait

    def timed(label: str, call):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return call()
        finally:
            row = statements[label]
            spent = time.perf_counter() - wall
            row[0] += 1
            row[1] += spent
            row[2] += max(0.0, spent - (time.thread_time() - cpu))

    def wrapper(execute, sql, params, many, context):
        return timed(statement_label(sql), lambda: execute(sql, params, many, context))

    original_copy = bulk._copy

    def copy(table, columns, rows):
        return timed(f"COPY {table}", lambda: original_copy(table, columns, rows))

    memo = {"first_tier": 0, "packed": 0, "prepared": 0}
    cache = fuzzy.prepared_cache
    original_memo = cache._memo

    def counted(key, make):  # (reads the tiers without the memo's lock: the benchmark matches in one thread)
        if key in cache.entries:
            memo["first_tier"] += 1
        elif cache.packed and cache._digest(key) in cache.packed:
            memo["packed"] += 1
        else:
            memo["prepared"] += 1
        return original_memo(key, make)

    collections: dict[int, list[float]] = {g: [0, 0.0] for g in range(3)}
    started: list[float] = []

    def collected(phase, info):
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            row = collections[info["generation"]]
            row[0] += 1
            row[1] += time.perf_counter() - started[0]

    report: dict[str, Any] = {}
    gc.callbacks.append(collected)
    try:
        with ExitStack() as patches:  # each put back as it was found, also when nested
            patches.enter_context(mock.patch.object(bulk, "_copy", copy))
            patches.enter_context(mock.patch.object(cache, "_memo", counted))
            patches.enter_context(connection.execute_wrapper(wrapper))
            yield report
    finally:
        gc.callbacks.remove(collected)
        report["statements"] = sorted(
            (
                {"label": label, "count": int(n), "wall_s": round(wall, 2), "wait_s": round(wait, 2)}
                for label, (n, wall, wait) in statements.items()
            ),
            key=lambda row: -row["wait_s"],
        )
        report["wait_s"] = round(sum(row[2] for row in statements.values()), 1)
        report["db_wall_s"] = round(sum(row[1] for row in statements.values()), 1)
        report["feature_memo"] = memo
        report["gc"] = {str(g): {"runs": int(n), "seconds": round(s, 1)} for g, (n, s) in collections.items()}


def report_lines(report: dict[str, Any], top: int = 15) -> list[str]:
    lines = [
        f"waiting for the database: {report['wait_s']} s (statements and COPY took {report['db_wall_s']} s in all)",
        "   count   wall s   wait s  statement",
    ]
    for row in report["statements"][:top]:
        lines.append(f"{row['count']:8d} {row['wall_s']:8.2f} {row['wait_s']:8.2f}  {row['label'][:100]}")
    memo = report["feature_memo"]
    lines.append(
        f"feature memo look-ups: {memo['first_tier']} as they are, {memo['packed']} unpacked, {memo['prepared']} prepared"
    )
    lines.append(
        "garbage collector: "
        + ", ".join(f"generation {g}: {v['runs']} runs, {v['seconds']} s" for g, v in report["gc"].items())
    )
    return lines
