"""HubSpot contacts to leads, stage events, owner events and marketing touches.

A contact is a lead. Contacts merged in HubSpot are one person, and the
surviving contact lists the others in ``hs_merged_object_ids``. The person keeps
the survivor's id and current values, the earliest creation date of all its
records, and the union of their histories and activities.

Stage entries come from the ``lifecyclestage`` and ``hs_lead_status``
histories, read through the config's two mappings. Lifecycle stages only move
forward, so rejection and recycling show only in the lead status. A re-MQL shows
as the lifecycle stage cleared and set again. The lifecycle date properties
(``hs_lifecyclestage_<stage>_date``, ``hs_v2_date_entered_<stage>``) fill in a
stage only when the history has no entry for it.
"""

from __future__ import annotations

import polars as pl

from config.models import OrgConfig
from connectors.hubspot_extract import HISTORY_SCHEMA, RawPortal, lifecycle_stage_ids
from connectors.hubspot_values import parse_numbers, parse_times, time_expr

LIFECYCLE = "lifecyclestage"
LEAD_STATUS = "hs_lead_status"
OWNER = "hubspot_owner_id"
CONVERSION = "recent_conversion_date"
EMAIL_SEND = "hs_email_last_send_date"
# Contact properties whose every past value is a marketing touch: (channel, responded).
TOUCH_PROPERTIES = {CONVERSION: ("form", True), EMAIL_SEND: ("email", False)}


def people(contacts: pl.DataFrame) -> pl.DataFrame:
    """Map each contact record id to its person id: ``id``, ``person``.

    Live contacts are their own person unless another live contact lists them
    as merged. Archived records count only when a live contact lists them.
    """
    live = contacts.filter(~pl.col("archived").fill_null(False))
    merged = (
        live.select(
            person="id", id=pl.col("hs_merged_object_ids").fill_null("").str.split(";")
        )
        .explode("id")
        .with_columns(pl.col("id").str.strip_chars())
        .filter((pl.col("id") != "") & (pl.col("id") != pl.col("person")))
        .unique("id", keep="first", maintain_order=True)
    )
    survivors = live.join(merged, on="id", how="anti").select("id", person="id")
    return pl.concat([survivors, merged.select("id", "person")]).join(
        contacts.select("id"), on="id", how="semi"
    )


def contact_history(
    raw: RawPortal, mapping: pl.DataFrame, time_zone: str
) -> pl.DataFrame:
    """Return contact history rows: ``id, person, property, value, at``."""
    history = raw.history.get("contacts", pl.DataFrame(schema=HISTORY_SCHEMA))
    return history.with_columns(
        pl.col("value").str.strip_chars().replace("", None)
    ).join(mapping, on="id")


