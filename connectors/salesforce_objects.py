"""Salesforce objects (API field names, values as text) to canonical tables.

Both the export-folder reader and the API connector hand their raw object frames
to :func:`canonical_from_objects`, so a record gives the same canonical row
whichever way it was read. Every raw column is a string column, as it is in an
export CSV or a Bulk API result; this module does all typing.
"""

from __future__ import annotations

import polars as pl

from config.models import OrgConfig
from connectors.schema import CanonicalTables, conform, empty
from connectors.values import (
    hash_email,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_number,
    redact_counts,
    redact_free_text,
)

# User and queue ids: LeadHistory owner changes come as a names row and an ids row.
OWNER_ID_PATTERN = r"^(005|00G)[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$"
CONTACT_ID_PREFIX = "003"

# The columns read from each object; everything else (names, phones, addresses,
# free text) is dropped when read. Custom fields named in the org config are added.
FIELDS: dict[str, tuple[str, ...]] = {
    "Lead": (
        "Id", "CreatedDate", "Status", "OwnerId", "LeadSource", "IsConverted",
        "ConvertedDate", "ConvertedAccountId", "ConvertedContactId",
        "ConvertedOpportunityId", "IsDeleted", "Email", "MasterRecordId",
        "SystemModstamp", "LastModifiedDate",
    ),
    "LeadHistory": ("Id", "LeadId", "CreatedDate", "Field", "OldValue", "NewValue", "IsDeleted"),
    "Task": (
        "Id", "WhoId", "WhatId", "AccountId", "OwnerId", "CreatedDate",
        "CompletedDateTime", "TaskSubtype", "Type", "Status", "IsClosed", "CallType",
        "IsDeleted", "SystemModstamp",
    ),
    "Event": (
        "Id", "WhoId", "WhatId", "AccountId", "OwnerId", "CreatedDate", "StartDateTime",
        "ActivityDateTime", "EventSubtype", "Type", "IsDeleted", "SystemModstamp",
    ),
    "Opportunity": (
        "Id", "AccountId", "CreatedDate", "CloseDate", "IsClosed", "IsWon", "Amount",
        "StageName", "LeadSource", "CampaignId", "OwnerId", "IsDeleted", "SystemModstamp",
    ),
    "OpportunityHistory": ("Id", "OpportunityId", "CreatedDate", "StageName", "Amount", "IsDeleted"),
    "OpportunityContactRole": ("Id", "OpportunityId", "ContactId", "IsPrimary", "IsDeleted"),
    "Contact": ("Id", "AccountId", "CreatedDate", "IsDeleted", "SystemModstamp"),
    "Account": ("Id", "IsDeleted", "SystemModstamp"),
    "Campaign": ("Id", "Name", "Type", "ActualCost", "IsDeleted"),
    "CampaignMember": (
        "Id", "CampaignId", "LeadId", "ContactId", "CreatedDate", "FirstRespondedDate",
        "HasResponded", "IsDeleted",
    ),
    "User": (
        "Id", "IsActive", "Department", "UserType", "LastModifiedDate", "TimeZoneSidKey",
    ),
}  # fmt: skip

OBJECT_NAMES = tuple(FIELDS)

# The fields each object cannot be used without.
REQUIRED: dict[str, tuple[str, ...]] = {
    "Lead": ("Id", "Status"),
    "LeadHistory": ("LeadId", "CreatedDate", "Field", "NewValue"),
    "Task": ("Id", "WhoId", "OwnerId", "CreatedDate"),
    "Event": ("Id", "WhoId", "OwnerId"),
    "Opportunity": ("Id",),
    "OpportunityHistory": ("OpportunityId", "CreatedDate", "StageName"),
    "OpportunityContactRole": ("OpportunityId", "ContactId"),
    "Contact": ("Id",),
    "Account": ("Id",),
    "Campaign": ("Id",),
    "CampaignMember": ("CampaignId",),
    "User": ("Id",),
}

