"""Sandbox systems: one local HTTP server playing the CRM, ERP, PSA and HR (and a webhook receiver).

Run it as its own process with its own store: ``python -m connectors.sandbox --port 8765 --store var/sandbox``.
The demo and the tests use it; `/_admin/...` endpoints seed data, inspect what arrived, and flip fault
switches (fail the next N calls, 429 with Retry-After, slow responses, drop the connection after
applying a write, duplicate external ids, per-item failures in composite calls).
"""
