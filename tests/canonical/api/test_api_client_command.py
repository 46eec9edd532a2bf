"""`manage.py api_client create|list|revoke`."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from canonical.api.clients import key_hash
from canonical.models import ApiClient

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("api_client", *args, stdout=out)
    return out.getvalue()


def test_create_prints_the_key_once_and_stores_only_its_hash():
    output = run("create", "crm-sync", "--system", "crm", "--scope", "ingest", "--scope", "read:customer")

    key = output.strip().splitlines()[-1]
    client = ApiClient.objects.get(name="crm-sync")
    assert key.startswith(client.key_prefix)
    assert client.key_hash == key_hash(key)
    assert (client.system_id, client.scopes) == ("crm", ["ingest", "read:customer"])
    assert key not in run("list")


def test_list_shows_clients_and_their_state():
    run("create", "reporting", "--scope", "read:customer,read:contract")
    run("create", "old")
    run("revoke", "old")

    lines = run("list").splitlines()

    assert lines[0].startswith("NAME")
    assert any(line.startswith("old") and "revoked" in line for line in lines)
    assert any(line.startswith("reporting") and "read:customer,read:contract" in line for line in lines)


def test_revoke_disables_the_key():
    run("create", "tmp", "--scope", "read:customer")

    assert "Revoked" in run("revoke", "tmp")
    client = ApiClient.objects.get(name="tmp")
    assert not client.is_active and client.revoked_at is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "x", "--system", "sap"], "unknown system 'sap'; known systems: crm, erp, hr, psa"),
        (["create", "x", "--scope", "write:all"], "unknown scope(s): write:all"),
        (["create", "x", "--scope", "ingest"], "scope 'ingest' needs --system"),
        (["create", "bad name!"], "invalid name 'bad name!'"),
        (["create", "crm\n"], "invalid name 'crm"),  # a trailing newline is not a name character either
        (["revoke", "ghost"], "no API client named 'ghost'"),
        (["create", "x", "--scope", " "], "an empty --scope; give one of: "),
        (["create", "x", "--scope", "read:customer,,read:contract"], "an empty --scope"),
        (["create", "x", "--system", ""], "--system is empty"),
        (["create", "x", "--scope", "read:cust\x01omer"], "unknown scope(s): 'read:cust"),  # quoted: shows \x01
    ],
)
def test_bad_input_is_a_clear_command_error_and_nothing_is_created(args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(*args)

    assert not ApiClient.objects.exists()


def test_a_duplicate_name_is_refused():
    run("create", "dup")

    with pytest.raises(CommandError, match="already exists"):
        run("create", "dup")
    assert ApiClient.objects.count() == 1
