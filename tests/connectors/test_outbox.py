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
