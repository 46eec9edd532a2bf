"""`python manage.py match --domain D [--partitions M | --partition N/M] [--resume]`: batch re-match.

Run after a change to the match rules. First the match keys of every source record are rebuilt with the
configured matcher, then golden records are re-matched partition by partition (by blocking key) as Celery
tasks: more workers finish sooner. Above the auto-merge threshold records are merged (actor job:match);
in the review zone a review task is opened; a steward's not-a-match is never proposed again.

`--partition N/M` runs only partition N (1-based) of M in this process, for spreading a run by hand;
`--resume` continues the last unfinished run of the domain, skipping its finished partitions.

With a broker, the command first asks the workers which queues they consume: when none consumes the
partitions' queue (none answers within `--worker-timeout` seconds) it stops before changing anything and
says how to start one. While it waits, it asks again after WORKER_CHECK_SECONDS without a finished
partition, and stops waiting (the partitions stay queued; `--resume` follows the run) when none answers.
"""

from __future__ import annotations

import re
import time

from django.core.management.base import BaseCommand, CommandError
from kombu.exceptions import OperationalError
from tqdm import tqdm

from canonical.domains import DOMAINS
from stewardship.models import KeysState, MatchRun
from stewardship.services.rematch import (
    KEY_BATCH,
    match_key_source_ids,
    match_keys_claim,
    match_keys_done,
    match_keys_rebuild,
    match_run_resumable,
    match_run_start,
)
from stewardship.tasks import match_partition_task

_PARTITION = re.compile(r"^(\d+)/(\d+)$")
POLL_SECONDS = 1.0
WORKER_TIMEOUT = 3.0  # default --worker-timeout: how long the workers have to answer
WORKER_CHECK_SECONDS = 60.0  # while waiting, ask the workers again after this long without a finished partition
WORKER_COMMAND = ".venv/bin/celery -A mdm worker -l info --concurrency 2"  # as README.md starts one