_ACTIVITY_KIND_BY_SUBTYPE = {
    "call": "call",
    "email": "email",
    "listemail": "email",
    "cadence": "email",
    "linkedin": "other",
    "task": "task",
    "event": "meeting",
}
_ACTIVITY_KIND_BY_TYPE = {
    "call": "call",
    "email": "email",
    "meeting": "meeting",
    "sms": "sms",
    "text": "sms",
}


def wanted_fields(obj: str, config: OrgConfig) -> tuple[str, ...]:
    """Return the API fields read from ``obj``: the fixed ones plus configured custom ones."""
    extra: list[str] = []
    names = config.fields
    if obj == "Lead":
        custom = (names.lead_score, names.rejection_reason, names.mql_date, names.lead_time_zone)
        extra = [n for n in custom if n]
    elif obj == "Account" and names.target_account:
        extra = [names.target_account]
    return FIELDS[obj] + tuple(f for f in extra if f not in FIELDS[obj])


class _Reader:
    """Typed access to one raw object frame, with file-and-row errors."""

    def __init__(self, name: str, frame: pl.DataFrame, source: str, config: OrgConfig):
        self.name = name
        self.frame = frame
        self.source = source
        self.config = config
        self.zoneless: dict[str, int] = {}

    def has(self, column: str) -> bool:
        return column in self.frame.columns

    def text(self, column: str) -> pl.Series:
        if not self.has(column):
            return pl.Series(column, [None] * self.frame.height, dtype=pl.String)
        values = self.frame[column].str.strip_chars()
        return values.replace("", None)

    def when(self, column: str) -> pl.Series:
        if not self.has(column):
            return pl.Series(
                column, [None] * self.frame.height, dtype=pl.Datetime("us", "UTC")
            )
        series, forms = parse_datetime(
            self.frame,
            column,
            source=self.source,
            time_zone=self.config.calendar.time_zone,
            date_order=self.config.source.locale_date_order,
        )
        for form, count in forms.items():
            if count:
                self.zoneless[f"{self.name}.{column} ({form.replace('_', ' ')})"] = (
                    count
                )
        return series

    def date(self, column: str) -> pl.Series:
        if not self.has(column):
            return pl.Series(column, [None] * self.frame.height, dtype=pl.Date)
        return parse_date(
            self.frame, column, source=self.source,
            date_order=self.config.source.locale_date_order,
        )  # fmt: skip

    def flag(self, column: str) -> pl.Series:
        if not self.has(column):
            return pl.Series(column, [None] * self.frame.height, dtype=pl.Boolean)
        return parse_bool(self.frame, column, source=self.source)

    def number(self, column: str) -> pl.Series:
        if not self.has(column):
            return pl.Series(column, [None] * self.frame.height, dtype=pl.Float64)
        return parse_number(self.frame, column, source=self.source)


def _without_deleted(reader: _Reader) -> _Reader:
    if not reader.has("IsDeleted"):
        return reader
    deleted = reader.flag("IsDeleted").fill_null(False)
    reader.frame = reader.frame.filter(~deleted)
    return reader


def canonical_from_objects(
    objects: dict[str, pl.DataFrame],
    config: OrgConfig,
    *,
    origin: str = "",
    suffix: str = "",
    salt: str = "revalign",
) -> CanonicalTables:
    """Build the canonical tables from raw Salesforce object frames.

    ``objects`` maps an object API name to a frame of string columns named by API
    field. A missing object or field leaves the tables that need it marked missing
    with the reason. Error messages name an object as ``origin + name + suffix``,
    such as ``export/Lead.csv``.
    """
    readers = {
        name: _without_deleted(_Reader(name, frame, f"{origin}{name}{suffix}", config))
        for name, frame in objects.items()
    }
    mapping = config.stages.resolved()
    result = CanonicalTables(tables={}, status_mapping=mapping)

    lead = readers["Lead"]
    leads = _leads(lead, salt, config)
    result.tables["leads"] = leads
    if not lead.has("CreatedDate"):
        result.missing["leads.created_at"] = "Lead has no CreatedDate column"

    contact_to_lead = leads.select(
        contact_id=pl.Series(lead.text("ConvertedContactId")), lead_id="lead_id"
    ).drop_nulls()

    _stage_and_owner_events(readers, leads, mapping, result)
    _activities(readers, contact_to_lead, config, result)
    _opportunities(readers, leads, contact_to_lead, result)
    _marketing(readers, contact_to_lead, result)
    _accounts_and_users(readers, config, result)

    for reader in readers.values():
        for column, count in reader.zoneless.items():
            result.notes.append(
                f"{column}: {count} value(s) had no time zone; read in the org's "
                f"time zone {config.calendar.time_zone}"
            )
    result.counts = {name: reader.frame.height for name, reader in readers.items()}
    return result


