"""List filters for golden records, generated per domain from the canonical model.

Every domain filters on `status`, `updated_after` / `updated_before`, `system` (records a system knows,
through its cross-references), `country` where the domain has one, and its main identifiers and
references (by golden id). Values are normalised the way ingest normalises them (country and currency
codes upper-case, e-mail addresses and domains lower-case).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache

import django_filters as df
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django_filters.fields import IsoDateTimeField
from rest_framework.filters import SearchFilter

from canonical.domains import DOMAINS, FieldSpec
from canonical.models import CrossReference, GoldenStatus

# Main identifiers (and references) each domain can be filtered on, besides status/country/updated_*.
IDENTIFIERS: dict[str, tuple[str, ...]] = {
    "legal_entity": ("tax_id", "registration_number", "is_internal", "parent", "functional_currency"),
    "customer": ("email_domain", "legal_entity", "parent", "industry", "segment"),
    "contract": (
        "contract_number",
        "opportunity_id",
        "customer",
        "counterparty",
        "contracting_entity",
        "rate_card",
        "contract_type",
        "currency",
    ),
    "project": ("project_code", "contract", "customer", "delivery_entity", "project_manager", "currency"),
    "resource": ("employee_number", "email", "employer", "worker_type", "grade"),
    "rate_card": ("code", "currency", "customer"),
}

_UPPER_KINDS = ("country", "currency")
_LOWER_KINDS = ("email", "domain")
MAX_SEARCH_TERMS = 8
MAX_SEARCH_TERM_LENGTH = 100


def _filter_for(f: FieldSpec) -> df.Filter:
    if f.kind == "tax_id":
        return df.CharFilter(
            field_name=f.name,
            method="filter_tax_id",
            max_length=f.max_length,
            help_text="With or without the country prefix, separators ignored (DE 136 695 976 = 136695976).",
        )
    if f.kind == "ref":
        return df.UUIDFilter(field_name=f"{f.name}_id", help_text=f"Golden id of the {f.ref_domain}.")
    if f.kind == "bool":
        return df.BooleanFilter(field_name=f.name)
    if f.kind == "enum":
        return df.ChoiceFilter(field_name=f.name, choices=[(c, c) for c in f.choices])
    if f.kind in _UPPER_KINDS:
        return df.CharFilter(field_name=f.name, method="filter_upper", max_length=3)
    if f.kind in _LOWER_KINDS:
        return df.CharFilter(field_name=f.name, method="filter_lower", max_length=f.max_length)
    return df.CharFilter(field_name=f.name, max_length=f.max_length)


class _UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, in UTC: PostgreSQL refuses offsets past ±15:59 that Python reads ("+16:00"), and a
    time that is past the year 9999 (or before 1) once in UTC is not one anything can compare with."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:
            raise ValidationError("Enter a date-time between the years 1 and 9999 (in UTC).", code="invalid") from None


class UtcDateTimeFilter(df.IsoDateTimeFilter):
    """IsoDateTimeFilter comparing in UTC (see _UtcDateTimeField)."""

    field_class = _UtcDateTimeField


class GoldenFilterSet(df.FilterSet):
    status = df.ChoiceFilter(
        choices=GoldenStatus.choices, help_text="Default: every status except merged (merged records lead elsewhere)."
    )
    updated_after = UtcDateTimeFilter(field_name="updated_at", lookup_expr="gt")
    updated_before = UtcDateTimeFilter(field_name="updated_at", lookup_expr="lte")
    system = df.CharFilter(method="filter_system", max_length=32, help_text="Only records this system knows (xrefs).")

    domain: str = ""

    def filter_upper(self, queryset, name, value):
        return queryset.filter(**{name: value.strip().upper()})

    def filter_lower(self, queryset, name, value):
        return queryset.filter(**{name: value.strip().lower()})

    def filter_tax_id(self, queryset, name, value):
        compact = re.sub(r"[\s.\-/]", "", value).upper()
        candidates = {compact}
        if len(compact) > 2 and compact[:2].isalpha():
            candidates.add(compact[2:])  # ids are stored in the compact form without the country prefix
        return queryset.filter(**{f"{name}__in": sorted(candidates)})

    def filter_system(self, queryset, name, value):
        known = CrossReference.objects.filter(domain=self.domain, system_id=value.strip(), golden_id=OuterRef("pk"))
        return queryset.filter(Exists(known))


@cache
def golden_filterset(domain: str) -> type[GoldenFilterSet]:
    spec = DOMAINS[domain]
    names = [n for n in ("country",) if spec.get(n)] + list(IDENTIFIERS[domain])
    attrs: dict = {name: _filter_for(spec.get(name)) for name in names}
    attrs["domain"] = domain
    attrs["Meta"] = type("Meta", (), {"model": spec.model, "fields": []})
    attrs["__module__"] = __name__
    return type(f"{spec.model_name}FilterSet", (GoldenFilterSet,), attrs)


class BoundedSearchFilter(SearchFilter):
    """`?search=` on the domain's title fields, with a bound on how many and how long the terms are."""

    def get_search_terms(self, request):
        terms = super().get_search_terms(request)
        terms = [term.replace("\x00", "")[:MAX_SEARCH_TERM_LENGTH] for term in terms[:MAX_SEARCH_TERMS]]
        return [term for term in terms if term]
