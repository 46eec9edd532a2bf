"""benchmarks/compare.py: two commits' runs in turn, in worktrees of their own, medians side by side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import compare  # noqa: E402

BENCH = """import json, pathlib, sys
log = pathlib.Path(sys.argv[1])
log.write_text(log.read_text() + "{side}\\n" if log.exists() else "{side}\\n")
print("progress on stdout first")
print(json.dumps({{"seconds": {seconds} + len(log.read_text().splitlines()) / 1000, "nested": {{"n": [{n}]}}}}))
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A repository whose two commits each have a `bench.py` printing figures of their own."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    (repo / "bench.py").write_text(BENCH.format(side="base", seconds=10, n=1))
    _git(repo, "add", "bench.py")
    _git(repo, "commit", "-qm", "base")
    base = _git(repo, "rev-parse", "HEAD")
    (repo / "bench.py").write_text(BENCH.format(side="head", seconds=8, n=2))
    _git(repo, "commit", "-qam", "head")
    monkeypatch.setattr(compare, "ROOT", repo)
    return repo, base


def test_the_sides_run_in_turn_and_their_medians_are_compared(repo, tmp_path, capsys):
    root, base = repo
    log = tmp_path / "order.log"

    assert (
        compare.main(
            [
                "--base",
                base,
                "--runs",
                "3",
                "--keys",
                "seconds,nested.n.0,missing",
                "--no-fresh-db",
                "--",
                "bench.py",
                str(log),
            ]
        )
        == 0
    )

    assert log.read_text().split() == ["base", "head"] * 3  # alternating, base first
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    seconds, n, missing = result["keys"]
    # each run's own figure (the log's length makes them differ), medians of each side, head / base
    assert seconds["base"] == [10.001, 10.003, 10.005] and seconds["head"] == [8.002, 8.004, 8.006]
    assert (seconds["base_median"], seconds["head_median"], seconds["ratio"]) == (10.003, 8.004, 0.8)
    assert (n["base_median"], n["head_median"], n["ratio"]) == (1, 2, 2.0)
    assert "ratio" not in missing and "missing: no number" in "\n".join(out)
    assert result["head"] == "working tree"
    assert _git(root, "worktree", "list").count("\n") == 0  # its worktree is gone


def test_a_base_that_is_no_commit_is_refused_by_name(repo):
    with pytest.raises(SystemExit, match="--base 'nope' is not a commit"):
        compare.main(["--base", "nope", "--no-fresh-db", "--", "bench.py", "x"])


def test_a_failing_benchmark_stops_the_comparison_with_its_error(repo, tmp_path):
    root, base = repo
    (root / "bench.py").write_text("raise SystemExit('the file is missing: make it first')\n")  # the head's
    with pytest.raises(SystemExit, match=r"bench.py \S+ failed in .*\n.*the file is missing"):
        compare.main(
            [
                "--base",
                base,
                "--runs",
                "1",
                "--keys",
                "seconds",
                "--no-fresh-db",
                "--",
                "bench.py",
                str(tmp_path / "log"),
            ]
        )
    assert _git(root, "worktree", "list").count("\n") == 0


def test_dotted_keys_reach_into_lists_and_say_none_elsewhere():
    result = {"results": [{"median": {"records_per_s": 553.0}}]}
    assert compare.value_at(result, "results.0.median.records_per_s") == 553.0
    assert compare.value_at(result, "results.1.median") is None
    assert compare.value_at(result, "results.0.nothing") is None


def test_each_run_gets_a_fresh_database_migrated_in_its_own_tree(repo, tmp_path, monkeypatch):
    root, _ = repo
    log = tmp_path / "migrations.log"
    (root / "manage.py").write_text(
        "import os, pathlib, sys\n"
        f"p = pathlib.Path({str(log)!r})\n"
        "p.write_text((p.read_text() if p.exists() else '') + ' '.join([os.getcwd(), os.environ['DATABASE_URL'], *sys.argv[1:]]) + '\\n')\n"
    )
    _git(root, "add", "manage.py")
    _git(root, "commit", "-qm", "manage")
    recreated = []
    monkeypatch.setattr(compare.common, "database_recreate", recreated.append)
    monkeypatch.setenv("DATABASE_URL", "postgres://u@127.0.0.1:5432/mdm_compare_test")
    monkeypatch.delenv("REDIS_URL", raising=False)

    args = ["--base", "HEAD", "--runs", "2", "--keys", "seconds", "--", "bench.py", str(tmp_path / "o")]
    assert compare.main(args) == 0

    assert recreated == ["postgres://u@127.0.0.1:5432/mdm_compare_test"] * 4
    migrations = [line.split(" ") for line in log.read_text().splitlines()]
    assert [Path(cwd).name.startswith("base-") for cwd, _, _, _ in migrations] == [True, False] * 2
    assert {cwd for cwd, _, _, _ in migrations[1::2]} == {str(root)}  # the head: this checkout
    assert all(
        rest == ["postgres://u@127.0.0.1:5432/mdm_compare_test", "migrate", "--noinput"] for _, *rest in migrations
    )


