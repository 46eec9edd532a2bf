"""The canonical model as data: each domain's fields, kinds, required flags, references and owners.

Validation, survivorship, matching keys, serializers and CSV columns all read from here, so the field
names of ../shared/canonical-model.md live in one place (and in the models).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from django.apps import apps

from canonical.models.domains import Domain


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str  # str, text, country, currency, date, decimal, bool, enum, email, url, ref, list_str, lines, tax_id
    required: bool = False
    personal: bool = False
    ref_domain: str | None = None
    choices: tuple[str, ...] = ()
    max_length: int = 255
    max_digits: int = 18
    decimal_places: int = 2


@dataclass(frozen=True)
class DomainSpec:
    name: str
    model_name: str
    url_name: str
    fields: tuple[FieldSpec, ...]
    default_owner: str
    field_owners: dict[str, str] = field(default_factory=dict)
    title_fields: tuple[str, ...] = ("name",)

    @property
    def model(self):
        return apps.get_model("canonical", self.model_name)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def required_fields(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    @property
    def ref_fields(self) -> list[FieldSpec]:
        return [f for f in self.fields if f.kind == "ref"]

    def get(self, name: str) -> FieldSpec | None:
        return _field_index(self.name).get(name)


def _s(name: str, **kw) -> FieldSpec:
    return FieldSpec(name, "str", **kw)


_ADDRESS = (
    _s("address_line1"),
    _s("address_line2"),
    _s("city", max_length=128),
    _s("postal_code", max_length=32),
    _s("region", max_length=128),
)
_BILLING_ADDRESS = ("address_line1", "address_line2", "city", "postal_code", "region", "country")
_CONTRACT_TYPES = ("time_and_materials", "fixed_fee", "milestone", "retainer")
_BILLING = ("monthly", "milestone", "upfront", "on_completion")
_REVENUE = ("ratable", "milestone", "as_invoiced")

DOMAINS: dict[str, DomainSpec] = {
    "legal_entity": DomainSpec(
        name="legal_entity",
        model_name="LegalEntity",
        url_name="legal-entities",
        default_owner="erp",
        fields=(
            _s("name", required=True),
            _s("registration_number", max_length=64),
            FieldSpec("tax_id", "tax_id", max_length=64),
            FieldSpec("country", "country", required=True),
            *_ADDRESS,
            FieldSpec("website", "url"),
            FieldSpec("parent", "ref", ref_domain="legal_entity"),
            FieldSpec("is_internal", "bool"),
            FieldSpec("functional_currency", "currency"),
        ),
    ),
    "customer": DomainSpec(
        name="customer",
        model_name="Customer",
        url_name="customers",
        default_owner="crm",
        field_owners={"legal_entity": "erp", **{f: "erp" for f in _BILLING_ADDRESS}},
        fields=(
            _s("name", required=True),
            FieldSpec("legal_entity", "ref", ref_domain="legal_entity"),
            FieldSpec("parent", "ref", ref_domain="customer"),
            _s("industry", max_length=128),
            _s("segment", max_length=64),
            FieldSpec("website", "url"),
            _s("phone", max_length=64),
            FieldSpec("email_domain", "domain"),
            *_ADDRESS,
            FieldSpec("country", "country"),
            FieldSpec("account_owner_email", "email", max_length=254),
        ),
    ),
    "contract": DomainSpec(
        name="contract",
        model_name="Contract",
        url_name="contracts",
        default_owner="crm",
        field_owners={
            f: "erp"
            for f in (
                "contract_number",
                "billing_schedule",
                "revenue_treatment",
                "contracting_entity",
                "counterparty",
                "rate_card",
            )
        },
        title_fields=("contract_number", "title"),
        fields=(
            _s("contract_number", required=True, max_length=64),
            _s("title"),
            FieldSpec("customer", "ref", required=True, ref_domain="customer"),
            FieldSpec("counterparty", "ref", ref_domain="legal_entity"),
            FieldSpec("contracting_entity", "ref", ref_domain="legal_entity"),
            FieldSpec("contract_type", "enum", choices=_CONTRACT_TYPES),
            FieldSpec("currency", "currency"),
            FieldSpec("total_value", "decimal"),
            FieldSpec("start_date", "date"),
            FieldSpec("end_date", "date"),
            FieldSpec("signed_date", "date"),
            FieldSpec("rate_card", "ref", ref_domain="rate_card"),
            FieldSpec("billing_schedule", "enum", choices=_BILLING),
            FieldSpec("revenue_treatment", "enum", choices=_REVENUE),
            _s("opportunity_id", max_length=64),
        ),
    ),
    "project": DomainSpec(
        name="project",
        model_name="Project",
        url_name="projects",
        default_owner="psa",
        title_fields=("project_code", "name"),
        fields=(
            _s("project_code", required=True, max_length=64),
            _s("name", required=True),
            FieldSpec("contract", "ref", ref_domain="contract"),
            FieldSpec("customer", "ref", ref_domain="customer"),
            FieldSpec("delivery_entity", "ref", ref_domain="legal_entity"),
            FieldSpec("project_manager", "ref", ref_domain="resource"),
            FieldSpec("start_date", "date"),
            FieldSpec("end_date", "date"),
            FieldSpec("budget_hours", "decimal", max_digits=12),
            FieldSpec("budget_amount", "decimal"),
            FieldSpec("currency", "currency"),
        ),
    ),
    "resource": DomainSpec(
        name="resource",
        model_name="Resource",
        url_name="resources",
        default_owner="hr",
        title_fields=("first_name", "last_name"),
        fields=(
            _s("first_name", required=True, max_length=128),
            _s("last_name", required=True, max_length=128),
            FieldSpec("email", "email", max_length=254),
            _s("employee_number", max_length=64),
            FieldSpec("employer", "ref", ref_domain="legal_entity"),
            _s("job_title"),
            _s("grade", max_length=64),
            FieldSpec("worker_type", "enum", choices=("employee", "contractor")),
            FieldSpec("country", "country"),
            _s("city", max_length=128),
            FieldSpec("cost_rate", "decimal", max_digits=12),
            FieldSpec("cost_currency", "currency"),
            FieldSpec("capacity_hours_per_week", "decimal", max_digits=6),
            FieldSpec("skills", "list_str"),
            FieldSpec("start_date", "date"),
            FieldSpec("end_date", "date"),
            FieldSpec("date_of_birth", "date", personal=True),
            _s("national_id", personal=True, max_length=64),
            _s("address_line1", personal=True),
            _s("address_line2", personal=True),
            _s("postal_code", personal=True, max_length=32),
            _s("region", personal=True, max_length=128),
        ),
    ),
    "rate_card": DomainSpec(
        name="rate_card",
        model_name="RateCard",
        url_name="rate-cards",
        default_owner="erp",
        title_fields=("code", "name"),
        fields=(
            _s("code", required=True, max_length=64),
            _s("name"),
            FieldSpec("currency", "currency", required=True),
            FieldSpec("valid_from", "date"),
            FieldSpec("valid_to", "date"),
            FieldSpec("customer", "ref", ref_domain="customer"),
            FieldSpec("lines", "lines"),
        ),
    ),
}

assert set(DOMAINS) == set(Domain.values)

# Domains in the order references point (targets first): used by demo loading and bulk re-processing.
DOMAIN_ORDER = ["legal_entity", "customer", "rate_card", "contract", "resource", "project"]


@cache
def _field_index(domain: str) -> dict[str, FieldSpec]:
    return {f.name: f for f in DOMAINS[domain].fields}


def get_domain(name: str) -> DomainSpec:
    try:
        return DOMAINS[name]
    except KeyError:
        raise KeyError(f"unknown domain {name!r}; expected one of {', '.join(DOMAINS)}") from None
