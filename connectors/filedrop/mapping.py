"""A dropped file → envelopes, read by `manage.py ingest`'s own reader (canonical.services.files): CSV columns
`source_id`, optional `updated_at` and `deleted`, then canonical field names (other columns ignored with a
warning); JSON Lines one ingest object per line. Unlike `ingest`, a bad line does not stop the file: it becomes
an error `file:line: problem` and the other lines go on. In CSV, a reference cell may also be a JSON object
(`{"golden_id": …}`) and a list cell a JSON list."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from canonical.domains import DomainSpec, get_domain
from canonical.services.files import FileProblem, source_file_read
from canonical.services.ingest import Envelope
from canonical.validation import unstorable

_JSON_CELLS = {"ref": "{", "list_str": "[", "lines": "["}
MAX_ERRORS = 100


def storable(text: str) -> str:
    """`text` as it can be saved in a JSONField: NULs and lone surrogates escaped."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode()


def rows(path: Path, domain: str) -> tuple[list[Envelope], list[str]]:
    """(envelopes, errors) of one file; each error names the file and line and is storable."""
    spec = get_domain(domain)
    reader = source_file_read(path=path, domain=domain)
    envelopes: list[Envelope] = []
    errors: list[str] = []
    for item in reader:
        if not isinstance(item, FileProblem):
            item = _json_cells(item.line, item.envelope, spec, csv=reader.fmt == "csv")
        if isinstance(item, FileProblem):
            where = f"{path.name}:{item.line}" if item.line else path.name
            stops = item.message.startswith("not UTF-8")  # the reader cannot find the lines after a bad byte
            errors.append(
                storable(f"{where}: {item.message}" + ("; the lines after it were not read" if stops else ""))
            )
        else:
            envelopes.append(item)
    if reader.ignored:
        what = "column(s)" if reader.fmt == "csv" else "attribute(s)"
        errors.insert(0, storable(f"{path.name}: ignored {what} {', '.join(reader.ignored)}"))
    if len(errors) > MAX_ERRORS:
        errors[MAX_ERRORS - 1 :] = [storable(f"{path.name}: … and {len(errors) - MAX_ERRORS + 1} more problem(s)")]
    return envelopes, errors


def _json_cells(line: int, envelope: Envelope, spec: DomainSpec, *, csv: bool) -> Envelope | FileProblem:
    """CSV cells of a reference or list field written as JSON, decoded; a cell that is not JSON is a problem."""
    if not csv:
        return envelope
    attributes = dict(envelope.attributes)
    for name, value in envelope.attributes.items():
        f = spec.get(name)
        opener = _JSON_CELLS.get(f.kind) if f is not None else None
        if opener is None or not isinstance(value, str) or not value.startswith(opener):
            continue
        try:
            attributes[name] = json.loads(value)
        except (ValueError, RecursionError):  # not JSON, nested too deeply, an integer of more than 4,300 digits
            return FileProblem("", line, f"{name}: the cell starts with {value[0]} but is not JSON")
        if (bad := unstorable(attributes[name])) is not None:
            return FileProblem("", line, f"{name}{bad[0]}: {bad[1]}")
    return dataclasses.replace(envelope, attributes=attributes)
