"""manage.py sync and sandbox: thin commands over the services, with progress and clear errors."""

import re
import socket
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from canonical.models import Customer
from connectors.models import SyncRun

from .conftest import free_port, ingest, rec


def test_sync_pull_then_push_runs_now_and_records_each_run(sandbox, connect, capsys):
    connect(sandbox, "crm", "erp")
    sandbox.put("crm", "Account", {"Name": "Acme", "Website": "https://acme.example"})
    call_command("sync", "--system", "crm", "--pull")
    assert Customer.objects.count() == 1
    call_command("sync", "--system", "erp", "--push")
    out = capsys.readouterr().out
    assert "pull crm customer: succeeded" in out and "push erp: claimed 1" in out
    assert [r["ext_id"] for r in sandbox.records("erp", "customer")] == [str(Customer.objects.get().pk)]
    assert sorted(SyncRun.objects.values_list("direction", "system_id", "trigger")) == [
        ("pull", "crm", "command"), ("pull", "crm", "command"), ("push", "erp", "command")]  # fmt: skip


def test_sync_reports_what_still_waits_for_a_retry_and_fails_on_dead_letters(sandbox, connect, capsys, settings):
    connect(sandbox, "erp")
    ingest("crm", "customer", rec("001A", name="Acme"), rec("001B", name="Globex"))
    sandbox.faults("erp", fail_next=1, fail_status=503)
    call_command("sync", "--system", "erp", "--push")
    assert "1 change(s) wait for a retry" in capsys.readouterr().out
    sandbox.faults("erp", fail_next=5, fail_status=400)
    settings.MDM_RETRY_BASE_SECONDS = 0.0
    from connectors.models import Delivery

    Delivery.objects.filter(status="pending").update(next_attempt_at="2000-01-01T00:00:00Z")
    with pytest.raises(CommandError, match="finished with errors"):
        call_command("sync", "--system", "erp", "--push")


def test_sync_push_fails_when_no_change_reached_the_system_and_prints_why(sandbox, connect, capsys):
    connect(sandbox, "erp")
    ingest("crm", "customer", rec("001A", name="Acme"), rec("001B", name="Globex"))
    sandbox.faults("erp", fail_next=10, fail_status=503)

    with pytest.raises(CommandError, match="finished with errors"):
        call_command("sync", "--system", "erp", "--push")

    captured = capsys.readouterr()
    assert "push erp: claimed 2, retried 2" in captured.out
    assert "2 change(s) wait for a retry (next at " in captured.out and "; last error: " in captured.out
    assert "503" in captured.err and "none of the 2 change(s) tried reached erp" in captured.err
    run = SyncRun.objects.get(direction="push", system_id="erp")
    assert run.status == "failed" and run.counts["delivered"] == 0


@pytest.mark.parametrize(
    "args, message",
    [(["--system", "nope"], "no connection for system 'nope'"),
     (["--system", "crm", "--domain", "planet"], "unknown domain 'planet'")],
)  # fmt: skip
def test_sync_refuses_unknown_systems_and_domains_with_a_next_step(sandbox, connect, args, message):
    connect(sandbox, "crm")
    with pytest.raises(CommandError, match=message):
        call_command("sync", *args)


def test_sandbox_lead_to_project_runs_the_flow_in_the_demo(sandbox, connect, capsys):
    connect(sandbox, "crm", "erp", "psa")
    call_command("sandbox", "lead-to-project", "--url", sandbox.url, "--account", "Initech")
    out = capsys.readouterr().out
    assert "ERP contract CN-00001, PSA project PRJ-00001" in out
    assert "close → project" in out


def test_sandbox_configure_points_the_default_systems_at_it(db, sandbox):
    from connectors.models import Connection

    call_command("sandbox", "configure", "--url", sandbox.url)
    assert sorted(Connection.objects.values_list("system_id", "base_url")) == [
        (code, f"{sandbox.url}/{code}") for code in ("crm", "erp", "hr", "psa")]  # fmt: skip


@pytest.mark.parametrize("amount", ["abc", "nan", "inf", "1e400", "-5", "12.345", "12345678901234567"])
def test_sandbox_deal_refuses_a_bad_amount_before_calling_the_sandbox(sandbox, amount):
    with pytest.raises(CommandError, match=r"^--amount "):
        call_command("sandbox", "deal", "--url", sandbox.url, "--amount", amount)
    assert sandbox.writes("crm") == []


def test_sandbox_deal_names_the_url_it_used_and_suggests_starting_the_sandbox_only_when_unreachable(sandbox):
    closed = free_port()
    with pytest.raises(CommandError) as unreachable:
        call_command("sandbox", "deal", "--url", f"http://127.0.0.1:{closed}")
    assert f"http://127.0.0.1:{closed} cannot be reached (" in str(unreachable.value)
    assert f"`manage.py sandbox serve --port {closed}`" in str(unreachable.value)
    with pytest.raises(CommandError) as not_found:
        call_command("sandbox", "deal", "--url", f"{sandbox.url}/nope")
    assert f"{sandbox.url}/nope answered HTTP 404 Not Found to creating the Account" in str(not_found.value)
    assert "serve" not in str(not_found.value)
    with pytest.raises(CommandError, match="is not an http or https URL"):
        call_command("sandbox", "deal", "--url", "not a url")


@pytest.mark.parametrize("connected, message", [
    ((), "no connection for crm, erp, psa"),
    (("crm", "erp"), "no connection for psa"),
    (("crm", "erp", "psa"), "the connection of crm is disabled"),
])  # fmt: skip
def test_sandbox_lead_to_project_checks_the_connections_before_calling_the_sandbox(sandbox, connect, connected,
                                                                                   message):  # fmt: skip
    from connectors.models import Connection

    connect(sandbox, *connected)
    Connection.objects.filter(system_id="crm").update(enabled=False)
    with pytest.raises(CommandError) as refused:
        call_command("sandbox", "lead-to-project", "--url", sandbox.url)
    assert message in str(refused.value)
    assert "`manage.py sandbox configure --url URL`" in str(refused.value)
    assert sandbox.writes("crm") == []


