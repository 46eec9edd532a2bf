"""The OpenAPI schema generates without errors or warnings, and the docs page renders."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command


@pytest.mark.django_db
def test_schema_generates_and_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    schema = yaml.safe_load(target.read_text())
    paths = schema["paths"]
    for url_name in ("customers", "legal-entities", "contracts", "projects", "resources", "rate-cards"):
        assert f"/api/v1/{url_name}/" in paths
        assert f"/api/v1/{url_name}/{{id}}/history/" in paths
    assert "/api/v1/xrefs/resolve/" in paths
    assert "/api/v1/ingest/{system}/{domain}/" in paths
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


@pytest.mark.django_db
def test_schema_and_docs_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