def _leads(lead: _Reader, salt: str, config: OrgConfig) -> pl.DataFrame:
    names = config.fields
    email = lead.text("Email")
    frame = pl.DataFrame(
        {
            "lead_id": lead.text("Id"),
            "created_at": lead.when("CreatedDate"),
            "source": lead.text("LeadSource"),
            "owner_id": lead.text("OwnerId"),
            "status_raw": lead.text("Status"),
            "score": lead.number(names.lead_score) if names.lead_score else None,
            "account_id": lead.text("ConvertedAccountId"),
            "is_converted": lead.flag("IsConverted"),
            "converted_on": lead.date("ConvertedDate"),
            "opportunity_id": lead.text("ConvertedOpportunityId"),
            "merged_into": lead.text("MasterRecordId"),
            "time_zone": lead.text(names.lead_time_zone) if names.lead_time_zone else None,
        },
        strict=False,
    ).with_columns(email_hash=hash_email(pl.lit(email), salt))
    if names.rejection_reason:
        frame = frame.with_columns(_reason=lead.text(names.rejection_reason))
    if names.mql_date:
        frame = frame.with_columns(_mql_at=lead.when(names.mql_date))
    return frame


def _stage_and_owner_events(
    readers: dict[str, _Reader],
    leads: pl.DataFrame,
    mapping: dict[str, str | None],
    result: CanonicalTables,
) -> None:
    history = readers.get("LeadHistory")
    statuses = leads.select(raw=pl.col("status_raw"))
    stage_frames = []
    if history is None:
        result.missing["stage_events"] = "no LeadHistory file, so no status history"
        result.missing["owner_events"] = "no LeadHistory file, so no owner history"
    else:
        frame = pl.DataFrame(
            {
                "lead_id": history.text("LeadId"),
                "at": history.when("CreatedDate"),
                "field": history.text("Field"),
                "old": history.text("OldValue"),
                "new": history.text("NewValue"),
            }
        )
        status_rows = frame.filter(pl.col("field") == "Status")
        statuses = pl.concat([statuses, status_rows.select(raw=pl.col("new"))])
        stage_frames.append(
            status_rows.select(
                "lead_id",
                stage=pl.col("new").replace_strict(
                    mapping, default=None, return_dtype=pl.String
                ),
                entered_at="at",
                raw_value="new",
                source_field=pl.lit("LeadHistory.Status"),
            )
        )
        owner_rows = frame.filter(
            pl.col("field").is_in(["Owner", "ownerAssignment"])
            & pl.col("new").str.contains(OWNER_ID_PATTERN)
        ).sort("lead_id", "at")
        first_owner = owner_rows.group_by("lead_id").agg(
            pl.col("old").first().alias("first")
        )
        initial = (
            leads.select("lead_id", "created_at", "owner_id")
            .join(first_owner, on="lead_id", how="left")
            .select(
                "lead_id",
                owner_id=pl.when(pl.col("first").str.contains(OWNER_ID_PATTERN))
                .then("first")
                .when(pl.col("first").is_null())
                .then("owner_id"),
                assigned_at="created_at",
            )
            .drop_nulls()
        )
        changes = owner_rows.select("lead_id", owner_id="new", assigned_at="at")
        result.tables["owner_events"] = conform(
            "owner_events", pl.concat([initial, changes]).sort("lead_id", "assigned_at")
        )

    if "_mql_at" in leads.columns:
        stage_frames.append(
            leads.filter(pl.col("_mql_at").is_not_null()).select(
                "lead_id",
                stage=pl.lit("mql"),
                entered_at="_mql_at",
                raw_value=pl.lit(None, pl.String),
                source_field=pl.lit("Lead MQL date field"),
            )
        )
    if stage_frames:
        events = (
            pl.concat(stage_frames)
            .filter(pl.col("stage").is_not_null() & pl.col("entered_at").is_not_null())
            .unique(["lead_id", "stage", "entered_at"], keep="first")
            .sort("lead_id", "entered_at")
        )
        if "_reason" in leads.columns:
            events = _attach_rejection_reasons(events, leads)
        result.tables["stage_events"] = conform("stage_events", events)

    counts = statuses.drop_nulls().group_by("raw").len()
    unmapped = counts.filter(~pl.col("raw").is_in(list(mapping)))
    found = dict(zip(unmapped["raw"], unmapped["len"]))
    result.unmapped_statuses = redact_counts(found)
    result.tables["leads"] = conform("leads", leads)


