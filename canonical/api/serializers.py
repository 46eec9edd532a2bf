"""Read serializers for golden records, generated from the canonical model (canonical.domains.DOMAINS).

A record reads as: id, status, version, created_at, updated_at, merged_into, every canonical field
(references as golden id strings), `references` ({field: {id, display}}), `xrefs` ([{system, source_id}])
and `provenance` (per field). Resource personal fields are left out unless the serializer context says
`personal=True` (the view sets it from the `read:personal` scope).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from canonical.domains import DOMAINS, DomainSpec, FieldSpec
from canonical.models import GoldenStatus


class XrefSerializer(serializers.Serializer):
    system = serializers.CharField()
    source_id = serializers.CharField()


class ReferenceSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    display = serializers.CharField()


class RateCardLineSerializer(serializers.Serializer):
    role = serializers.CharField(read_only=True)
    grade = serializers.CharField(read_only=True, allow_null=True)
    unit = serializers.ChoiceField(choices=("hour", "day"), read_only=True)
    rate = serializers.CharField(read_only=True, help_text="Decimal as a string.")


class ProvenanceEntrySerializer(serializers.Serializer):
    system = serializers.CharField(allow_null=True)
    source_record = serializers.IntegerField(allow_null=True)
    source_id = serializers.CharField(allow_null=True)
    rule = serializers.CharField()
    at = serializers.DateTimeField(allow_null=True)


def _canonical_field(f: FieldSpec) -> serializers.Field:
    common = {"read_only": True, "allow_null": not f.required}
    if f.personal:
        common["help_text"] = "Personal data: present only for clients with the read:personal scope."
    if f.kind == "ref":
        return serializers.UUIDField(source=f"{f.name}_id", help_text=f"Golden id of a {f.ref_domain}.", **common)
    if f.kind == "decimal":
        return serializers.DecimalField(
            max_digits=f.max_digits, decimal_places=f.decimal_places, coerce_to_string=True, **common
        )
    if f.kind == "date":
        return serializers.DateField(**common)
    if f.kind == "bool":
        return serializers.BooleanField(**common)
    if f.kind == "enum":
        return serializers.ChoiceField(choices=f.choices, **common)
    if f.kind == "list_str":
        return serializers.ListField(child=serializers.CharField(), read_only=True)
    if f.kind == "lines":
        return RateCardLineSerializer(many=True, read_only=True)
    if f.kind == "email":
        return serializers.EmailField(**common)
    return serializers.CharField(**common)


class GoldenRecordSerializer(serializers.Serializer):
    """Base of the generated per-domain serializers (see `golden_serializer`)."""

    spec: DomainSpec

    id = serializers.UUIDField(read_only=True)
    status = serializers.ChoiceField(choices=GoldenStatus.choices, read_only=True)
    version = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    merged_into = serializers.UUIDField(
        source="merged_into_id", read_only=True, allow_null=True, help_text="The survivor, when status is merged."
    )
    references = serializers.SerializerMethodField()
    xrefs = serializers.SerializerMethodField()
    provenance = serializers.SerializerMethodField()

    def _show_personal(self) -> bool:
        return self.context.get("personal", True) is not False

    def get_fields(self):
        fields = super().get_fields()
        if not self._show_personal():
            for f in self.spec.fields:
                if f.personal:
                    fields.pop(f.name, None)
        return fields

    @extend_schema_field(serializers.DictField(child=ReferenceSerializer(allow_null=True)))
    def get_references(self, obj) -> dict:
        out = {}
        for f in self.spec.ref_fields:
            if f.personal and not self._show_personal():
                continue
            target_id = getattr(obj, f"{f.name}_id")
            if target_id is None:
                out[f.name] = None
                continue
            target = getattr(obj, f.name, None)  # a missing target raises a subclass of AttributeError
            out[f.name] = {"id": str(target_id), "display": str(target) if target is not None else ""}
        return out

    @extend_schema_field(XrefSerializer(many=True))
    def get_xrefs(self, obj) -> list:
        xrefs = self.context.get("xrefs")
        if xrefs is None:
            return []
        return xrefs.get(obj.pk, [])

    @extend_schema_field(serializers.DictField(child=ProvenanceEntrySerializer()))
    def get_provenance(self, obj) -> dict:
        provenance = obj.provenance or {}
        if self._show_personal():
            return provenance
        personal = {f.name for f in self.spec.fields if f.personal}
        return {k: v for k, v in provenance.items() if k not in personal}


@cache
def golden_serializer(domain: str) -> type[GoldenRecordSerializer]:
    spec = DOMAINS[domain]
    attrs: dict = {f.name: _canonical_field(f) for f in spec.fields}
    attrs["spec"] = spec
    attrs["__module__"] = __name__
    attrs["__doc__"] = f"A golden {spec.name.replace('_', ' ')} record."
    return type(f"{spec.model_name}Serializer", (GoldenRecordSerializer,), attrs)


def golden_representer(domain: str, personal: bool) -> Callable[..., dict]:
    """`represent(record, xrefs) -> dict`: what `golden_serializer(domain)` returns for one record, faster.

    A DRF serializer deep-copies and binds its ~30 fields every time it is made; the retrieve endpoint makes one
    per request. This walks the fields of one serializer made and bound once per (domain, personal), calling
    each field's own `to_representation` (and the serializer's own methods for references and provenance), so
    the output is the serializer's, value for value and key for key (tests/canonical/api/test_representation.py).
    """
    return _representer(domain, bool(personal))


@cache
def _representer(domain: str, personal: bool) -> Callable[..., dict]:
    serializer = golden_serializer(domain)(context={"personal": personal})
    plan: list[tuple[str, str | None, Callable | None]] = []
    for name, field in serializer.fields.items():  # bound; personal fields already left out
        if field.write_only:
            continue
        if isinstance(field, serializers.SerializerMethodField):
            plan.append((name, None, None if name == "xrefs" else getattr(serializer, field.method_name)))
            continue
        if len(field.source_attrs) != 1:  # not used by golden serializers; keeps the general case honest
            raise ValueError(f"{field!r}: nested sources are not supported by the representer")
        convert = str if type(field) in (serializers.CharField, serializers.EmailField) else field.to_representation
        plan.append((name, field.source_attrs[0], convert))

    def represent(record, xrefs: list) -> dict:
        out = {}
        for name, attr, convert in plan:
            if attr is None:
                out[name] = xrefs if convert is None else convert(record)
                continue
            value = getattr(record, attr)
            out[name] = None if value is None else convert(value)
        return out

    return represent


# --- other responses --------------------------------------------------------------------------------------


class HistoryChangeSerializer(serializers.Serializer):
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)


class HistoryEntrySerializer(serializers.Serializer):
    history_id = serializers.IntegerField()
    version = serializers.IntegerField()
    history_date = serializers.DateTimeField()
    type = serializers.ChoiceField(choices=("+", "~", "-"), help_text="+ created, ~ changed, - deleted")
    actor = serializers.CharField()
    channel = serializers.CharField()
    request_id = serializers.CharField()
    reason = serializers.CharField(allow_null=True)
    user = serializers.CharField(allow_null=True)
    changes = serializers.DictField(child=HistoryChangeSerializer())


class HistorySerializer(serializers.Serializer):
    domain = serializers.CharField()
    id = serializers.UUIDField()
    count = serializers.IntegerField()
    results = HistoryEntrySerializer(many=True)


class XrefResolveQuerySerializer(serializers.Serializer):
    system = serializers.CharField(max_length=32)
    domain = serializers.ChoiceField(choices=tuple(DOMAINS))
    source_id = serializers.CharField(max_length=255)


class XrefResolveSerializer(serializers.Serializer):
    domain = serializers.CharField()
    id = serializers.UUIDField(help_text="The golden record's id (the survivor's when the record was merged).")
    xref = serializers.DictField(help_text="The cross-reference found: system, source_id, golden_id.")
    merged = serializers.BooleanField(help_text="True when the xref points at a merged record and id is its survivor.")
    url = serializers.CharField()
    record = serializers.DictField(help_text="The golden record, as the domain's retrieve endpoint returns it.")


class IngestRecordSerializer(serializers.Serializer):
    """One source record as a system sends it (documentation only: envelope_parse validates)."""

    source_id = serializers.CharField(max_length=255)
    updated_at = serializers.DateTimeField(required=False, help_text="The source's own modification time.")
    deleted = serializers.BooleanField(required=False, default=False)
    attributes = serializers.DictField(help_text="Canonical field names → values. Send money as strings.")


class IngestResultSerializer(serializers.Serializer):
    source_id = serializers.CharField()
    outcome = serializers.ChoiceField(
        choices=("created", "updated", "linked", "unchanged", "stale", "deleted", "exception", "held")
    )
    golden_id = serializers.UUIDField(allow_null=True)
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)
    message = serializers.CharField(required=False)


class IngestResponseSerializer(serializers.Serializer):
    system = serializers.CharField()
    domain = serializers.CharField()
    count = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())
    results = IngestResultSerializer(many=True)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.DictField()
