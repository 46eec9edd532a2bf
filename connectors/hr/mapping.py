"""HR (Workday report) ↔ canonical: workers are resources. The hub pushes nothing to HR."""

from __future__ import annotations

from typing import Any

from connectors.mapping import F, ObjectMap, date_part, to_decimal_text

WORKER_TYPES = {"employee": "employee", "regular": "employee", "contingent worker": "contractor",
                "contractor": "contractor"}  # fmt: skip


def worker_type(value: Any) -> Any:
    return WORKER_TYPES.get(str(value).strip().lower(), value)


def skills(value: Any) -> Any:
    if isinstance(value, str):
        return [s.strip() for s in value.split(";") if s.strip()]
    return value


PULL = {
    "resource": ObjectMap(
        domain="resource",
        remote_object="workers",
        fields=(
            F("employee_number", "Employee_ID"),
            F("first_name", "First_Name"),
            F("last_name", "Last_Name"),
            F("email", "Email_Address"),
            F("job_title", "Job_Title"),
            F("grade", "Grade"),
            F("worker_type", "Worker_Type", to_hub=worker_type),
            F("country", "Country_ISO_Code"),
            F("city", "City"),
            F("cost_rate", "Cost_Rate", to_hub=to_decimal_text),
            F("cost_currency", "Cost_Currency"),
            F("capacity_hours_per_week", "Weekly_Hours", to_hub=to_decimal_text),
            F("skills", "Skills", to_hub=skills),
            F("start_date", "Hire_Date", to_hub=date_part),
            F("end_date", "Termination_Date", to_hub=date_part),
        ),
    ),
}
PUSH: dict = {}
