"""Every check the data-quality gate runs, with its default severity and its fix.

A check is named ``<table>.<column>.<rule>``; the org config's ``gate.severity``
overrides a default by that name. This module imports neither polars nor
great_expectations, so the config loader can validate names cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["critical", "warning"]

# The id column of each table that has one of its own.
ID_COLUMNS = {
    "leads": "lead_id",
    "activities": "activity_id",
    "opportunities": "opportunity_id",
    "touches": "touch_id",
    "campaigns": "campaign_id",
    "accounts": "account_id",
    "users": "user_id",
}

# The timestamp that places each row in time; every row needs one.
TIME_COLUMNS = {
    "leads": "created_at",
    "stage_events": "entered_at",
    "owner_events": "assigned_at",
    "activities": "occurred_at",
    "opportunities": "created_at",
    "opportunity_history": "changed_at",
    "touches": "touched_at",
}

# Tables whose rows the handoff metrics time against the as-of moment: a row dated
# after it gives negative response times, so it stops the run.
TIMED_AGAINST_AS_OF = ("stage_events", "owner_events", "activities", "touches")

# The column whose values identify a failing row in examples: a CRM record id,
# never a personal field.
EXAMPLE_COLUMNS = {
    **ID_COLUMNS,
    "stage_events": "lead_id",
    "owner_events": "lead_id",
    "opportunity_history": "opportunity_id",
}

# The fix, in the CRM or the config, for each rule that fails.
FIXES = {
    "not_null": "Fill {column} in the CRM or include the field in the export; "
    "rows without it are left out of the metrics that need it.",
    "unique": "Merge or delete the duplicate records in the CRM, or fix the "
    "export so that each record of the {table} table appears once.",
    "not_after_as_of": "Check --as-of and calendar.time_zone in the org config: "
    "{column} values later than the as-of time mean a wrong zone or bad dates in "
    "the CRM.",
    "not_before_floor": "Correct the placeholder dates in the CRM, or set "
    "gate.earliest_date lower if such old records are real.",
    "mapped": "Map each value in the org config's stage mapping, to a stage or to "
    "null when it is not a funnel stage.",
    "in_time_order": "Sort each lead's stage events by entered_at in the canonical "
    "files; the handoff metrics read them in row order.",
    "not_before_lead_created": "Check the lead's CreatedDate and its status "
    "history times: a stage entered before the lead existed means imported history "
    "or a time-zone error.",
    "known_lead": "Export every lead these rows refer to (deleted leads are not in "
    "the export); rows on contacts that never were leads cannot be matched.",
    "known_user": "Export the User object with inactive users included, so every "
    "activity owner has a team.",
    "not_before_created": "Correct the close dates in the CRM: a deal cannot close "
    "before it was created.",
    "non_negative": "Correct the negative {column} values in the CRM.",
}


@dataclass(frozen=True)
class CheckSpec:
    """One check on one column of one canonical table."""

    table: str
    column: str
    rule: str
    severity: Severity

    @property
    def name(self) -> str:
        """The check's name in reports and in ``gate.severity``."""
        return f"{self.table}.{self.column}.{self.rule}"

    def fix(self) -> str:
        """Return what to change in the CRM or the config when this check fails."""
        return FIXES[self.rule].format(table=self.table, column=self.column)


def _catalogue() -> tuple[CheckSpec, ...]:
    specs: list[CheckSpec] = []
    for table, column in ID_COLUMNS.items():
        # Metrics join leads and users by id, so a duplicate there multiplies rows.
        severity: Severity = "critical" if table in ("leads", "users") else "warning"
        specs.append(CheckSpec(table, column, "not_null", severity))
        specs.append(CheckSpec(table, column, "unique", severity))
    for table, column in TIME_COLUMNS.items():
        future: Severity = "critical" if table in TIMED_AGAINST_AS_OF else "warning"
        specs.append(CheckSpec(table, column, "not_null", "warning"))
        specs.append(CheckSpec(table, column, "not_after_as_of", future))
        specs.append(CheckSpec(table, column, "not_before_floor", "warning"))
    specs += [
        CheckSpec("leads", "status_raw", "mapped", "warning"),
        CheckSpec("leads", "lifecycle_raw", "mapped", "warning"),
        CheckSpec("stage_events", "entered_at", "in_time_order", "warning"),
        CheckSpec("stage_events", "entered_at", "not_before_lead_created", "warning"),
        CheckSpec("stage_events", "lead_id", "known_lead", "warning"),
        CheckSpec("owner_events", "lead_id", "known_lead", "warning"),
        CheckSpec("activities", "lead_id", "known_lead", "warning"),
        CheckSpec("touches", "lead_id", "known_lead", "warning"),
        CheckSpec("activities", "owner_id", "known_user", "warning"),
        CheckSpec("opportunities", "close_date", "not_before_created", "warning"),
        CheckSpec("opportunities", "amount", "non_negative", "warning"),
        CheckSpec("opportunity_history", "amount", "non_negative", "warning"),
        CheckSpec("campaigns", "cost", "non_negative", "warning"),
    ]
    return tuple(specs)


CATALOGUE = _catalogue()
CHECK_NAMES = tuple(spec.name for spec in CATALOGUE)
