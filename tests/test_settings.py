"""Settings read from the environment: a value the hub cannot work with stops it at start, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _setup(**env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "mdm.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=environ, capture_output=True, text=True
    )


@pytest.mark.parametrize("name", ["MDM_INGEST_BATCH_SIZE", "MDM_BULK_BATCH_SIZE"])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_batch_size_below_one_is_refused_by_name(name, value):
    proc = _setup(**{name: value})
    assert proc.returncode != 0
    assert f"{name}={value} must be at least 1" in proc.stderr


def test_a_batch_size_that_is_no_integer_is_refused_by_name():
    proc = _setup(MDM_BULK_BATCH_SIZE="lots")
    assert proc.returncode != 0
    assert "MDM_BULK_BATCH_SIZE='lots' is not an integer" in proc.stderr


def test_batch_sizes_of_one_and_more_start():
    assert _setup(MDM_INGEST_BATCH_SIZE="1", MDM_BULK_BATCH_SIZE="5000").returncode == 0


@pytest.mark.parametrize("value", ["0", "1000"])
def test_an_api_body_cap_too_small_for_the_admins_forms_is_refused_by_name(value):
    proc = _setup(MDM_API_MAX_BODY_BYTES=value)
    assert proc.returncode != 0
    assert f"MDM_API_MAX_BODY_BYTES={value} must be at least 65536" in proc.stderr


def test_the_api_body_cap_is_djangos_too():
    proc = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings as s; "
         "print(s.DATA_UPLOAD_MAX_MEMORY_SIZE, s.MDM_API_MAX_BODY_BYTES)"],
        cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "mdm.settings", "MDM_API_MAX_BODY_BYTES": "100000"},
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.stdout.split() == ["100000", "100000"]