def _attach_rejection_reasons(
    events: pl.DataFrame, leads: pl.DataFrame
) -> pl.DataFrame:
    """Put the lead's current rejection reason on its last rejection event.

    The export holds only the field's current value, which belongs to the most
    recent rejection.
    """
    last_rejection = (
        events.filter(pl.col("stage") == "rejected")
        .group_by("lead_id")
        .agg(pl.col("entered_at").max())
        .join(leads.select("lead_id", reason="_reason"), on="lead_id")
    )
    return events.join(last_rejection, on=["lead_id", "entered_at"], how="left")


def _activity_kind(subtype: pl.Expr, kind: pl.Expr) -> pl.Expr:
    by_subtype = subtype.str.to_lowercase().replace_strict(
        _ACTIVITY_KIND_BY_SUBTYPE, default=None, return_dtype=pl.String
    )
    by_type = kind.str.to_lowercase().replace_strict(
        _ACTIVITY_KIND_BY_TYPE, default=None, return_dtype=pl.String
    )
    return (
        pl.when(by_subtype.is_in(["task", "other"]) | by_subtype.is_null())
        .then(pl.coalesce(by_type, by_subtype, pl.lit("other")))
        .otherwise(by_subtype)
    )


def _who_to_lead(who: pl.Expr, contact_to_lead: pl.DataFrame) -> pl.Expr:
    lookup = dict(zip(contact_to_lead["contact_id"], contact_to_lead["lead_id"]))
    return who.replace(lookup)


