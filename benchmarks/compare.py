"""Before and after on a noisy machine: a benchmark run for two commits in turn, medians side by side.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mdm_ab REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python benchmarks/compare.py --base 97fd649 --runs 3 --keys ours_seconds,ours_cpu_seconds \\
        -- benchmarks/dedup_100k.py --records 20000 --csv /tmp/cust20000.csv --no-splink

The machines this runs on are shared: the same run can take 15 % longer an hour later, so a figure measured
before a change and one measured after it, minutes apart, compare the machine as much as the change. This runs
BENCHMARK (a script path relative to the repository, and its arguments) alternately in a worktree of `--base`
and in `--head` (default: this checkout, uncommitted changes included): base, head, base, head, … `--runs`
times each, each run in a child process, so both see the same slow and fast minutes. Each side runs its own
copy of the script.

Before each run (unless `--no-fresh-db`) the database DATABASE_URL names is dropped, created and migrated with
that side's own migrations, so each side runs on its own schema, and REDIS_URL's database is flushed (the
matcher keeps counts there). The benchmark's last line of standard output
must be its JSON result (every script here prints one); `--keys` (dotted for nested values: `median.seconds`)
names the figures to compare. Printed: every run's figures in order, then per key the median of each side and
head / base. Nothing is written to the docs: the figures go there by hand, with this command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

ROOT = common.ROOT


def value_at(result: dict, dotted: str):
    """`result`'s value at a dotted key ("results.0.median.records_per_s"), None where there is none."""
    node = result
    for part in dotted.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def last_json(stdout: str) -> dict:
    """The last line of `stdout` that is a JSON object; ValueError if there is none."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise ValueError("no line of its standard output is a JSON object")


def worktree(side: str, rev: str, parent: Path) -> Path:
    """A detached worktree of `rev` under `parent` (the caller removes it)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, capture_output=True, text=True
    )
    if commit.returncode:
        sys.exit(f"--{side} {rev!r} is not a commit of this repository (git rev-parse: {commit.stderr.strip()})")
    sha = commit.stdout.strip()
    path = parent / f"{side}-{sha[:12]}"
    added = subprocess.run(
        ["git", "worktree", "add", "--detach", "--force", str(path), sha], cwd=ROOT, capture_output=True, text=True
    )
    if added.returncode:
        sys.exit(f"git worktree add for --{side} {rev} failed: {added.stderr.strip()}")
    return path


def run_side(side: str, tree: Path, benchmark: list[str], *, fresh_db: bool) -> dict:
    if fresh_db:
        common.database_fresh(os.environ["DATABASE_URL"], root=tree)
    # its own process group, so that a stopped comparison stops the benchmark's own children too (the CLI
    # processes ingest_customers.py starts)
    proc = subprocess.Popen(
        [common.PYTHON, *benchmark],
        cwd=tree,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate()
    except BaseException:
        _stop_group(proc)
        raise
    proc = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    if proc.returncode:
        sys.exit(f"{' '.join(benchmark)} failed in {tree} ({side}, exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    try:
        return last_json(proc.stdout)
    except ValueError as exc:
        tail = "\n".join(proc.stdout.strip().splitlines()[-5:])
        sys.exit(
            f"{' '.join(benchmark)} in {tree} ({side}): {exc}; a benchmark must print its result as one line of "
            f"JSON last (json.dumps(result)). Its last lines:\n{tail}"
        )


def compare(runs: dict[str, list[dict]], keys: list[str]) -> list[dict]:
    """Per key: each side's values, medians and head / base."""
    rows = []
    for key in keys:
        base = [v for v in (value_at(r, key) for r in runs["base"]) if isinstance(v, int | float)]
        head = [v for v in (value_at(r, key) for r in runs["head"]) if isinstance(v, int | float)]
        row = {"key": key, "base": base, "head": head}
        if base and head:
            row["base_median"] = round(statistics.median(base), 6)
            row["head_median"] = round(statistics.median(head), 6)
            row["ratio"] = round(row["head_median"] / row["base_median"], 3) if row["base_median"] else None
        rows.append(row)
    return rows


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop a benchmark and the processes it started: SIGINT first (KeyboardInterrupt, so its own `finally` stops
    the servers it started in sessions of their own), then, after 15 s, SIGKILL to the whole group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _stop(signum, frame):
    for other in _STOP_SIGNALS:  # unwind once: a second signal must not cut the cleanup short
        signal.signal(other, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the commit before (a worktree of it is made)")
    parser.add_argument("--head", help="the commit after (default: this checkout as it is, uncommitted changes too)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each side, alternating (default 3)")
    parser.add_argument("--keys", default="ours_seconds", help="comma-separated (dotted) keys of the JSON result")
    parser.add_argument("--no-fresh-db", action="store_true", help="do not recreate and migrate the database")
    parser.add_argument("benchmark", nargs=argparse.REMAINDER, help="-- SCRIPT [ARGS…], relative to the repo")
    args = parser.parse_args(argv)
    benchmark = args.benchmark[1:] if args.benchmark[:1] == ["--"] else args.benchmark
    if not benchmark:
        parser.error("give the benchmark after --, e.g. -- benchmarks/dedup_100k.py --records 20000")
    if not 1 <= args.runs <= 50:
        parser.error(f"--runs must be between 1 and 50 (got {args.runs})")
    if not args.no_fresh_db:
        common.database_url_required()
    keys = [k.strip() for k in args.keys.split(",") if k.strip()]
    # stopped (kill, a closed terminal): unwind, so that the running benchmark is stopped and the worktrees go;
    # the handlers found are put back when main returns (it is also called in-process, by the tests)
    saved = {}
    if threading.current_thread() is threading.main_thread():
        saved = {signum: signal.signal(signum, _stop) for signum in _STOP_SIGNALS}
    try:
        return _compare(args, benchmark, keys)
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def _compare(args, benchmark: list[str], keys: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="mdm-compare-") as tmp:
        trees: dict[str, Path] = {}
        runs: dict[str, list[dict]] = {"base": [], "head": []}
        try:
            trees["base"] = worktree("base", args.base, Path(tmp))
            trees["head"] = worktree("head", args.head, Path(tmp)) if args.head else ROOT
            for side, tree in trees.items():
                if not (tree / benchmark[0]).is_file():
                    sys.exit(f"{benchmark[0]} is not a file in the {side}'s tree ({tree}): give its path in the repo")
            for n in range(1, args.runs + 1):
                for side in ("base", "head"):
                    result = run_side(side, trees[side], benchmark, fresh_db=not args.no_fresh_db)
                    runs[side].append(result)
                    if n == 1 and side == "base" and all(value_at(result, k) is None for k in keys):
                        print(
                            f"none of --keys {','.join(keys)} is in the result; its keys: {', '.join(result)}",
                            file=sys.stderr,
                        )
                        return 2
                    figures = ", ".join(f"{k} {value_at(result, k)}" for k in keys)
                    print(f"run {n}/{args.runs} {side}: {figures}", file=sys.stderr, flush=True)
        finally:
            for tree in trees.values():
                if tree != ROOT:
                    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    rows = compare(runs, keys)
    for row in rows:
        if "ratio" in row:
            print(
                f"{row['key']}: base {row['base_median']} (runs {row['base']}), head {row['head_median']} "
                f"(runs {row['head']}), head / base {row['ratio']}"
            )
        else:
            print(f"{row['key']}: no number in the results (base {row['base']}, head {row['head']})")
    print(json.dumps({"base": args.base, "head": args.head or "working tree", "benchmark": benchmark, "keys": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
