"""`manage.py ingest --system S --domain D FILE`: load a system's CSV or JSON Lines export through the pipeline."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from canonical.audit import Channel, audit_context
from canonical.domains import DOMAINS
from canonical.models import System
from canonical.services.files import (
    FORMATS,
    FileCheck,
    FileIngestSummary,
    SourceFileError,
    printable,
    source_file_check,
    source_file_ingest,
)
from canonical.services.pipeline import PipelineError, pipeline_usable


def cli_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}"


def progress_bar(*, desc: str, total: int | None, disable: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="rec", file=sys.stderr, disable=disable, dynamic_ncols=True, leave=False)


def check_or_fail(*, path: Path, domain: str, fmt: str | None, no_progress: bool, keep: int = 0) -> FileCheck:
    """The structural pass: every problem as FILE:LINE: message, or a CommandError that writes nothing. `keep`: the
    envelopes of the first so many records kept for the ingest's first batch."""
    with progress_bar(desc=f"checking {path.name}", total=None, disable=no_progress) as bar:
        try:
            check = source_file_check(path=path, domain=domain, fmt=fmt, progress=bar.update, keep=keep)
        except SourceFileError as exc:
            raise CommandError("\n".join(exc.lines())) from None
    if not check.ok:
        lines = list(check.problems)
        if check.problem_count > len(check.problems):
            lines.append(f"… and {check.problem_count - len(check.problems)} more problem(s)")
        raise CommandError(
            f"{path}: {check.problem_count} structural problem(s); nothing was ingested. "
            "Fix the lines below and run the command again:\n" + "\n".join(lines)
        )
    return check


def summary_lines(summary: FileIngestSummary) -> list[str]:
    rate = summary.records / summary.seconds if summary.seconds else 0.0
    lines = [
        f"{summary.path} → {summary.system} {summary.domain}: {summary.records} record(s) in "
        f"{summary.seconds:.1f}s ({rate:.0f}/s)",
        f"  {summary.counts_line()}",
    ]
    problems = summary.counts["exception"] + summary.counts["held"]
    if problems:
        lines.append(
            f"  {summary.counts['exception']} data-quality exception(s) and {summary.counts['held']} record(s) held "
            f"for a reference not yet received; see the exception queue: {summary.exceptions_url()}"
        )
        for result in summary.exceptions[:5]:
            detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in result.errors.items()) or result.message
            lines.append(f"    {printable(result.source_id)}: {result.outcome}: {printable(detail)}")
        if problems > 5:
            lines.append(f"    … {problems - 5} more in the queue")
    if summary.still_open:
        lines.append(
            f"  {summary.still_open} record(s) came again unchanged and are still data-quality exceptions or held; "
            f"see the exception queue: {summary.exceptions_url()}"
        )
    return lines


class Command(BaseCommand):
    help = (
        "Ingest a system's export (CSV or JSON Lines) of one domain through the pipeline. The file is checked "
        "first; a structural problem (bad JSON, missing source_id, bad header, …) stops the command before "
        "anything is written."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV (.csv) or JSON Lines (.jsonl, .ndjson); .gz is read too")
        parser.add_argument("--system", required=True, help="the system that exported the file (crm, erp, …)")
        parser.add_argument("--domain", required=True, help=f"one of {', '.join(DOMAINS)}")
        parser.add_argument("--format", choices=FORMATS, help="override the format the extension implies")
        parser.add_argument(
            "--batch-size",
            type=int,
            help="records per transaction (MDM_INGEST_BATCH_SIZE; with --bulk, MDM_BULK_BATCH_SIZE)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
        parser.add_argument(  # opt-in: canonical/services/bulk.py (same results and end state, written in bulk)
            "--bulk", action="store_true", help="write new simple records in bulk (same results, faster)"
        )

    def handle(self, *args, **options):
        if not options["file"].strip():
            raise CommandError("the file path is empty; give the CSV or JSON Lines file to ingest")
        path = Path(options["file"])
        system, domain = options["system"], options["domain"]
        if domain not in DOMAINS:
            raise CommandError(f"unknown domain '{domain}'; expected one of {', '.join(DOMAINS)}")
        if not System.objects.filter(code=system).exists():
            codes = ", ".join(System.objects.values_list("code", flat=True)) or "none"
            raise CommandError(f"unknown system '{system}'; known systems: {codes} (add one in the admin)")
        if options["batch_size"] is not None and options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        no_progress = options["no_progress"]
        # with --bulk, the first batch as the check makes it (a pipelined batch is 50,000 records by default)
        keep = 0
        if options["bulk"]:
            keep = options["batch_size"] or (
                settings.MDM_PIPELINE_BATCH_SIZE if pipeline_usable() else settings.MDM_BULK_BATCH_SIZE
            )
        check = check_or_fail(path=path, domain=domain, fmt=options["format"], no_progress=no_progress, keep=keep)
        if check.ignored:
            self.stderr.write(
                self.style.WARNING(
                    f"{path}: ignoring column(s) that are not {domain} fields: {', '.join(check.ignored)}"
                )
            )
        # a file name may hold bytes that are not text (kept by Python as surrogates, which no database stores)
        shown = os.fsencode(path.name).decode("utf-8", "backslashreplace")
        with audit_context(actor=cli_actor(), channel=Channel.JOB, reason=f"ingest {shown}"):
            with progress_bar(desc=f"ingesting {shown}", total=check.records, disable=no_progress) as bar:
                done = [0]  # records committed

                def committed(n: int) -> None:
                    done[0] += n

                try:
                    summary = source_file_ingest(
                        path=path,
                        system=system,
                        domain=domain,
                        fmt=check.format,
                        batch_size=options["batch_size"],
                        check=check,
                        progress=bar.update,
                        committed=committed,
                        bulk=options["bulk"],
                    )
                except SourceFileError as exc:
                    raise CommandError(
                        "\n".join(exc.lines()) + "\nThe file changed while it was being read; "
                        "the batches before this line were ingested. Run the command again."
                    ) from None
                except PipelineError as exc:
                    raise CommandError(
                        f"{exc}\nThe batches before the one in progress were committed (about {done[0]} of "
                        f"{check.records} records)."
                    ) from None
                except KeyboardInterrupt:
                    # the batch in progress was rolled back; the ones before it were committed
                    raise CommandError(
                        f"interrupted: the batches before the one in progress were committed (about {done[0]} "
                        f"of {check.records} records); the rest were not ingested. Run the command again: records "
                        "already ingested come back unchanged."
                    ) from None
        for line in summary_lines(summary):
            self.stdout.write(line)
