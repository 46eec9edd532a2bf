"""Nightly reconciliation of each system with the hub (services, admin, API, tasks)."""