def leads_frame(
    contacts: pl.DataFrame, mapping: pl.DataFrame, config: OrgConfig, time_zone: str
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """Return one row per person, the typed records behind it, and date-only counts."""
    names = config.hubspot.properties
    records, date_only = parse_times(
        contacts.join(mapping, on="id"),
        ["createdate", "hubspot_owner_assigneddate"],
        object_type="contacts",
        time_zone=time_zone,
    )
    if names.lead_score and names.lead_score in records.columns:
        records = parse_numbers(records, [names.lead_score], object_type="contacts")
    created = records.group_by("person").agg(created_at=pl.col("createdate").min())
    survivors = records.filter(pl.col("id") == pl.col("person"))
    leads = survivors.select(
        lead_id="id",
        source=_column_or_null(survivors, names.lead_source),
        owner_id=OWNER,
        status_raw=LEAD_STATUS,
        lifecycle_raw=LIFECYCLE,
        score=_column_or_null(survivors, names.lead_score, pl.Float64),
        account_id="associatedcompanyid",
        email_hash="email_hash",
    ).join(created, left_on="lead_id", right_on="person")
    return leads, records, date_only


def _column_or_null(
    frame: pl.DataFrame, name: str | None, dtype: pl.DataType = pl.String
) -> pl.Expr:
    if name and name in frame.columns:
        return pl.col(name)
    return pl.lit(None, dtype)


def stage_events(
    raw: RawPortal,
    history: pl.DataFrame,
    mapping: pl.DataFrame,
    config: OrgConfig,
    time_zone: str,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Return canonical stage events (without reasons) and date-only counts.

    Within one record's field, a run of values mapped to the same stage is one
    entry, and a value mapped to null (or cleared) ends the run. Across fields
    and merged records, an entry into the stage the person is already in is a
    duplicate, unless its own field left that stage and came back.
    """
    lifecycle_map, status_map = config.hubspot.stages.resolved()
    from_history = (
        history.filter(pl.col("property").is_in([LIFECYCLE, LEAD_STATUS]))
        .with_columns(
            stage=pl.when(pl.col("property") == LIFECYCLE)
            .then(_mapped(pl.col("value"), lifecycle_map))
            .otherwise(_mapped(pl.col("value"), status_map))
        )
        .sort("id", "property", "at", maintain_order=True)
        .with_columns(previous=pl.col("stage").shift().over("id", "property"))
        .filter(
            pl.col("stage").is_not_null()
            & pl.col("stage").ne_missing(pl.col("previous"))
        )
        .select(
            lead_id="person",
            stage="stage",
            entered_at="at",
            raw_value="value",
            source_field=pl.lit("contacts.") + pl.col("property"),
            _source=pl.col("id") + pl.lit(":") + pl.col("property"),
        )
    )
    from_dates, date_only = _stage_date_events(raw, mapping, lifecycle_map, time_zone)
    missing_in_history = from_dates.join(
        from_history.select("lead_id", "stage").unique(),
        on=["lead_id", "stage"],
        how="anti",
    )
    events = pl.concat([from_history, missing_in_history])
    return _collapse_repeats(events), date_only


def _mapped(value: pl.Expr, mapping: dict[str, str | None]) -> pl.Expr:
    known = {k: v for k, v in mapping.items() if v is not None}
    return value.replace_strict(known, default=None, return_dtype=pl.String)


def _stage_date_events(
    raw: RawPortal,
    mapping: pl.DataFrame,
    lifecycle_map: dict[str, str | None],
    time_zone: str,
) -> tuple[pl.DataFrame, dict[str, int]]:
    contacts = raw.objects["contacts"]
    columns = {
        name: stage
        for stage in lifecycle_stage_ids(raw.definitions) or list(lifecycle_map)
        for name in (f"hs_lifecyclestage_{stage}_date", f"hs_v2_date_entered_{stage}")
        if lifecycle_map.get(stage) and name in contacts.columns
    }
    schema = {
        "lead_id": pl.String,
        "stage": pl.String,
        "entered_at": pl.Datetime("us", "UTC"),
        "raw_value": pl.String,
        "source_field": pl.String,
        "_source": pl.String,
    }
    if not columns:
        return pl.DataFrame(schema=schema), {}
    dates, date_only = parse_times(
        contacts.select("id", *columns),
        list(columns),
        object_type="contacts",
        time_zone=time_zone,
    )
    events = (
        dates.join(mapping, on="id")
        .unpivot(
            index=["id", "person"], variable_name="property", value_name="entered_at"
        )
        .drop_nulls("entered_at")
        .with_columns(
            raw_value=pl.col("property").replace_strict(columns, return_dtype=pl.String)
        )
        .with_columns(stage=_mapped(pl.col("raw_value"), lifecycle_map))
        .sort("entered_at")
        .unique(["person", "stage"], keep="first", maintain_order=True)
        .select(
            lead_id="person",
            stage="stage",
            entered_at="entered_at",
            raw_value="raw_value",
            source_field=pl.lit("contacts.") + pl.col("property"),
            _source=pl.col("id") + pl.lit(":") + pl.col("property"),
        )
    )
    return events.cast(schema), date_only  # type: ignore[arg-type]


def _collapse_repeats(events: pl.DataFrame) -> pl.DataFrame:
    """Drop an entry that repeats the stage a person is in, seen from another source.

    Consecutive entries into the same stage form a run. Counting per source, an
    entry is kept when its count exceeds every earlier count in the run: the
    first entry, and each re-entry a source made after leaving the stage.
    """
    return (
        events.unique(
            ["lead_id", "stage", "entered_at"], keep="first", maintain_order=True
        )
        .sort("lead_id", "entered_at", "source_field")
        .with_columns(
            _run=(pl.col("stage").ne_missing(pl.col("stage").shift().over("lead_id")))
            .cum_sum()
            .over("lead_id")
        )
        .with_columns(
            _count=pl.col("_source").cum_count().over("lead_id", "_run", "_source")
        )
        .with_columns(
            _before=pl.col("_count")
            .cum_max()
            .shift()
            .over("lead_id", "_run")
            .fill_null(0)
        )
        .filter(pl.col("_count") > pl.col("_before"))
        .drop("_run", "_count", "_before", "_source")
    )


def attach_reasons(
    events: pl.DataFrame,
    history: pl.DataFrame,
    contacts: pl.DataFrame,
    config: OrgConfig,
) -> pl.DataFrame:
    """Put the rejection reason on each rejection event.

    The reason is the last value the reason property had before the person's
    next stage event, set no earlier than the event before the rejection. With
    no history for the property, the current value goes on the last rejection.
    """
    prop = config.hubspot.properties.rejection_reason
    events = events.sort("lead_id", "entered_at").with_columns(
        reason=pl.lit(None, pl.String)
    )
    if not prop:
        return events
    reasons = history.filter(
        (pl.col("property") == prop) & pl.col("value").is_not_null()
    )
    if reasons.is_empty() and prop in contacts.columns:
        reasons = contacts.filter(pl.col(prop).is_not_null()).select(
            person="id", value=prop, at=pl.lit(None, pl.Datetime("us", "UTC"))
        )
    bounds = events.with_columns(
        _until=pl.col("entered_at")
        .shift(-1)
        .over("lead_id")
        .fill_null(pl.datetime(9999, 1, 1, time_zone="UTC")),
        _since=pl.col("entered_at").shift(1).over("lead_id"),
    )
    rejected = bounds.filter(pl.col("stage") == "rejected")
    dated = (
        reasons.filter(pl.col("at").is_not_null())
        .select("person", "value", "at")
        .sort("at")
    )
    found = (
        rejected.sort("_until")
        .join_asof(
            dated,
            left_on="_until",
            right_on="at",
            by_left="lead_id",
            by_right="person",
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,
        )  # fmt: skip
        .filter(
            pl.col("at").is_not_null()
            & ((pl.col("_since").is_null()) | (pl.col("at") >= pl.col("_since")))
        )
        .select("lead_id", "entered_at", found_reason="value")
    )
    undated = reasons.filter(pl.col("at").is_null()).select(
        lead_id="person", current="value"
    )
    last = (
        rejected.group_by("lead_id")
        .agg(pl.col("entered_at").max())
        .join(undated, on="lead_id")
    )
    return (
        events.join(found, on=["lead_id", "entered_at"], how="left")
        .join(last, on=["lead_id", "entered_at"], how="left")
        .with_columns(reason=pl.coalesce("found_reason", "current"))
        .drop("found_reason", "current")
        .sort("lead_id", "entered_at")
    )


def owner_events(history: pl.DataFrame, leads_records: pl.DataFrame) -> pl.DataFrame:
    """Return owner assignments from the ``hubspot_owner_id`` history.

    A record without owner history contributes its current owner at
    ``hubspot_owner_assigneddate`` (or its creation). A repeat of the same owner
    within a record's history is not a new assignment.
    """
    from_history = (
        history.filter(pl.col("property") == OWNER)
        .sort("id", "at", maintain_order=True)
        .with_columns(previous=pl.col("value").shift().over("id"))
        .filter(
            pl.col("value").is_not_null()
            & pl.col("value").ne_missing(pl.col("previous"))
        )
        .select(lead_id="person", owner_id="value", assigned_at="at", id="id")
    )
    fallback = (
        leads_records.join(from_history.select("id").unique(), on="id", how="anti")
        .filter(pl.col(OWNER).is_not_null())
        .select(
            lead_id="person",
            owner_id=OWNER,
            assigned_at=pl.coalesce("hubspot_owner_assigneddate", "createdate"),
            id="id",
        )
    )
    return (
        pl.concat([from_history, fallback])
        .drop("id")
        .drop_nulls("assigned_at")
        .unique(["lead_id", "owner_id", "assigned_at"])
        .sort("lead_id", "assigned_at")
    )


def touches(
    history: pl.DataFrame, time_zone: str, properties: list[str]
) -> pl.DataFrame:
    """Return marketing touches from the history of the touch ``properties``.

    Each value ``recent_conversion_date`` took is one form conversion (a
    response); each value ``hs_email_last_send_date`` took is one marketing
    e-mail sent. The value is the time of the touch, and the history timestamp
    is used when the value cannot be read.
    """
    channels = {name: TOUCH_PROPERTIES[name][0] for name in properties}
    responses = [name for name in properties if TOUCH_PROPERTIES[name][1]]
    found = history.filter(
        pl.col("property").is_in(properties) & pl.col("value").is_not_null()
    ).with_columns(touched=time_expr("value", time_zone))
    return (
        found.select(
            lead_id="person",
            touched_at=pl.coalesce("touched", "at"),
            channel=pl.col("property").replace_strict(channels, return_dtype=pl.String),
            responded=pl.col("property").is_in(responses),
        )
        .unique(["lead_id", "channel", "touched_at"])
        .sort("lead_id", "touched_at", "channel")
        .with_columns(
            touch_id=pl.concat_str(
                "lead_id", "channel", pl.col("touched_at").dt.epoch("ms"), separator=":"
            )
        )
    )


def unmapped_values(
    contacts: pl.DataFrame, history: pl.DataFrame, config: OrgConfig
) -> dict[str, int]:
    """Count raw lifecycle and lead-status values that neither mapping lists.

    Lead statuses are keyed by value; lifecycle stages as ``lifecyclestage=<value>``.
    """
    lifecycle_map, status_map = config.hubspot.stages.resolved()
    current = contacts.select(
        pl.concat_list(
            pl.lit(LIFECYCLE) + pl.lit("\x00") + pl.col(LIFECYCLE),
            pl.lit(LEAD_STATUS) + pl.lit("\x00") + pl.col(LEAD_STATUS),
        ).alias("pair")
    ).explode("pair")
    past = history.filter(pl.col("property").is_in([LIFECYCLE, LEAD_STATUS])).select(
        pair=pl.col("property") + pl.lit("\x00") + pl.col("value")
    )
    values = (
        pl.concat([current, past])
        .drop_nulls()
        .with_columns(
            pl.col("pair")
            .str.split_exact("\x00", 1)
            .struct.rename_fields(["property", "value"])
        )
        .unnest("pair")
    )
    unknown = values.filter(
        (
            (pl.col("property") == LIFECYCLE)
            & ~pl.col("value").is_in(list(lifecycle_map))
        )
        | (
            (pl.col("property") == LEAD_STATUS)
            & ~pl.col("value").is_in(list(status_map))
        )
    )
    counts = unknown.group_by("property", "value").len().sort("property", "value")
    return {
        (value if prop == LEAD_STATUS else f"{LIFECYCLE}={value}"): count
        for prop, value, count in counts.iter_rows()
    }
