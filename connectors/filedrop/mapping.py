"""File rows → ingest objects. CSV: columns `source_id`, optional `updated_at` and `deleted`, then canonical
field names (other columns ignored with a warning). JSON Lines: one ingest object per line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from canonical.domains import get_domain

_ENVELOPE_COLUMNS = {"source_id", "updated_at", "deleted"}


def rows(path: Path, domain: str) -> tuple[list[tuple[str, dict]], list[str]]:
    """([(label, ingest object)], warnings). Labels name the file and line, for error messages."""
    spec = get_domain(domain)
    text = path.read_text(encoding="utf-8-sig")
    out: list[tuple[str, dict]] = []
    warnings: list[str] = []
    if path.suffix.lower() == ".jsonl":
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                out.append((f"{path.name} line {n}", json.loads(line)))
            except json.JSONDecodeError as exc:
                warnings.append(f"{path.name} line {n}: not JSON ({exc.msg}); fix the line and drop the file again")
        return out, warnings
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    unknown = [c for c in columns if c not in _ENVELOPE_COLUMNS and spec.get(c) is None]
    if unknown:
        warnings.append(f"{path.name}: ignored column(s) {', '.join(unknown)}")
    for n, row in enumerate(reader, start=2):
        attributes = {}
        for name, value in row.items():
            f = spec.get(name) if name else None
            if f is None or value is None or value == "":
                continue
            if f.kind == "ref" and value.startswith("{"):
                value = json.loads(value)
            elif f.kind in ("list_str", "lines") and value.startswith("["):
                value = json.loads(value)
            attributes[name] = value
        payload = {"source_id": row.get("source_id"), "attributes": attributes}
        if row.get("updated_at"):
            payload["updated_at"] = row["updated_at"]
        if row.get("deleted"):
            payload["deleted"] = row["deleted"]
        out.append((f"{path.name} line {n}", payload))
    return out, warnings
