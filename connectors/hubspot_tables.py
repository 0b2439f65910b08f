"""HubSpot raw frames to canonical tables: the entry point and the non-contact objects.

Engagements become activities, deals become opportunities with their stage
history, owners become users, companies become accounts. Contacts are handled
in :mod:`connectors.hubspot_contacts`. Owner ids are the user ids of the
canonical tables, since engagements, contacts and deals refer to owners.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from config.models import OrgConfig
from connectors import hubspot_contacts as contacts_module
from connectors.hubspot_extract import ENGAGEMENT_DETAILS, RawPortal
from connectors.hubspot_values import (
    blank_to_null,
    bool_expr,
    date_expr,
    parse_numbers,
    parse_times,
)
from connectors.schema import CanonicalTables, conform
from connectors.values import redact_counts

EMAIL_DIRECTIONS = {
    "EMAIL": "outbound",
    "FORWARDED_EMAIL": "outbound",
    "DRAFT_EMAIL": "outbound",
    "INCOMING_EMAIL": "inbound",
}
EMAIL_NOT_SENT = ("FAILED", "SCHEDULED", "SENDING", "BOUNCED")
FAR_FUTURE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


def canonical_from_portal(raw: RawPortal, config: OrgConfig) -> CanonicalTables:
    """Build the canonical tables from a portal's raw frames.

    Raises:
        InputError: a date or number property contains an invalid value.
    """
    time_zone = config.hubspot.time_zone or config.calendar.time_zone
    result = CanonicalTables(tables={})
    date_only: dict[str, int] = {}

    contacts = blank_to_null(raw.objects["contacts"])
    mapping = contacts_module.people(contacts)
    history = contacts_module.contact_history(raw, mapping, time_zone)
    leads, records, counted = contacts_module.leads_frame(
        contacts, mapping, config, time_zone
    )
    date_only |= {f"contacts.{k}": v for k, v in counted.items()}
    events, counted = contacts_module.stage_events(
        raw, history, mapping, config, time_zone
    )
    date_only |= {f"contacts.{k}": v for k, v in counted.items()}
    events = contacts_module.attach_reasons(events, history, contacts, config)

    opportunities, opportunity_history = _deals(raw, mapping, time_zone)
    leads = _with_conversions(leads, opportunities, time_zone)
    result.tables["leads"] = conform("leads", leads)
    result.tables["stage_events"] = conform("stage_events", events)
    result.tables["owner_events"] = conform(
        "owner_events", contacts_module.owner_events(history, records)
    )
    result.tables["activities"] = conform(
        "activities", _activities(raw, mapping, leads, config, time_zone)
    )
    result.tables["opportunities"] = conform("opportunities", opportunities)
    result.tables["opportunity_history"] = conform(
        "opportunity_history", opportunity_history
    )
    result.tables["users"] = conform("users", _users(raw.owners, config))
    result.tables["accounts"] = conform("accounts", _accounts(raw, config))
    _marketing(raw, history, leads, time_zone, result)

    result.unmapped_statuses = redact_counts(
        contacts_module.unmapped_values(contacts, history, config)
    )
    result.status_mapping = config.hubspot.stages.resolved()[1]
    result.counts = {name: frame.height for name, frame in raw.objects.items()}
    _describe(raw, config, mapping, date_only, time_zone, result)
    return result


def _activities(
    raw: RawPortal,
    mapping: pl.DataFrame,
    leads: pl.DataFrame,
    config: OrgConfig,
    time_zone: str,
) -> pl.DataFrame:
    frames = []
    for object_type in ENGAGEMENT_DETAILS:
        frame = blank_to_null(raw.objects[object_type])
        frame, _ = parse_times(
            frame,
            ["hs_timestamp", "hs_task_completion_date"],
            object_type=object_type,
            time_zone=time_zone,
        )
        typed = frame.select(
            "id",
            owner_id="hubspot_owner_id",
            occurred_at=_occurred_at(object_type),
            kind=_kind(object_type, config),
            direction=_direction(object_type),
            is_automated=pl.col("hs_engagement_source")
            .is_in(list(config.hubspot.engagements.automated_sources))
            .fill_null(False),
            is_completed=_completed(object_type, config, raw.extracted_at),
        )
        frames.append(typed)
    activities = pl.concat(frames)
    links = pl.concat(raw.links[f"{t}>contacts"] for t in ENGAGEMENT_DETAILS)
    with_leads = (
        activities.join(links, left_on="id", right_on="from_id", how="left")
        .join(mapping, left_on="to_id", right_on="id", how="left")
        .rename({"person": "lead_id"})
        .unique(["id", "lead_id"], maintain_order=True)
        .join(leads.select("lead_id", "account_id"), on="lead_id", how="left")
    )
    shared = pl.col("id").count().over("id") > 1
    return with_leads.with_columns(
        activity_id=pl.when(shared)
        .then(pl.col("id") + pl.lit(":") + pl.col("lead_id").fill_null(""))
        .otherwise(pl.col("id"))
    )


def _occurred_at(object_type: str) -> pl.Expr:
    if object_type == "tasks":
        done = pl.col("hs_task_status") == "COMPLETED"
        return (
            pl.when(done)
            .then(pl.coalesce("hs_task_completion_date", "hs_timestamp"))
            .otherwise(pl.col("hs_timestamp"))
        )
    return pl.col("hs_timestamp")


def _kind(object_type: str, config: OrgConfig) -> pl.Expr:
    fixed = {"calls": "call", "emails": "email", "meetings": "meeting", "tasks": "task"}
    if object_type in fixed:
        return pl.lit(fixed[object_type])
    kinds = config.hubspot.engagements.communication_kinds
    return pl.col("hs_communication_channel_type").replace_strict(
        kinds, default="other", return_dtype=pl.String
    )


def _direction(object_type: str) -> pl.Expr:
    if object_type == "calls":
        return pl.col("hs_call_direction").str.to_lowercase()
    if object_type == "emails":
        return pl.col("hs_email_direction").replace_strict(
            EMAIL_DIRECTIONS, default=None, return_dtype=pl.String
        )
    return pl.lit(None, pl.String)


def _completed(
    object_type: str, config: OrgConfig, extracted_at: dt.datetime
) -> pl.Expr:
    """Return whether the engagement took place (not planned, failed or missed)."""
    settings = config.hubspot.engagements
    match object_type:
        case "calls":
            status = pl.col("hs_call_status")
            return status.is_null() | status.is_in(
                list(settings.call_completed_statuses)
            )
        case "emails":
            sent = ~pl.col("hs_email_status").is_in(list(EMAIL_NOT_SENT)).fill_null(
                False
            )
            return sent & (pl.col("hs_email_direction").fill_null("") != "DRAFT_EMAIL")
        case "meetings":
            held = ~pl.col("hs_meeting_outcome").is_in(
                list(settings.meeting_missed_outcomes)
            )
            return held.fill_null(True) & (pl.col("hs_timestamp") <= extracted_at)
        case "tasks":
            return (pl.col("hs_task_status") == "COMPLETED").fill_null(False)
    return pl.lit(True)


def _deals(
    raw: RawPortal, mapping: pl.DataFrame, time_zone: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    deals = blank_to_null(raw.objects["deals"]).with_columns(
        close_date=date_expr("closedate", time_zone)
    )
    deals, _ = parse_times(
        deals, ["createdate"], object_type="deals", time_zone=time_zone
    )
    deals = parse_numbers(deals, ["amount"], object_type="deals")
    stages = raw.deal_stages.unique("stage_id", keep="first")
    companies = (
        raw.links["deals>companies"]
        .sort("from_id", "to_id")
        .group_by("from_id")
        .agg(account_id=pl.col("to_id").first())
    )
    contacts = (
        raw.links["deals>contacts"]
        .join(mapping, left_on="to_id", right_on="id")
        .group_by("from_id")
        .agg(lead_ids=pl.col("person").unique().sort())
    )
    stage_won = pl.col("is_closed") & (pl.col("probability") >= 1.0)
    opportunities = (
        deals.join(stages, left_on="dealstage", right_on="stage_id", how="left")
        .join(companies, left_on="id", right_on="from_id", how="left")
        .join(contacts, left_on="id", right_on="from_id", how="left")
        .select(
            opportunity_id="id",
            account_id="account_id",
            created_at="createdate",
            close_date="close_date",
            is_closed=pl.coalesce("is_closed", bool_expr("hs_is_closed")),
            is_won=pl.coalesce(stage_won, bool_expr("hs_is_closed_won")),
            amount="amount",
            stage_raw=pl.coalesce("stage_label", "dealstage"),
            source="hs_analytics_source",
            owner_id="hubspot_owner_id",
            lead_ids="lead_ids",
        )
    )
    return opportunities, _deal_history(raw, stages)


def _deal_history(raw: RawPortal, stages: pl.DataFrame) -> pl.DataFrame:
    history = blank_to_null(raw.history.get("deals", pl.DataFrame(schema={
        "id": pl.String, "property": pl.String, "value": pl.String,
        "at": pl.Datetime("us", "UTC")})))  # fmt: skip
    amounts = parse_numbers(
        history.filter(pl.col("property") == "amount").select(
            "id", "at", amount="value"
        ),
        ["amount"],
        object_type="deals",
    ).sort("at")
    moves = history.filter(
        (pl.col("property") == "dealstage") & pl.col("value").is_not_null()
    )
    return (
        moves.sort("at")
        .join_asof(
            amounts, on="at", by="id", strategy="backward", check_sortedness=False
        )
        .join(
            stages.select("stage_id", "stage_label"),
            left_on="value",
            right_on="stage_id",
            how="left",
        )
        .select(
            opportunity_id="id",
            stage_raw=pl.coalesce("stage_label", "value"),
            amount="amount",
            changed_at="at",
        )
        .sort("opportunity_id", "changed_at")
    )


def _with_conversions(
    leads: pl.DataFrame, opportunities: pl.DataFrame, time_zone: str
) -> pl.DataFrame:
    """Mark a lead converted on the creation date of its first associated deal."""
    first_deal = (
        opportunities.select("opportunity_id", "created_at", "lead_ids")
        .explode("lead_ids")
        .drop_nulls("lead_ids")
        .sort("created_at", "opportunity_id")
        .group_by("lead_ids", maintain_order=True)
        .first()
        .select(
            lead_id="lead_ids",
            opportunity_id="opportunity_id",
            converted_on=pl.col("created_at").dt.convert_time_zone(time_zone).dt.date(),
        )
    )
    return leads.join(first_deal, on="lead_id", how="left").with_columns(
        is_converted=pl.col("opportunity_id").is_not_null()
    )


def _users(owners: pl.DataFrame, config: OrgConfig) -> pl.DataFrame:
    """Return owners as users, with the team of the owner id, else of a team name."""
    by_name = (
        config.hubspot.teams
        if config.hubspot.teams is not None
        else config.teams.department
    )
    from_teams = (
        owners.select("owner_id", team_name="teams")
        .explode("team_name")
        .with_columns(
            team=pl.col("team_name").replace_strict(
                by_name, default=None, return_dtype=pl.String
            )
        )
        .drop_nulls("team")
        .group_by("owner_id", maintain_order=True)
        .agg(pl.col("team").first().alias("named_team"))
    )
    return owners.join(from_teams, on="owner_id", how="left").select(
        user_id="owner_id",
        team=pl.coalesce(
            pl.col("owner_id").replace_strict(
                config.teams.users, default=None, return_dtype=pl.String
            ),
            "named_team",
            pl.lit("other"),
        ),
        is_active=~pl.col("archived"),
        deactivated_at=pl.when(pl.col("archived")).then(pl.col("updated_at")),
    )


def _accounts(raw: RawPortal, config: OrgConfig) -> pl.DataFrame:
    companies = blank_to_null(raw.objects["companies"])
    target = config.hubspot.properties.target_account
    if not target or target not in companies.columns:
        return companies.select(account_id="id")
    return companies.select(account_id="id", is_target=bool_expr(target))


def _marketing(
    raw: RawPortal,
    history: pl.DataFrame,
    leads: pl.DataFrame,
    time_zone: str,
    result: CanonicalTables,
) -> None:
    result.missing["campaigns"] = (
        "HubSpot campaigns are not read; marketing touches come from form "
        "conversions and marketing e-mail sends"
    )
    names = [
        n for n in contacts_module.TOUCH_PROPERTIES if _defined(raw, "contacts", n)
    ]
    if not names:
        result.missing["touches"] = (
            "the portal defines neither recent_conversion_date nor "
            "hs_email_last_send_date on contacts, so no marketing touches"
        )
        return
    touches = contacts_module.touches(history, time_zone, names).join(
        leads.select("lead_id", "account_id"), on="lead_id", how="left"
    )
    result.tables["touches"] = conform("touches", touches)


def _defined(raw: RawPortal, object_type: str, name: str) -> bool:
    definitions = raw.definitions
    return not definitions.filter(
        (pl.col("object_type") == object_type) & (pl.col("name") == name)
    ).is_empty()


def _describe(
    raw: RawPortal,
    config: OrgConfig,
    mapping: pl.DataFrame,
    date_only: dict[str, int],
    time_zone: str,
    result: CanonicalTables,
) -> None:
    names = config.hubspot.properties
    configured = [
        ("contacts", names.lead_score, "hubspot.properties.lead_score"),
        ("contacts", names.rejection_reason, "hubspot.properties.rejection_reason"),
        ("contacts", names.lead_source, "hubspot.properties.lead_source"),
        ("companies", names.target_account, "hubspot.properties.target_account"),
    ]
    for object_type, name, key in configured:
        if name and not _defined(raw, object_type, name):
            result.notes.append(
                f"{object_type} property {name!r} ({key}) is not defined in the "
                f"portal; its values are missing"
            )
    for column, count in date_only.items():
        result.notes.append(
            f"{column}: {count} value(s) were dates only; read as midnight in the "
            f"portal's time zone {time_zone}"
        )
    merged = mapping.filter(pl.col("id") != pl.col("person")).height
    if merged:
        result.notes.append(
            f"{merged} merged contact record(s) folded into their survivors"
        )
    if raw.mode == "incremental" and raw.since is not None:
        result.notes.append(
            f"incremental HubSpot extraction: records modified since "
            f"{raw.since.isoformat()} re-read; records deleted in HubSpot since the "
            f"last full refresh may remain"
        )
