"""Source files: CSV and JSON Lines exports of a system, read as ingest envelopes and fed to the pipeline.

Shared by `manage.py ingest`, `manage.py load_demo` and the connectors' file drop.

A file is read twice, streaming both times (never loaded whole; at most a batch of it is held):

1. `source_file_check` validates its structure — the header, every line's JSON, `source_id`, `updated_at`,
   `deleted` — and returns every problem as `FILE:LINE: message`. A file with any structural problem is
   not ingested at all. Asked to (`keep`: `ingest --bulk`), it keeps the envelopes of the first batch it made.
2. `source_file_ingest` parses it again and hands the envelopes to `source_records_ingest` in batches of
   `settings.MDM_INGEST_BATCH_SIZE` (one transaction per batch; `MDM_BULK_BATCH_SIZE` for the bulk path,
   `MDM_PIPELINE_BATCH_SIZE` pipelined). A first batch the check kept is not parsed again (when the file is
   unchanged since, and every record of it gave its `updated_at`): the reading starts after it.

Record-level data problems (an invalid country, a missing required field) are not structural: the
pipeline keeps those records as data-quality exceptions, and the summary counts them.

CSV: columns `source_id`, optional `updated_at` and `deleted`, then canonical field names of the domain.
Other columns are ignored (reported once in `FileCheck.ignored`). An empty cell is sent as blank (the
system has no value). A list field (`skills`) is written `a;b;c`, rate-card `lines` as a JSON cell, and a
reference column holds the same system's source_id of the target.

JSON Lines: one REST ingest object per line, `{"source_id", "updated_at", "deleted", "attributes": {…}}`.
Attribute names that are not fields of the domain are ignored (and reported) like unknown CSV columns.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import stat
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from canonical.domains import DOMAINS, DomainSpec, get_domain
from canonical.models import SourceRecord, SourceStatus, System
from canonical.services.ingest import Envelope, EnvelopeError, IngestResult, envelope_parse, source_records_ingest

FORMATS = ("csv", "jsonl")
OUTCOMES = ("created", "linked", "updated", "unchanged", "stale", "deleted", "exception", "held")
ENVELOPE_COLUMNS = ("source_id", "updated_at", "deleted")
MAX_PROBLEMS = 20
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class SourceFileError(Exception):
    """The file cannot be ingested as it is; nothing was written. `problems` are ready to print."""

    def __init__(self, problems: list[str], total: int | None = None):
        self.problems = problems
        self.total = total if total is not None else len(problems)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        out = list(self.problems)
        if self.total > len(self.problems):
            out.append(f"… and {self.total - len(self.problems)} more problem(s)")
        return out


@dataclass(frozen=True)
class FileRecord:
    line: int
    envelope: Envelope
    dated: bool = True  # it gave its updated_at (else the envelope's is the time it was read)


@dataclass(frozen=True)
class FileProblem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


@dataclass
class FileCheck:
    path: str
    format: str
    domain: str
    records: int = 0
    ignored: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    # the envelopes of the first records (source_file_check's `keep`), in order: the ingest's first batch, without
    # reading them again (`source_file_ingest`); and the file as it was before the check read it (`_fingerprint`)
    head: list[Envelope] = field(default_factory=list, repr=False)
    fingerprint: tuple | None = None

    @property
    def ok(self) -> bool:
        return self.problem_count == 0


@dataclass
class FileIngestSummary:
    path: str
    system: str
    domain: str
    format: str
    records: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    ignored: list[str] = field(default_factory=list)
    exceptions: list[IngestResult] = field(default_factory=list)  # the first few exception/held results
    seconds: float = 0.0
    # records that came again unchanged and are still data-quality exceptions or held (a re-run's "exception 0"
    # does not mean they were resolved)
    still_open: int = 0

    def counts_line(self) -> str:
        return ", ".join(f"{outcome} {self.counts[outcome]}" for outcome in OUTCOMES)

    def exceptions_url(self) -> str:
        return (
            f"/admin/canonical/dataexception/?status__exact=open"
            f"&system__code__exact={self.system}&domain__exact={self.domain}"
        )


# --- format and opening ------------------------------------------------------------------------------------


def source_file_format(path: str | Path, fmt: str | None = None) -> str:
    """csv or jsonl: `fmt` if given, else from the extension (.csv, .jsonl, .ndjson, each optionally .gz)."""
    if fmt:
        if fmt not in FORMATS:
            raise SourceFileError([f"{path}: unknown format '{fmt}'; use one of {', '.join(FORMATS)}"])
        return fmt
    p = Path(path)
    suffix = Path(p.stem).suffix.lower() if p.suffix.lower() == ".gz" else p.suffix.lower()
    found = _EXTENSIONS.get(suffix)
    if found is None:
        raise SourceFileError(
            [
                f"{path}: cannot tell the format from the extension '{suffix or '(none)'}'; "
                "name it .csv, .jsonl or .ndjson, or pass --format csv|jsonl"
            ]
        )
    return found


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")  # noqa: SIM115 (closed by the caller's with)


def printable(name: str) -> str:
    """A name (a column, an attribute, a source id) as a message can print it: control and other unprintable
    characters escaped (ESC as \\x1b), so that it cannot move the cursor or colour the terminal; the rest as is."""
    if name.isprintable():
        return name
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


def _csv_error(exc: csv.Error, *, header: bool = False) -> str:
    """The csv module's message, or what to do where it speaks of its own API. `header`: the header row's."""
    text = str(exc)
    if "new-line character seen in unquoted field" in text:
        if header:  # the header is not one line: the lines end with a bare CR (classic Mac OS)
            return "lines end with a bare carriage return (CR); save the file with LF or CRLF line ends"
        # the rows before were read: a CR inside one value
        return "a carriage return (CR) inside an unquoted value; remove it, or quote the value"
    if "unexpected end of data" in text:  # strict mode, at the end of the file inside quotes
        return 'a quoted value that starts in this row is never closed (a missing "); close it, or write "" for a quote inside quotes'
    if "expected after" in text:  # strict mode: "a"b,
        return f'{text}: a quoted value ends before the cell does; write "" for a quote inside a quoted value'
    if "field larger than field limit" in text:
        return f"{text}: a value this long is usually a quote left open; check the quoting in this row"
    return text


class _Undecodable(Exception):
    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line = line
        self.reason = reason


def _text_lines(fh: IO[bytes]) -> Iterator[str]:
    """Decode line by line, so that a bad byte is reported on its own line (UTF-8; a leading BOM is dropped)."""
    for line, raw in enumerate(fh, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Undecodable(line, exc.reason) from None
        yield text.removeprefix("\ufeff") if line == 1 else text


# --- readers: yield FileRecord or FileProblem, one per record ------------------------------------------------


class _Reader:
    """Streams one file; `ignored` lists the column / attribute names that are not fields of the domain."""

    def __init__(self, path: Path, spec: DomainSpec, fmt: str, skip: int = 0):
        self.path = path
        self.spec = spec
        self.fmt = fmt
        self.ignored: dict[str, None] = {}
        # records passed over unread (their envelopes not made): the first `skip`, which the check pass kept
        self._skip = skip

    def problem(self, line: int | None, message: str) -> FileProblem:
        return FileProblem(str(self.path), line, message)

    def __iter__(self) -> Iterator[FileRecord | FileProblem]:
        try:
            mode = os.stat(self.path).st_mode
        except OSError:
            mode = None  # opening it says why
        if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            yield self.problem(
                None,
                "not a regular file (a pipe or a device): a file is read twice, checked first and then ingested; "
                "save it to a file and give that",
            )
            return
        try:
            fh = _open_binary(self.path)
        except OSError as exc:
            yield self.problem(None, f"cannot read the file: {exc.strerror or exc}")
            return
        with fh:
            lines = _text_lines(fh)
            rows = self._csv(lines) if self.fmt == "csv" else self._jsonl(lines)
            try:
                yield from rows
            except _Undecodable as exc:
                yield self.problem(exc.line, f"not UTF-8 text ({exc.reason}); save the file as UTF-8")
            except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:  # truncated or corrupt gzip, I/O error
                gz = self.path.suffix.lower() == ".gz"
                hint = " (is it a whole, uncorrupted gzip file? `gzip -t FILE` tests it)" if gz else ""
                yield self.problem(None, f"cannot read the file: {exc}{hint}")

    def _envelope(self, line: int, payload: dict) -> FileRecord | FileProblem:
        try:
            return FileRecord(
                line, envelope_parse(payload, spec=self.spec), payload.get("updated_at") not in (None, "")
            )
        except EnvelopeError as exc:
            text = "; ".join(f"{name}: {'; '.join(msgs)}" for name, msgs in exc.errors.items())
            return self.problem(line, text)

    def _csv(self, fh: Iterator[str]) -> Iterator[FileRecord | FileProblem]:
        reader = csv.reader(fh, strict=True)  # strict: a quote left open to the end of the file is an error, not
        # a value swallowing every row after it
        try:
            header = next(reader, None)
        except csv.Error as exc:
            yield self.problem(1, f"unreadable header row: {_csv_error(exc, header=True)}")
            return
        if header is None:
            yield self.problem(1, "the file is empty: expected a header row (source_id, then field names)")
            return
        header = [name.strip() for name in header]
        expected = f"expected source_id, optional updated_at and deleted, then {self.spec.name} fields: " + ", ".join(
            self.spec.field_names
        )
        duplicates = sorted({name for name in header if name and header.count(name) > 1})
        if duplicates:
            yield self.problem(1, f"column(s) named more than once: {', '.join(map(printable, duplicates))}")
            return
        if "source_id" not in header:
            yield self.problem(1, f"no source_id column; {expected}")
            return
        fields = [name for name in header if self.spec.get(name) is not None]
        if not fields:
            yield self.problem(
                1,
                f"none of the columns ({', '.join(map(printable, header))}) is a field of {self.spec.name}; {expected}",
            )
            return
        for i, name in enumerate(header):
            if name not in ENVELOPE_COLUMNS and self.spec.get(name) is None:
                self.ignored.setdefault(printable(name) or f"(unnamed column {i + 1})", None)
        columns = [(i, name) for i, name in enumerate(header) if name in ENVELOPE_COLUMNS or name in fields]
        width = len(header)
        end = 1
        while True:
            start = end + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                end = reader.line_num
                yield self.problem(start, f"unreadable CSV row: {_csv_error(exc)}")
                continue
            end = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != width:
                yield self.problem(
                    start, f"{len(row)} cells but the header has {width} columns (a stray comma or quote?)"
                )
                continue
            if self._skip:
                self._skip -= 1
                continue
            payload: dict[str, Any] = {"attributes": {}}
            for i, name in columns:
                cell = row[i]
                value = cell if cell.strip() else None
                if name in ENVELOPE_COLUMNS:
                    payload[name] = value
                else:
                    payload["attributes"][name] = value
            yield self._envelope(start, payload)

    def _jsonl(self, fh: Iterator[str]) -> Iterator[FileRecord | FileProblem]:
        anything = False
        for line, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text:
                continue
            anything = True
            if self._skip:
                self._skip -= 1
                continue
            try:
                payload = json.loads(text)
            except json.JSONDecodeError as exc:
                yield self.problem(line, f"invalid JSON: {exc.msg} at column {exc.colno}")
                continue
            except RecursionError:
                yield self.problem(line, "invalid JSON: nested too deeply")
                continue
            except ValueError:  # an integer of more digits than Python converts (4,300)
                yield self.problem(line, "invalid JSON: a number of more than 4,300 digits")
                continue
            if not isinstance(payload, dict):
                yield self.problem(
                    line, 'expected a JSON object {"source_id", "updated_at", "deleted", "attributes": {...}}'
                )
                continue
            attributes = payload.get("attributes")
            if isinstance(attributes, dict):
                unknown = [name for name in attributes if self.spec.get(name) is None]
                if unknown:
                    for name in unknown:
                        self.ignored.setdefault(printable(str(name)), None)
                    payload = {**payload, "attributes": {k: v for k, v in attributes.items() if k not in unknown}}
            yield self._envelope(line, payload)
        if not anything:  # as an empty CSV file is: most likely the wrong file, or an export that failed
            yield self.problem(
                1, 'the file is empty: expected one JSON object per line {"source_id", "attributes": {...}}'
            )


def _fingerprint(path: str | Path) -> tuple | None:
    """What tells a file changed (replaced, written to, appended to): its device, inode, size and modification time."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _spec(domain: str) -> DomainSpec:
    try:
        return get_domain(domain)
    except KeyError:
        raise SourceFileError([f"unknown domain '{domain}'; expected one of {', '.join(DOMAINS)}"]) from None