def test_keys_that_are_in_no_result_stop_after_the_first_run(repo, tmp_path, capsys):
    _, base = repo
    assert (
        compare.main(["--base", base, "--keys", "ours_secnds", "--no-fresh-db", "--", "bench.py", str(tmp_path / "o")])
        == 2
    )
    assert "none of --keys ours_secnds is in the result; its keys: seconds, nested" in capsys.readouterr().err


def test_a_benchmark_without_a_json_line_is_named_with_what_to_print(repo, tmp_path):
    root, base = repo
    (root / "bench.py").write_text("print('done')\nprint('{not json')\n")
    with pytest.raises(
        SystemExit,
        match=r"(?s)\(head\): no line .* is a JSON object; .*json.dumps\(result\).*Its last lines:\ndone\n\{not json",
    ):
        compare.main(["--base", base, "--keys", "seconds", "--no-fresh-db", "--", "bench.py", str(tmp_path / "o")])
    assert _git(root, "worktree", "list").count("\n") == 0


def test_a_bad_head_leaves_no_worktree_of_the_base(repo):
    root, base = repo
    with pytest.raises(SystemExit, match="--head 'nope' is not a commit"):
        compare.main(["--base", base, "--head", "nope", "--no-fresh-db", "--", "bench.py"])
    assert _git(root, "worktree", "list").count("\n") == 0


def test_a_script_missing_from_a_tree_is_named_before_anything_runs(repo):
    _, base = repo
    with pytest.raises(SystemExit, match="benchmarks/nothing.py is not a file in the base's tree"):
        compare.main(["--base", base, "--no-fresh-db", "--", "benchmarks/nothing.py"])


SLOW = """import pathlib, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
pathlib.Path(sys.argv[1]).write_text(str(child.pid))
time.sleep(120)
"""


def test_a_stopped_comparison_stops_the_benchmark_and_its_children_and_removes_its_worktree(repo, tmp_path):
    """kill (SIGTERM) while a benchmark runs: its process and the processes it started end, no worktree is left."""
    import os
    import signal
    import time

    root, _ = repo
    (root / "bench.py").write_text(SLOW)
    _git(root, "commit", "-qam", "slow")
    base = _git(root, "rev-parse", "HEAD")
    pid_file = tmp_path / "grandchild.pid"
    driver = (
        f"import sys; sys.path.insert(0, {str(Path(compare.__file__).parent)!r}); import compare, pathlib; "
        f"compare.ROOT = pathlib.Path({str(root)!r}); "
        f"sys.exit(compare.main(['--base', {base!r}, '--no-fresh-db', '--', 'bench.py', {str(pid_file)!r}]))"
    )
    proc = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    grandchild = None

    def sleeping(pid: int) -> bool:  # that process, still there (not ended, not another one under its pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] != "Z" and b"time.sleep(120)" in cmdline

    try:
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        grandchild = int(pid_file.read_text())
        assert _git(root, "worktree", "list").count("\n") == 1  # the base's worktree, while it runs
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
        assert _git(root, "worktree", "list").count("\n") == 0
        deadline = time.monotonic() + 10
        while sleeping(grandchild) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not sleeping(grandchild), f"the benchmark's child {grandchild} outlived the stopped comparison"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if grandchild is not None and sleeping(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_main_puts_back_the_signal_handlers_it_found(repo):
    import signal

    _, base = repo
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    with pytest.raises(SystemExit):
        compare.main(["--base", base, "--no-fresh-db", "--", "missing.py"])
    assert {s: signal.getsignal(s) for s in before} == before
