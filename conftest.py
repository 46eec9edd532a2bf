"""Test-session wiring: which backing services are here, and which tests need them.

Tests marked `postgres` need DATABASE_URL to point at PostgreSQL; tests marked `redis` need REDIS_URL;
tests marked `browser` need Debian's chromium at /usr/bin/chromium (driven by Playwright).
Where a service is missing they are deselected (not skipped) and the run says so plainly at the end.
In CI (CI=true) a missing service is an error instead: every test must run there.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

_NOT_RUN: dict[str, list[str]] = {}
BROWSER_PATH = "/usr/bin/chromium"


def _redis_up() -> bool:
    url = os.environ.get("REDIS_URL")
    if not url:
        return False
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def _postgres_configured() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def _browser_installed() -> bool:
    return os.path.exists(BROWSER_PATH)


def pytest_collection_modifyitems(config, items):
    available = {"postgres": _postgres_configured(), "redis": _redis_up(), "browser": _browser_installed()}
    in_ci = os.environ.get("CI", "").lower() == "true"
    missing = [name for name, ok in available.items() if not ok]
    if in_ci and missing:
        raise pytest.UsageError(
            f"CI must run every test, but these services are not configured or not reachable: {', '.join(missing)}. "
            "Set DATABASE_URL (PostgreSQL) and REDIS_URL, and install chromium (.ci/setup-browser); .ci/run does this."
        )
    keep, drop = [], []
    for item in items:
        needs = [name for name in available if item.get_closest_marker(name)]
        lacking = [name for name in needs if not available[name]]
        if lacking:
            drop.append(item)
            for name in lacking:
                _NOT_RUN.setdefault(name, []).append(item.nodeid)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter):
    if not _NOT_RUN:
        return
    terminalreporter.section("service-backed tests NOT run")
    hints = {
        "postgres": "PostgreSQL is not configured (DATABASE_URL) or not reachable",
        "redis": "Redis is not configured (REDIS_URL) or not reachable",
        "browser": f"chromium is not installed at {BROWSER_PATH} (run .ci/setup-browser)",
    }
    for name, ids in _NOT_RUN.items():
        terminalreporter.write_line(f"{len(ids)} test(s) need {name}: {hints[name]}. They were NOT run:")
        for nodeid in ids:
            terminalreporter.write_line(f"    {nodeid}")