class Command(BaseCommand):
    help = "Re-match a domain after a rule change: rebuild match keys, auto-merge or open review tasks."

    def add_arguments(self, parser):
        parser.add_argument("--domain", required=True, help=f"one of {', '.join(DOMAINS)}")
        parser.add_argument("--partitions", type=int, default=None, help="number of partitions (default 8)")
        parser.add_argument("--partition", default=None, help="run only partition N of M here, e.g. 2/8")
        parser.add_argument("--resume", action="store_true", help="continue the last unfinished run of the domain")
        parser.add_argument(
            "--worker-timeout",
            type=float,
            default=WORKER_TIMEOUT,
            help=f"seconds the Celery workers have to answer before the command says none is running "
            f"(default {WORKER_TIMEOUT:g}; with a broker only)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")

    def handle(
        self,
        *args,
        domain: str,
        partitions: int | None,
        partition: str | None,
        resume: bool,
        worker_timeout: float,
        **options,
    ):
        self._quiet = bool(options.get("no_progress"))
        if domain not in DOMAINS:
            raise CommandError(f"unknown domain {domain!r}; use one of {', '.join(DOMAINS)}")
        only = None
        if partition is not None:
            m = _PARTITION.match(partition.strip())
            if not m or not (1 <= int(m.group(1)) <= int(m.group(2))):
                raise CommandError(f"--partition {partition!r}: write N/M with 1 <= N <= M, e.g. --partition 2/8")
            only, count = int(m.group(1)) - 1, int(m.group(2))
            if partitions is not None and partitions != count:
                raise CommandError(f"--partitions {partitions} disagrees with --partition {partition}; drop one")
            partitions = count
        if partitions is not None and not (1 <= partitions <= 10000):
            raise CommandError("--partitions must be between 1 and 10000")
        if not (0.1 <= worker_timeout <= 600):
            raise CommandError(f"--worker-timeout must be between 0.1 and 600 seconds (got {worker_timeout:g})")
        if not match_partition_task.app.conf.task_always_eager:
            self._workers_ready(domain, worker_timeout)  # before anything changes

        run = self._run(domain, partitions, resume=resume or only is not None)
        self.stdout.write(f"match run #{run.pk} for {domain}: {run.partitions} partition(s)")
        self._keys(run)
        if only is not None:
            todo = [only] if only in run.remaining_partitions else []
        else:
            todo = run.remaining_partitions
        if not todo:
            self.stdout.write("nothing left to do in this run")
        self._partitions(run, todo, worker_timeout=worker_timeout)
        run.refresh_from_db()
        counts = ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items())) or "nothing examined"
        state = "finished" if run.status == "finished" else f"{len(run.finished_partitions)}/{run.partitions} done"
        self.stdout.write(self.style.SUCCESS(f"match run #{run.pk} {state}: {counts}"))

    def _run(self, domain: str, partitions: int | None, *, resume: bool) -> MatchRun:
        if resume:
            run = match_run_resumable(domain=domain)
            if run is not None:
                if partitions is not None and run.partitions != partitions:
                    raise CommandError(
                        f"run #{run.pk} of {domain} has {run.partitions} partitions, not {partitions}: "
                        f"resume it with --partitions {run.partitions} (or omit --resume to start a new run)"
                    )
                return run
        return match_run_start(domain=domain, partitions=partitions or 8)

    def _keys(self, run: MatchRun) -> None:
        if not match_keys_claim(run_id=run.pk):
            while MatchRun.objects.get(pk=run.pk).keys_state != KeysState.DONE:
                self.stdout.write("waiting for another process to finish rebuilding the match keys…")
                time.sleep(POLL_SECONDS)
            return
        ids = match_key_source_ids(domain=run.domain)
        with tqdm(total=len(ids), desc="match keys", unit="rec", file=self.stderr, disable=self._quiet) as bar:
            for i in range(0, len(ids), KEY_BATCH):
                batch = ids[i : i + KEY_BATCH]
                match_keys_rebuild(domain=run.domain, source_record_ids=batch)
                bar.update(len(batch))
        match_keys_done(run_id=run.pk)

    def _partitions(self, run: MatchRun, todo: list[int], *, worker_timeout: float) -> None:
        if not todo:
            return
        eager = bool(match_partition_task.app.conf.task_always_eager)  # no broker: tasks run here, in order
        with tqdm(
            total=len(todo), desc=f"match {run.domain}", unit="partition", file=self.stderr, disable=self._quiet
        ) as bar:
            for p in todo:
                match_partition_task.delay(run.pk, p)
                if eager:
                    bar.update(1)
            if eager:
                return
            self.stdout.write("partitions queued; waiting for the workers (Ctrl-C is safe: --resume continues)")
            self._wait(run, todo, bar=bar, worker_timeout=worker_timeout)

    def _wait(self, run: MatchRun, todo: list[int], *, bar: tqdm, worker_timeout: float) -> None:
        """Until the workers have finished `todo`; a CommandError when none consumes the queue any more."""
        done, quiet_since = 0, time.monotonic()
        while done < len(todo):
            finished = set(MatchRun.objects.get(pk=run.pk).finished_partitions)
            now = len([p for p in todo if p in finished])
            if now > done:
                quiet_since = time.monotonic()
            bar.update(now - done)
            done = now
            if done == len(todo):
                return
            quiet = time.monotonic() - quiet_since
            if quiet >= WORKER_CHECK_SECONDS:
                queue, consumers = _queue_consumers(worker_timeout)
                if not consumers:
                    raise CommandError(
                        f"no Celery worker is consuming the '{queue}' queue any more (none that does answered "
                        f"within {worker_timeout:g} s, and no partition finished for {quiet:.0f} s): stopped waiting. "
                        f"{len(todo) - done} partition(s) of run #{run.pk} stay queued and run when a worker "
                        f"starts: start one, e.g. `{WORKER_COMMAND}` (see README.md), then follow the run with "
                        f"`manage.py match --domain {run.domain} --resume`."
                    )
                quiet_since = time.monotonic()
            time.sleep(POLL_SECONDS)

    def _workers_ready(self, domain: str, worker_timeout: float) -> None:
        """A CommandError, before anything changes, when no worker consumes the queue the partitions go to."""
        queue, consumers = _queue_consumers(worker_timeout)
        if consumers:
            return
        unfinished = match_run_resumable(domain=domain)
        again = f" with --resume to continue run #{unfinished.pk}" if unfinished else ""
        raise CommandError(
            f"no Celery worker is consuming the '{queue}' queue (none that does answered within {worker_timeout:g} "
            f"s), so nobody would run the partitions and this command would wait forever. Start one, e.g. "
            f"`{WORKER_COMMAND}` (see README.md), then run this command again{again}. Nothing was changed."
        )


def _queue_consumers(timeout: float) -> tuple[str, list[str]]:
    """The queue the partition tasks go to, and the workers that answer within `timeout` s consuming it."""
    app = match_partition_task.app
    queue = app.amqp.router.route({}, match_partition_task.name)["queue"].name

    def consuming(replies: dict) -> list[str]:
        return sorted(worker for worker, queues in replies.items() if any(q.get("name") == queue for q in queues))

    try:
        # the first worker to answer is usually enough (no need to wait out `timeout` for the others); only when it
        # does not consume the queue are all answers waited for
        found = consuming(app.control.inspect(timeout=timeout, limit=1).active_queues() or {})
        if not found:
            found = consuming(app.control.inspect(timeout=timeout).active_queues() or {})
    except OperationalError as exc:
        raise CommandError(
            f"cannot reach the Celery broker ({exc}); is Redis running (REDIS_URL, CELERY_BROKER_URL)?"
        ) from None
    return queue, found
