"""The outbox fan-out: who hears of which golden change (never the system it came from)."""

from canonical.models import ChangeEvent
from connectors.models import Delivery, FeedEntry

from .conftest import ingest, rec


def test_a_change_goes_to_subscribers_and_is_never_echoed_to_its_origin(sandbox, connect):
    connect(sandbox, "crm", "erp", "psa")
    ingest("crm", "customer", rec("001A", name="Acme", website="https://acme.example"))
    event = ChangeEvent.objects.get()
    # erp subscribes to customers and maps them; psa subscribes but its mapping pushes no customers; crm is
    # where the change came from.
    assert list(Delivery.objects.values_list("event_id", "system_id")) == [(event.pk, "erp")]


def test_an_update_of_fields_the_target_does_not_map_is_not_pushed(sandbox, connect, settings):
    connect(sandbox, "erp")
    ingest("crm", "customer", rec("001A", 0, name="Acme", industry="Retail"))
    ingest("crm", "customer", rec("001A", 10, name="Acme", industry="Consulting"))
    assert ChangeEvent.objects.count() == 2
    assert Delivery.objects.count() == 1  # only the creation: erp's mapping has no industry


def test_a_system_without_a_connection_hears_nothing_but_the_feed_has_every_event(db):
    ingest("crm", "customer", rec("001A", name="Acme"))
    ingest("hr", "resource", rec("W1", first_name="Ada", last_name="Lovelace"))
    assert Delivery.objects.count() == 0
    assert sorted(FeedEntry.objects.values_list("event_id", flat=True)) == sorted(
        ChangeEvent.objects.values_list("pk", flat=True)
    )


def test_a_disabled_connection_or_unsubscribed_domain_gets_no_delivery(sandbox, connect):
    from canonical.models import System
    from connectors.models import Connection

    connect(sandbox, "crm", "erp")
    conn = Connection.objects.get(system_id="erp")
    conn.enabled = False
    conn.save()
    ingest("hr", "resource", rec("W1", first_name="Ada", last_name="Lovelace"))  # crm does not subscribe resources
    ingest("crm", "customer", rec("001A", name="Acme"))  # erp is disabled
    ingest("psa", "project", rec("PRJ-1", project_code="PRJ-1", name="Rollout"))
    assert list(Delivery.objects.values_list("system_id", "domain")) == [("crm", "project")]
    assert "project" in System.objects.get(code="crm").subscribed_domains


def test_a_relay_kick_that_cannot_reach_redis_warns_and_the_ingest_goes_on(
    db, settings, tmp_path, caplog, django_capture_on_commit_callbacks
):
    from django.core.management import call_command

    from canonical.audit import Channel, audit_context
    from canonical.models import Customer
    from connectors.services.connections import connection_configure

    from .conftest import free_port

    with audit_context(actor="pytest", channel=Channel.JOB, reason="connect"):
        connection_configure(system="erp", kind="erp", base_url="http://127.0.0.1:1/erp")
    # Nothing listens on the port: Redis (the kick's cache key, the broker) is unreachable.
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": unreachable}}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    export = tmp_path / "customers.csv"
    export.write_text("source_id,name,country\nrd1,Redis Down Ltd,GB\nrd2,Redis Down Two,GB\nrd3,Redis Down Three,GB\n")
    with django_capture_on_commit_callbacks(execute=True) as kicks:
        call_command("ingest", str(export), "--system", "crm", "--domain", "customer", "--batch-size", "1",
                     "--no-progress")  # fmt: skip
    assert Customer.objects.count() == 3
    assert list(Delivery.objects.values_list("system_id", "status")) == [("erp", "pending")] * 3
    warned = [r for r in caplog.records if getattr(r, "event", "") == "relay.kick_failed"]
    assert len(kicks) == 3 and len(warned) == 3
    assert "the relay's next sweep pushes them" in warned[0].getMessage()