def source_file_read(*, path: str | Path, domain: str, fmt: str | None = None) -> _Reader:
    """Every record and every problem of a file, in order, without stopping at a problem (the file drop
    ingests the good lines and names the bad ones). Iterate it; then `.ignored` holds the unknown names."""
    return _Reader(Path(path), _spec(domain), source_file_format(path, fmt))


def source_file_records(
    *, path: str | Path, domain: str, fmt: str | None = None, skip: int = 0
) -> Iterator[FileRecord]:
    """Stream a file's envelopes; raise SourceFileError at the first structural problem. `skip`: pass over the first
    so many records (a check kept them) without making their envelopes."""
    reader = _Reader(Path(path), _spec(domain), source_file_format(path, fmt), skip=skip)
    for item in reader:
        if isinstance(item, FileProblem):
            raise SourceFileError([str(item)])
        yield item


# --- check, then ingest --------------------------------------------------------------------------------------


def source_file_check(
    *,
    path: str | Path,
    domain: str,
    fmt: str | None = None,
    max_problems: int = MAX_PROBLEMS,
    progress: Callable[[int], None] | None = None,
    keep: int = 0,
) -> FileCheck:
    """Validate a file's structure without writing anything: count its records, list its problems. `keep`: hold
    the first so many records' envelopes in `head` (the check has made them), for `source_file_ingest`."""
    spec = _spec(domain)
    fmt = source_file_format(path, fmt)
    reader = _Reader(Path(path), spec, fmt)
    check = FileCheck(path=str(path), format=fmt, domain=spec.name, fingerprint=_fingerprint(path) if keep else None)
    for item in reader:
        if isinstance(item, FileProblem):
            check.problem_count += 1
            if len(check.problems) < max_problems:
                check.problems.append(str(item))
        else:
            check.records += 1
            if len(check.head) < keep:
                if item.dated:
                    check.head.append(item.envelope)
                else:  # its updated_at is the time it is read: read it again when it is ingested, as before
                    keep = 0
                    check.head = []
            if progress is not None:
                progress(1)
    check.ignored = list(reader.ignored)
    return check