def test_sandbox_lead_to_project_reports_a_failed_pull_with_its_error_and_stops(db, sandbox, capsys):
    call_command("sandbox", "configure", "--url", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(CommandError, match="the flow stopped: pull crm customer failed"):
        call_command("sandbox", "lead-to-project", "--url", sandbox.url)
    steps = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert len(steps) == 1 and steps[0].startswith("  pull crm customer: failed (GET http://127.0.0.1:")
    assert "Connection refused" in steps[0]
    assert SyncRun.objects.get().status == "failed"


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_sandbox_serve_refuses_a_port_outside_1_to_65535(port):
    with pytest.raises(CommandError, match=f"'{port}' is not a port number: give one from 1 to 65535"):
        call_command("sandbox", "serve", "--port", port)


def test_sandbox_serve_names_a_port_in_use_and_creates_no_store(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            CommandError, match=f"port {port} on 127.0.0.1 is already in use.*choose another with --port"
        ):
            call_command("sandbox", "serve", "--port", str(port), "--store", str(tmp_path / "store"))
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("store", ["afile", "afile/sub"])
def test_sandbox_serve_names_a_store_path_that_is_not_a_folder(tmp_path, store):
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(CommandError) as refused:
        call_command("sandbox", "serve", "--port", str(free_port()), "--store", str(tmp_path / store))
    assert f"cannot use {tmp_path / store} as the sandbox's store folder ({tmp_path / 'afile'} is a file" in str(
        refused.value
    )


def test_sandbox_serve_names_a_store_whose_database_file_is_not_one(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "sandbox.sqlite3").write_text("garbage, not a database\n" * 100)
    with pytest.raises(CommandError) as refused:
        call_command("sandbox", "serve", "--port", str(free_port()), "--store", str(store))
    assert f"cannot use {store} as the sandbox's store folder (its database file cannot be used: " in str(refused.value)
    assert "move the folder away or pass another --store" in str(refused.value)


@pytest.mark.parametrize("url, message", [
    ("not a url", "'not a url' is not an http or https URL"),
    ("ftp://127.0.0.1:8765", "is not an http or https URL"),
    ("http://127.0.0.1:8765/" + "a" * 600, "has 622 characters; a connection's URL holds at most 496"),
    ("http://127.0.0.1:8765?x=1", "without a query or fragment"),  # the system's path would go after the query
    ("http://127.0.0.1:8765#top", "without a query or fragment"),
    ("http://127.0.0.1:99999", "port from 1 to 65535"),
])  # fmt: skip
def test_sandbox_configure_refuses_a_bad_url_and_changes_nothing(db, url, message):
    from connectors.models import Connection

    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("sandbox", "configure", "--url", url)
    assert not Connection.objects.exists()


@pytest.mark.parametrize(
    "url", ["http://sandbox:8765", "http://mdm_sandbox:8765/", "http://[::1]:8765", "https://sb.example"]
)
def test_sandbox_configure_takes_a_container_name_or_an_ipv6_address(db, url):
    from connectors.models import Connection

    call_command("sandbox", "configure", "--url", url, stdout=StringIO())

    assert Connection.objects.get(system_id="crm").base_url == url.rstrip("/") + "/crm"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--currency", "XYZ"], "--currency: "),
        (["--website", "not a url"], "--website: "),
        (["--account", "  "], "--account: give the client's name"),
    ],
)
def test_sandbox_deal_refuses_options_the_hub_would_refuse_before_calling_the_sandbox(sandbox, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("sandbox", "deal", "--url", sandbox.url, *args)
    assert sandbox.writes("crm") == []


def test_sync_push_with_redis_unreachable_says_what_to_do_not_a_traceback(tmp_path):
    """The relay keeps its pauses in Redis: with Redis down the push cannot run, and says so (a subprocess: the
    test run's own Redis settings are fixed at start)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'hub.sqlite3'}"

    def manage(*args, **extra):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=root, env={**env, **extra},
                              capture_output=True, text=True, timeout=180)  # fmt: skip

    assert manage("migrate", "-v0").returncode == 0
    assert manage("sandbox", "configure", "--url", f"http://127.0.0.1:{free_port()}").returncode == 0
    proc = manage("sync", "--system", "erp", "--push", REDIS_URL=f"redis://127.0.0.1:{free_port()}/6")

    assert proc.returncode == 1
    assert "cannot reach Redis at REDIS_URL" in proc.stderr
    assert "start Redis, then run `manage.py sync --system erp --push` again" in proc.stderr
    assert "Traceback" not in proc.stderr


class _Terminal(StringIO):
    """A stderr that says it is a terminal: the commands show their progress bars only on one."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("command", ["sync", "reconcile"])
def test_sync_and_reconcile_show_progress_on_a_terminal_unless_told_not_to(sandbox, connect, monkeypatch, command):
    connect(sandbox, "crm", "erp")
    sandbox.put("crm", "Account", {"Name": "Acme", "Website": "https://acme.example"})
    shown = {}
    for flag in ([], ["--no-progress"]):
        terminal = _Terminal()
        monkeypatch.setattr("sys.stderr", terminal)
        call_command(command, "--system", "crm", *flag, stdout=StringIO())
        shown[bool(flag)] = terminal.getvalue()
    assert f"{'pull' if command == 'sync' else 'reconcile'} crm" in shown[False]  # the bar's label
    assert shown[True] == ""
