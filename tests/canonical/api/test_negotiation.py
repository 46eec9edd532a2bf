"""Content negotiation remembered per Accept header chooses what DRF's own negotiation chooses."""

from __future__ import annotations

import pytest
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from canonical.api import negotiation
from canonical.api.negotiation import RememberingContentNegotiation

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "text/html",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "application/json; indent=4",
    "application/*",
    "text/plain;q=0.5, application/json;q=0.9",
]


def _request(accept: str | None, query: str = "") -> Request:
    extra = {} if accept is None else {"HTTP_ACCEPT": accept}
    return Request(APIRequestFactory().get("/api/v1/customers/" + query, **extra))


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", ["", "?format=api", "?format=json"])
def test_the_same_choice_as_drf_first_time_and_remembered(accept, query, monkeypatch):
    monkeypatch.setattr(negotiation, "_chosen", {})
    renderers = [JSONRenderer(), BrowsableAPIRenderer()]

    def outcome(negotiator):
        try:
            return negotiator.select_renderer(_request(accept, query), renderers)
        except NotAcceptable:
            return "406"

    expected = outcome(DefaultContentNegotiation())
    first = outcome(RememberingContentNegotiation())
    again = outcome(RememberingContentNegotiation())

    assert first == expected
    assert again == expected
    assert bool(negotiation._chosen) == (not query)


def test_an_unacceptable_header_is_406_every_time(monkeypatch):
    monkeypatch.setattr(negotiation, "_chosen", {})
    for _ in range(2):
        with pytest.raises(NotAcceptable):
            RememberingContentNegotiation().select_renderer(_request("image/png"), [JSONRenderer()])
    assert negotiation._chosen == {}


def test_the_choice_depends_on_the_renderers(monkeypatch):
    monkeypatch.setattr(negotiation, "_chosen", {})
    html = RememberingContentNegotiation().select_renderer(
        _request("text/html"), [JSONRenderer(), BrowsableAPIRenderer()]
    )
    only_json = [JSONRenderer()]

    assert type(html[0]) is BrowsableAPIRenderer
    with pytest.raises(NotAcceptable):
        RememberingContentNegotiation().select_renderer(_request("text/html"), only_json)