# Files from this many records on go through the pipelined bulk path (a second process is not worth its start
# for fewer).
_PIPELINE_FROM = 1000


def source_file_ingest(
    *,
    path: str | Path,
    system: str,
    domain: str,
    fmt: str | None = None,
    batch_size: int | None = None,
    check: FileCheck | None = None,
    progress: Callable[[int], None] | None = None,
    keep_exceptions: int = 20,
    bulk: bool = False,
    committed: Callable[[int], None] | None = None,
) -> FileIngestSummary:
    """Ingest a whole file through the pipeline, in batches. Runs inside the caller's audit context.

    Checks the file first (unless `check`, a passing result of `source_file_check`, is given): a file with
    any structural problem raises SourceFileError and nothing is written.
    `bulk` (opt-in, `ingest --bulk`): canonical.services.bulk writes new simple records in bulk; same results.
    `progress(n)`: n more records done; `committed(n)`: n more records committed (the pipelined `--bulk` tells
    progress as it applies records, in a transaction committed later).
    """
    if not System.objects.filter(code=system).exists():
        codes = ", ".join(System.objects.values_list("code", flat=True)) or "none"
        raise SourceFileError(
            [f"unknown system '{system}'; known systems: {codes} (add one in the admin under Systems)"]
        )
    spec = _spec(domain)
    fmt = source_file_format(path, fmt)
    if check is None:
        check = source_file_check(path=path, domain=spec.name, fmt=fmt)
    if not check.ok:
        raise SourceFileError(check.problems, check.problem_count)
    use_pipeline = False
    if bulk and check.records >= _PIPELINE_FROM:
        from canonical.services.pipeline import PipelinedIngest, pipeline_usable

        use_pipeline = pipeline_usable()  # PostgreSQL, outside a transaction: the matcher in a second process
    if use_pipeline:
        size = batch_size or settings.MDM_PIPELINE_BATCH_SIZE
    else:
        size = batch_size or (settings.MDM_BULK_BATCH_SIZE if bulk else settings.MDM_INGEST_BATCH_SIZE)
    summary = FileIngestSummary(path=str(path), system=system, domain=spec.name, format=fmt, ignored=check.ignored)
    started = time.perf_counter()
    # The first batch as the check pass made it, when it kept that many (`keep`) and the file has not changed
    # since it was checked: not read again, and the rest of the file read from after it (0.6 s of a 60,000-row CSV
    # file's reading is making envelopes, while the matcher waits). The check lets go of what it kept.
    first = min(size, check.records)
    batch: list[Envelope] = []
    if first and len(check.head) >= first and check.fingerprint is not None:
        if check.fingerprint == _fingerprint(path):
            batch = check.head
            del batch[first:]
    check.head = []
    pipelined = None
    if use_pipeline:  # its matcher, forked on entering, takes the first batch from the fork
        pipelined = PipelinedIngest(system=system, domain=spec.name, first=batch or None)
    ingest = source_records_ingest
    if bulk:  # the opt-in bulk path (same per-record results and end state)
        from canonical.services.bulk import source_records_ingest_bulk as ingest

    def flush() -> None:
        if pipelined is not None:  # it tells the progress bar as it goes (a batch is larger)
            results = pipelined.ingest(batch, progress=progress, committed=committed)
        else:
            results = ingest(system=system, domain=spec.name, envelopes=batch)
        for result in results:
            summary.counts[result.outcome] = summary.counts.get(result.outcome, 0) + 1
            if result.outcome in ("exception", "held") and len(summary.exceptions) < keep_exceptions:
                summary.exceptions.append(result)
        unchanged = [r.source_id for r in results if r.outcome == "unchanged"]
        if unchanged:
            summary.still_open += (
                SourceRecord.objects.filter(system_id=system, domain=spec.name, source_id__in=unchanged)
                .exclude(status__in=(SourceStatus.APPLIED, SourceStatus.DELETED))
                .count()
            )
        summary.records += len(results)
        if pipelined is None:  # the batch was one transaction, committed now
            if progress is not None:
                progress(len(results))
            if committed is not None:
                committed(len(results))
        batch.clear()

    try:
        if pipelined is not None:
            pipelined.__enter__()
        skip = len(batch)
        if batch and len(batch) >= size:
            flush()
        for record in source_file_records(path=path, domain=spec.name, fmt=fmt, skip=skip):
            batch.append(record.envelope)
            if len(batch) >= size:
                flush()
        if batch:
            flush()
    finally:
        if pipelined is not None:
            pipelined.close()
    summary.seconds = time.perf_counter() - started
    return summary