def _activities(
    readers: dict[str, _Reader],
    contact_to_lead: pl.DataFrame,
    config: OrgConfig,
    result: CanonicalTables,
) -> None:
    task, event = readers.get("Task"), readers.get("Event")
    if task is None and event is None:
        result.missing["activities"] = "no Task or Event file, so no sales activities"
        return
    automated = list(config.sla.automated_subtypes)
    frames = []
    if task is not None:
        subtype = pl.Series("subtype", task.text("TaskSubtype"))
        closed = task.flag("IsClosed")
        status = pl.Series(task.text("Status"))
        frames.append(
            pl.DataFrame(
                {
                    "activity_id": task.text("Id"),
                    "who": task.text("WhoId"),
                    "account_id": task.text("AccountId"),
                    "owner_id": task.text("OwnerId"),
                    "created": task.when("CreatedDate"),
                    "completed": task.when("CompletedDateTime"),
                    "subtype": subtype,
                    "type": task.text("Type"),
                    "direction": task.text("CallType"),
                    "closed": closed,
                    "status": status,
                }
            ).select(
                "activity_id",
                "who",
                "account_id",
                "owner_id",
                occurred_at=pl.coalesce("completed", "created"),
                kind=_activity_kind(pl.col("subtype"), pl.col("type")),
                direction=pl.col("direction").str.to_lowercase(),
                is_automated=pl.col("subtype").is_in(automated).fill_null(False),
                is_completed=pl.coalesce(
                    pl.col("closed"), pl.col("status").str.to_lowercase() == "completed"
                ).fill_null(False),
            )
        )
    if event is not None:
        frames.append(
            pl.DataFrame(
                {
                    "activity_id": event.text("Id"),
                    "who": event.text("WhoId"),
                    "account_id": event.text("AccountId"),
                    "owner_id": event.text("OwnerId"),
                    "start": event.when("StartDateTime"),
                    "activity": event.when("ActivityDateTime"),
                    "created": event.when("CreatedDate"),
                }
            ).select(
                "activity_id",
                "who",
                "account_id",
                "owner_id",
                occurred_at=pl.coalesce("start", "activity", "created"),
                kind=pl.lit("meeting"),
                direction=pl.lit(None, pl.String),
                is_automated=pl.lit(False),
                is_completed=pl.lit(True),
            )
        )
    activities = pl.concat(frames, how="vertical_relaxed").with_columns(
        lead_id=_who_to_lead(pl.col("who"), contact_to_lead)
    )
    result.tables["activities"] = conform("activities", activities)
    if task is None:
        result.notes.append("no Task file: calls and e-mails are missing, only events")
    if event is None:
        result.notes.append("no Event file: meetings are missing, only tasks")


def _opportunities(
    readers: dict[str, _Reader],
    leads: pl.DataFrame,
    contact_to_lead: pl.DataFrame,
    result: CanonicalTables,
) -> None:
    opp = readers.get("Opportunity")
    if opp is None:
        result.missing["opportunities"] = "no Opportunity file"
        return
    frame = pl.DataFrame(
        {
            "opportunity_id": opp.text("Id"),
            "account_id": opp.text("AccountId"),
            "created_at": opp.when("CreatedDate"),
            "close_date": opp.date("CloseDate"),
            "is_closed": opp.flag("IsClosed"),
            "is_won": opp.flag("IsWon"),
            "amount": opp.number("Amount"),
            "stage_raw": opp.text("StageName"),
            "source": opp.text("LeadSource"),
            "primary_campaign_id": opp.text("CampaignId"),
            "owner_id": opp.text("OwnerId"),
        }
    )
    from_leads = (
        leads.filter(pl.col("opportunity_id").is_not_null())
        .group_by("opportunity_id")
        .agg(pl.col("lead_id"))
    )
    roles = readers.get("OpportunityContactRole")
    if roles is not None:
        from_roles = (
            pl.DataFrame(
                {
                    "opportunity_id": roles.text("OpportunityId"),
                    "contact_id": roles.text("ContactId"),
                }
            )
            .join(contact_to_lead, on="contact_id")
            .select("opportunity_id", "lead_id")
        )
        from_leads = (
            pl.concat([from_leads.explode("lead_id"), from_roles])
            .unique()
            .group_by("opportunity_id")
            .agg(pl.col("lead_id").sort())
        )
    frame = frame.join(
        from_leads.rename({"lead_id": "lead_ids"}), on="opportunity_id", how="left"
    )
    result.tables["opportunities"] = conform("opportunities", frame)

    history = readers.get("OpportunityHistory")
    if history is None:
        result.missing["opportunity_history"] = "no OpportunityHistory file"
    else:
        result.tables["opportunity_history"] = conform(
            "opportunity_history",
            pl.DataFrame(
                {
                    "opportunity_id": history.text("OpportunityId"),
                    "stage_raw": history.text("StageName"),
                    "amount": history.number("Amount"),
                    "changed_at": history.when("CreatedDate"),
                }
            ),
        )


