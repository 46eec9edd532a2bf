"""Matching: which golden record (if any) a source record is about.

The ingest pipeline talks only to the `Matcher` interface in `base.py`; `settings.MDM_MATCHER` names the
implementation. The deterministic matcher (identifiers only) is the foundation's; the fuzzy matcher
fills the same interface.
"""
