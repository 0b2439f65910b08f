"""Canonical tables: the one schema every connector emits.

All timestamps are UTC microsecond datetimes. A value the source stores as a date
only (Salesforce ``ConvertedDate``) stays a ``Date`` in its own column. IDs are
strings. No names, phone numbers or e-mail addresses are kept; ``email_hash`` is a
salted hash used only to recognise duplicates. ``time_zone`` on leads and users is
an IANA zone from the CRM, when it has one, that overrides the org's calendar zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from connectors.values import redact_text

UTC = pl.Datetime("us", "UTC")

STAGES = ("mql", "sal", "sql", "rejected", "recycled", "opportunity", "customer")
ACTIVITY_KINDS = ("call", "email", "meeting", "sms", "task", "other")
TEAMS = ("sales", "marketing", "other")

SCHEMAS: dict[str, pl.Schema] = {
    "leads": pl.Schema(
        {
            "lead_id": pl.String,
            "created_at": UTC,
            "source": pl.String,
            "owner_id": pl.String,
            "status_raw": pl.String,
            "lifecycle_raw": pl.String,
            "score": pl.Float64,
            "account_id": pl.String,
            "is_converted": pl.Boolean,
            "converted_on": pl.Date,
            "opportunity_id": pl.String,
            "email_hash": pl.String,
            "merged_into": pl.String,
            "time_zone": pl.String,
        }
    ),
    "stage_events": pl.Schema(
        {
            "lead_id": pl.String,
            "stage": pl.String,
            "entered_at": UTC,
            "raw_value": pl.String,
            "reason": pl.String,
            "source_field": pl.String,
        }
    ),
    "owner_events": pl.Schema(
        {"lead_id": pl.String, "owner_id": pl.String, "assigned_at": UTC}
    ),
    "activities": pl.Schema(
        {
            "activity_id": pl.String,
            "lead_id": pl.String,
            "account_id": pl.String,
            "owner_id": pl.String,
            "occurred_at": UTC,
            "kind": pl.String,
            "direction": pl.String,
            "is_automated": pl.Boolean,
            "is_completed": pl.Boolean,
        }
    ),
    "opportunities": pl.Schema(
        {
            "opportunity_id": pl.String,
            "account_id": pl.String,
            "created_at": UTC,
            "close_date": pl.Date,
            "is_closed": pl.Boolean,
            "is_won": pl.Boolean,
            "amount": pl.Float64,
            "stage_raw": pl.String,
            "source": pl.String,
            "primary_campaign_id": pl.String,
            "owner_id": pl.String,
            "lead_ids": pl.List(pl.String),
        }
    ),
    "opportunity_history": pl.Schema(
        {
            "opportunity_id": pl.String,
            "stage_raw": pl.String,
            "amount": pl.Float64,
            "changed_at": UTC,
        }
    ),
    "touches": pl.Schema(
        {
            "touch_id": pl.String,
            "lead_id": pl.String,
            "account_id": pl.String,
            "campaign_id": pl.String,
            "channel": pl.String,
            "touched_at": UTC,
            "responded": pl.Boolean,
        }
    ),
    "campaigns": pl.Schema(
        {
            "campaign_id": pl.String,
            "name": pl.String,
            "channel": pl.String,
            "cost": pl.Float64,
        }
    ),
    "accounts": pl.Schema(
        {"account_id": pl.String, "is_target": pl.Boolean, "segment": pl.String}
    ),
    "users": pl.Schema(
        {
            "user_id": pl.String,
            "team": pl.String,
            "is_active": pl.Boolean,
            "deactivated_at": UTC,
            "time_zone": pl.String,
        }
    ),
}

TABLE_NAMES = tuple(SCHEMAS)


def empty(table: str) -> pl.DataFrame:
    """Return an empty frame with the canonical schema of ``table``."""
    return pl.DataFrame(schema=SCHEMAS[table])


def conform(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Cast ``frame`` to the canonical schema of ``table``, columns in order.

    Columns the schema lacks are dropped and missing ones are added as nulls, so a
    connector only builds what its source has.
    """
    schema = SCHEMAS[table]
    columns = [
        pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype)
        for name, dtype in schema.items()
    ]
    conformed = frame.select([c.alias(n) for c, n in zip(columns, schema.names())])
    free_text = FREE_TEXT_COLUMNS.get(table, ())
    return conformed.with_columns(redact_text(name) for name in free_text)


# Columns of text typed in the CRM: picklist values, rejection reasons and
# campaign names. Such text can contain a phone number or an e-mail address, so
# conform() redacts them.
FREE_TEXT_COLUMNS = {
    "leads": ("source", "status_raw", "lifecycle_raw"),
    "stage_events": ("raw_value", "reason"),
    "opportunities": ("stage_raw", "source"),
    "opportunity_history": ("stage_raw",),
    "touches": ("channel",),
    "campaigns": ("name", "channel"),
    "accounts": ("segment",),
}


@dataclass
class CanonicalTables:
    """The canonical tables of one org, plus what the source could not provide.

    ``missing`` maps a table name to the reason it is absent (a file or column the
    source did not have), so metrics can say why they are not measurable.
    ``notes`` lists facts about how values were read, such as a time zone assumed
    for zone-less timestamps. ``status_mapping`` is the mapping of ``status_raw``
    values to stages that the connector applied (``None`` when it applied none),
    so metrics judge a value mapped by the same rule the connector used.
    """

    tables: dict[str, pl.DataFrame]
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    unmapped_statuses: dict[str, int] = field(default_factory=dict)
    status_mapping: dict[str, str | None] | None = None

    def __getitem__(self, table: str) -> pl.DataFrame:
        return self.tables.get(table, empty(table))

    def has(self, table: str) -> bool:
        """Return whether the source provided ``table`` (even if it has no rows)."""
        return table in self.tables and table not in self.missing