def _marketing(
    readers: dict[str, _Reader], contact_to_lead: pl.DataFrame, result: CanonicalTables
) -> None:
    campaign = readers.get("Campaign")
    if campaign is None:
        result.missing["campaigns"] = "no Campaign file"
    else:
        result.tables["campaigns"] = conform(
            "campaigns",
            pl.DataFrame(
                {
                    "campaign_id": campaign.text("Id"),
                    "name": campaign.text("Name"),
                    "channel": campaign.text("Type"),
                    "cost": campaign.number("ActualCost"),
                }
            ),
        )
    member = readers.get("CampaignMember")
    if member is None:
        result.missing["touches"] = "no CampaignMember file, so no marketing touches"
        return
    channels = result.tables.get("campaigns", empty("campaigns")).select(
        "campaign_id", "channel"
    )
    responded_on = member.date("FirstRespondedDate")
    touches = pl.DataFrame(
        {
            "touch_id": member.text("Id"),
            "campaign_id": member.text("CampaignId"),
            "who": pl.Series(member.text("LeadId")).fill_null(
                pl.Series(member.text("ContactId"))
            ),
            "touched_at": member.when("CreatedDate"),
            "responded": member.flag("HasResponded"),
            "responded_on": responded_on,
        }
    ).with_columns(lead_id=_who_to_lead(pl.col("who"), contact_to_lead))
    touches = touches.join(channels, on="campaign_id", how="left")
    result.tables["touches"] = conform("touches", touches)


def _accounts_and_users(
    readers: dict[str, _Reader], config: OrgConfig, result: CanonicalTables
) -> None:
    account = readers.get("Account")
    if account is None:
        result.missing["accounts"] = "no Account file"
    else:
        target_field = config.fields.target_account
        is_target = (
            account.flag(target_field)
            if target_field and account.has(target_field)
            else None
        )
        if target_field and not account.has(target_field):
            result.notes.append(
                f"Account has no {target_field} column: no target-account list"
            )
        result.tables["accounts"] = conform(
            "accounts",
            pl.DataFrame(
                {"account_id": account.text("Id"), "is_target": is_target}, strict=False
            ),
        )
    user = readers.get("User")
    if user is None:
        result.missing["users"] = "no User file, so teams and active reps are unknown"
        return
    # Departments are typed by hand in most orgs, so case and spaces are ignored.
    department_map = {
        name.strip().casefold(): team for name, team in config.teams.department.items()
    }
    user_map = config.teams.users
    users = pl.DataFrame(
        {
            "user_id": user.text("Id"),
            "department": user.text("Department"),
            "is_active": user.flag("IsActive"),
            "modified_at": user.when("LastModifiedDate"),
            "time_zone": user.text("TimeZoneSidKey"),
        }
    ).with_columns(
        # Deactivating a user is a change to the record, so an inactive user's last
        # modification is the latest moment the deactivation can have happened.
        deactivated_at=pl.when(~pl.col("is_active")).then("modified_at"),
        team=pl.coalesce(
            pl.col("user_id").replace_strict(
                user_map, default=None, return_dtype=pl.String
            ),
            pl.col("department")
            .str.strip_chars()
            .str.to_lowercase()
            .replace_strict(department_map, default=None, return_dtype=pl.String),
            pl.lit("other"),
        )
    )
    unmapped = (
        users.filter(
            pl.col("department").is_not_null()
            & ~pl.col("user_id").is_in(list(user_map))
            & ~pl.col("department").str.strip_chars().str.to_lowercase().is_in(
                list(department_map)
            )
        )
        .group_by("department")
        .len()
        .sort(["len", "department"], descending=[True, False])
    )
    if not unmapped.is_empty():
        listed = ", ".join(
            f"{redact_free_text(name)!r} ({count})"
            for name, count in unmapped.iter_rows()
        )
        result.notes.append(
            f"User departments no team mapping covers (users in each): {listed}; "
            "they count as team 'other', so their touches are not sales touches. "
            "Map them under teams.department in the org config"
        )
    result.tables["users"] = conform("users", users)
