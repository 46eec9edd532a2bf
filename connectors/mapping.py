"""Field mapping between a system's record shape and the canonical model, declared as data.

An `ObjectMap` lists `F(canonical, remote)` pairs for one domain ↔ one remote object. Pulling reads a
remote record (field names matched case-insensitively, as SuiteQL lower-cases them) into canonical
attributes; a field the record does not carry is left out, so a system is never taken to have sent what
it did not send. Pushing writes canonical values into the remote shape; references go out as the target
system's own id when the hub knows it, otherwise by the hub's golden id as an external-id reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .base import PushItem

_MISSING = object()


@dataclass(frozen=True)
class F:
    canonical: str
    remote: str
    to_hub: Callable[[Any], Any] | None = None
    to_remote: Callable[[Any], Any] | None = None
    ref: bool = False
    pull: bool = True
    push: bool = True


@dataclass(frozen=True)
class ObjectMap:
    domain: str
    remote_object: str
    fields: tuple[F, ...]
    complete: Callable[[dict, dict], None] | None = None  # (remote record, attributes) → fill derived values

    def covers(self) -> set[str]:
        return {f.canonical for f in self.fields if f.push}

    def to_attributes(self, record: dict) -> dict[str, Any]:
        lowered = {str(k).lower(): v for k, v in record.items()}
        out: dict[str, Any] = {}
        for f in self.fields:
            if not f.pull:
                continue
            value = lowered.get(f.remote.lower(), _MISSING)
            if value is _MISSING:
                continue
            if value == "":
                value = None
            if f.to_hub is not None and value is not None:
                value = f.to_hub(value)
                if value is _MISSING:
                    continue
            out[f.canonical] = value
        if self.complete is not None:
            self.complete(record, out)
        return out

    def to_remote(self, item: PushItem, *, ref_out: Callable[[F, str | None, str | None], tuple[str, Any]]) -> dict:
        """The remote body; `ref_out(field, remote_id, golden_id)` gives (key, value) for a reference."""
        body: dict[str, Any] = {}
        for f in self.fields:
            if not f.push or f.canonical not in item.values:
                continue
            value = item.values[f.canonical]
            if f.ref:
                key, ref_value = ref_out(f, item.refs.get(f.canonical), str(value) if value else None)
                body[key] = ref_value
                continue
            if f.to_remote is not None and value is not None:
                value = f.to_remote(value)
            body[f.remote] = value
        return body


# --- converters shared by the mappings --------------------------------------------------------------------


def to_decimal_text(value: Any) -> Any:
    try:
        return str(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return value  # the pipeline reports it as an invalid value


def to_number(value: Any) -> Any:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return value
    return int(number) if number == number.to_integral_value() else float(number)


def date_part(value: Any) -> Any:
    text = str(value)
    return text[:10] if len(text) >= 10 and text[4] == "-" else value


def golden_ref(value: Any) -> Any:
    """A remote field holding the hub's golden id (an external id the hub gave the system) → a reference."""
    return {"golden_id": str(value)} if value else None


def ns_bool(value: Any) -> bool:
    return value in (True, "T", "t", "true", "True", 1)


def missing() -> object:
    return _MISSING
