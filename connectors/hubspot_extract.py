"""Raw extraction of a HubSpot portal: what to read, full or incremental, and state.

A full extraction lists every object through the paged list endpoints. An
incremental one searches for objects modified since the previous extraction
(less a lookback), re-reads those that need property history through batch
reads, and merges them into the raw frames stored under the state folder.
Records deleted in HubSpot since the last full extraction stay in the stored
frames until the next ``--full-refresh``.

NOTE: an association added to an unchanged deal or engagement is seen only if
HubSpot also moved that object's ``hs_lastmodifieddate``; a periodic full
refresh bounds the gap.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from config.models import OrgConfig
from connectors.hubspot_client import HubSpotApi, Record
from connectors.hubspot_values import parse_times
from connectors.values import hash_email

logger = logging.getLogger(__name__)

STATE_VERSION = 1
CONTACT_HISTORY = (
    "lifecyclestage",
    "hs_lead_status",
    "hubspot_owner_id",
    "recent_conversion_date",
    "hs_email_last_send_date",
)
CONTACT_PROPERTIES = (
    "createdate", "lastmodifieddate", "lifecyclestage", "hs_lead_status",
    "hubspot_owner_id", "hubspot_owner_assigneddate", "associatedcompanyid",
    "hs_merged_object_ids", "email", "recent_conversion_date",
    "hs_email_last_send_date",
)  # fmt: skip
ENGAGEMENT_PROPERTIES = (
    "hs_timestamp", "hubspot_owner_id", "hs_engagement_source", "hs_lastmodifieddate",
    "hs_createdate",
)  # fmt: skip
ENGAGEMENT_DETAILS = {
    "calls": ("hs_call_direction", "hs_call_status", "hs_call_disposition"),
    "emails": ("hs_email_direction", "hs_email_status"),
    "meetings": ("hs_meeting_outcome", "hs_meeting_start_time"),
    "tasks": ("hs_task_status", "hs_task_type", "hs_task_completion_date"),
    "communications": ("hs_communication_channel_type", "hs_communication_logged_from"),
}
DEAL_PROPERTIES = (
    "createdate", "closedate", "amount", "dealstage", "pipeline", "hubspot_owner_id",
    "hs_analytics_source", "hs_lastmodifieddate", "hs_is_closed_won", "hs_is_closed",
)  # fmt: skip
COMPANY_PROPERTIES = ("createdate", "hs_lastmodifieddate")


@dataclass(frozen=True)
class ObjectSpec:
    """The properties, histories and associations read from one object type."""

    name: str
    properties: tuple[str, ...]
    history: tuple[str, ...] = ()
    modified_property: str = "hs_lastmodifieddate"
    links: tuple[str, ...] = ()


@dataclass
class RawPortal:
    """A portal's raw data: every property value as text, as HubSpot sent it.

    ``objects`` maps an object type to a frame of ``id``, ``archived`` and one
    string column per property (contacts carry ``email_hash``, never the
    address). ``history`` contains ``id, property, value, at`` rows. ``links`` maps
    ``"calls>contacts"`` to ``from_id, to_id`` rows.
    """

    objects: dict[str, pl.DataFrame]
    history: dict[str, pl.DataFrame]
    links: dict[str, pl.DataFrame]
    owners: pl.DataFrame
    deal_stages: pl.DataFrame
    definitions: pl.DataFrame
    extracted_at: dt.datetime
    mode: Literal["full", "incremental"] = "full"
    since: dt.datetime | None = None
    notes: list[str] = field(default_factory=list)


HISTORY_SCHEMA = pl.Schema(
    {
        "id": pl.String,
        "property": pl.String,
        "value": pl.String,
        "at": pl.Datetime("us", "UTC"),
    }
)
_HISTORY_TEXT = pl.Schema(
    {"id": pl.String, "property": pl.String, "value": pl.String, "at": pl.String}
)
LINK_SCHEMA = pl.Schema({"from_id": pl.String, "to_id": pl.String})


def lifecycle_stage_ids(definitions: pl.DataFrame) -> list[str]:
    """Return the portal's lifecycle stage ids (custom stages have numeric ids)."""
    if definitions.is_empty():
        return []
    options = definitions.filter(
        (pl.col("object_type") == "contacts") & (pl.col("name") == "lifecyclestage")
    )
    return [] if options.is_empty() else list(options["options"][0])


def object_specs(config: OrgConfig, definitions: pl.DataFrame) -> list[ObjectSpec]:
    """Return what to read from each object type for ``config``."""
    names = config.hubspot.properties
    stage_dates = [
        name
        for stage in lifecycle_stage_ids(definitions)
        for name in (f"hs_lifecyclestage_{stage}_date", f"hs_v2_date_entered_{stage}")
    ]
    contact_extra = [
        n for n in (names.lead_score, names.lead_source, names.rejection_reason) if n
    ]
    contact_history = CONTACT_HISTORY + (
        (names.rejection_reason,) if names.rejection_reason else ()
    )
    specs = [
        ObjectSpec(
            "contacts",
            _unique(CONTACT_PROPERTIES, contact_extra, stage_dates),
            history=contact_history,
            modified_property="lastmodifieddate",
        ),
        ObjectSpec(
            "companies",
            _unique(
                COMPANY_PROPERTIES,
                [names.target_account] if names.target_account else [],
            ),
        ),
        ObjectSpec(
            "deals",
            DEAL_PROPERTIES,
            history=("dealstage", "amount"),
            links=("contacts", "companies"),
        ),
    ]
    specs += [
        ObjectSpec(kind, ENGAGEMENT_PROPERTIES + details, links=("contacts",))
        for kind, details in ENGAGEMENT_DETAILS.items()
    ]
    return specs


def _unique(*groups: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for group in groups for name in group))


def extract_raw(
    api: HubSpotApi,
    config: OrgConfig,
    *,
    state_dir: Path | None = None,
    full_refresh: bool = False,
    now: dt.datetime | None = None,
    salt: str = "revalign",
) -> RawPortal:
    """Read a portal, incrementally when ``state_dir`` contains a previous extraction.

    The extraction time is taken before the first request, so a record changed
    while this run reads is picked up by the next run's window.
    """
    extracted_at = now or dt.datetime.now(dt.UTC)
    definitions = _definitions(api)
    owners = _owners_frame(api.owners())
    deal_stages = _stages_frame(api.pipelines("deals"))
    specs = object_specs(config, definitions)
    folder = _state_folder(state_dir, config)
    previous = (
        None if full_refresh or folder is None else load_state(folder, config, specs)
    )

    if previous is None:
        batches = {spec.name: _read_all(api, spec) for spec in specs}
        since = None
    else:
        lookback = dt.timedelta(minutes=config.hubspot.lookback_minutes)
        since = previous.extracted_at - lookback
        window = dt.timedelta(days=config.hubspot.search_window_days)
        batches = {
            spec.name: _read_modified(api, spec, since, extracted_at, window)
            for spec in specs
        }
    batches["contacts"] += _merged_away_contacts(
        api, batches["contacts"], specs[0], previous
    )

    raw = RawPortal(
        objects={s.name: _objects_frame(batches[s.name], s, salt) for s in specs},
        history={s.name: _history_frame(batches[s.name]) for s in specs if s.history},
        links=_links(api, specs, batches),
        owners=owners,
        deal_stages=deal_stages,
        definitions=definitions,
        extracted_at=extracted_at,
        mode="full" if previous is None else "incremental",
        since=since,
    )
    if previous is not None:
        raw = _merge(previous, raw)
    if folder is not None:
        save_state(folder, raw, config, specs)
    return raw


def _read_all(api: HubSpotApi, spec: ObjectSpec) -> list[Record]:
    return list(api.list_objects(spec.name, spec.properties, spec.history))


def _read_modified(
    api: HubSpotApi,
    spec: ObjectSpec,
    since: dt.datetime,
    until: dt.datetime,
    window: dt.timedelta,
) -> list[Record]:
    found = api.search_modified(
        spec.name, spec.modified_property, since, until, spec.properties, window=window
    )
    if not spec.history or not found:
        return found
    # Search returns no property history, so changed records are read again.
    ids = list(dict.fromkeys(record.id for record in found))
    return api.read_objects(spec.name, ids, spec.properties, spec.history)


def _merged_away_contacts(
    api: HubSpotApi,
    contacts: list[Record],
    spec: ObjectSpec,
    previous: RawPortal | None,
) -> list[Record]:
    """Read contacts merged into others, for their creation date and history.

    A merged-away contact is archived in HubSpot; those already stored are not
    read again.
    """
    # NOTE: whether HubSpot serves a merged-away contact to an archived batch read
    # is not confirmed; ids it does not return are skipped, and the survivor's own
    # createdate and history still stand.
    known = {record.id for record in contacts}
    if previous is not None:
        known |= set(previous.objects["contacts"]["id"])
    merged = {
        merged_id.strip()
        for record in contacts
        for merged_id in (record.properties.get("hs_merged_object_ids") or "").split(
            ";"
        )
        if merged_id.strip()
    }
    wanted = sorted(merged - known, key=lambda i: (len(i), i))
    if not wanted:
        return []
    return api.read_objects(
        "contacts", wanted, spec.properties, spec.history, archived=True
    )


def _links(
    api: HubSpotApi, specs: list[ObjectSpec], batches: dict[str, list[Record]]
) -> dict[str, pl.DataFrame]:
    links: dict[str, pl.DataFrame] = {}
    for spec in specs:
        ids = list(dict.fromkeys(record.id for record in batches[spec.name]))
        for target in spec.links:
            pairs = api.associations(spec.name, target, ids) if ids else []
            links[f"{spec.name}>{target}"] = pl.DataFrame(
                pairs, schema=LINK_SCHEMA, orient="row"
            ).unique()
    return links


def _objects_frame(records: list[Record], spec: ObjectSpec, salt: str) -> pl.DataFrame:
    columns: dict[str, list[Any]] = {
        "id": [r.id for r in records],
        "archived": [r.archived for r in records],
    }
    for name in spec.properties:
        columns[name] = [r.properties.get(name) for r in records]
    schema = {name: pl.String for name in columns} | {"archived": pl.Boolean}
    frame = pl.DataFrame(columns, schema=schema).unique(
        "id", keep="last", maintain_order=True
    )
    if "email" in frame.columns:
        frame = frame.with_columns(email_hash=hash_email(pl.col("email"), salt)).drop(
            "email"
        )
    return frame


def _history_frame(records: list[Record]) -> pl.DataFrame:
    """Return history rows oldest first, so row order breaks ties of equal times."""
    rows = [
        (record.id, name, value, at)
        for record in records
        for name, entries in record.history.items()
        for value, at in reversed(entries)
    ]
    frame = pl.DataFrame(rows, schema=_HISTORY_TEXT, orient="row")
    frame, _ = parse_times(frame, ["at"], object_type="history", time_zone="UTC")
    return frame.unique(maintain_order=True)


def _definitions(api: HubSpotApi) -> pl.DataFrame:
    rows = [
        (
            object_type,
            prop.name,
            prop.type,
            [option.value for option in prop.options or []],
            [option.label for option in prop.options or []],
        )
        for object_type in ("contacts", "deals", "companies")
        for prop in api.property_definitions(object_type)
    ]
    schema = {
        "object_type": pl.String,
        "name": pl.String,
        "type": pl.String,
        "options": pl.List(pl.String),
        "labels": pl.List(pl.String),
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def _owners_frame(owners: list[Any]) -> pl.DataFrame:
    rows = [
        (
            str(owner.id),
            None
            if owner.user_id_including_inactive is None
            else str(owner.user_id_including_inactive),
            bool(owner.archived),
            owner.updated_at.astimezone(dt.UTC) if owner.updated_at else None,
            [
                team.name
                for team in sorted(owner.teams or [], key=lambda t: not t.primary)
            ],
        )
        for owner in owners
    ]
    schema = {
        "owner_id": pl.String,
        "user_id": pl.String,
        "archived": pl.Boolean,
        "updated_at": pl.Datetime("us", "UTC"),
        "teams": pl.List(pl.String),
    }
    return pl.DataFrame(rows, schema=schema, orient="row").unique(
        "owner_id", keep="first"
    )


def _stages_frame(pipelines: list[Any]) -> pl.DataFrame:
    rows = [
        (
            pipeline.id,
            pipeline.label,
            stage.id,
            stage.label,
            (stage.metadata or {}).get("isClosed", "false").lower() == "true",
            _probability((stage.metadata or {}).get("probability")),
        )
        for pipeline in pipelines
        for stage in pipeline.stages or []
    ]
    schema = {
        "pipeline_id": pl.String,
        "pipeline_label": pl.String,
        "stage_id": pl.String,
        "stage_label": pl.String,
        "is_closed": pl.Boolean,
        "probability": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def _probability(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _merge(previous: RawPortal, fresh: RawPortal) -> RawPortal:
    """Overlay freshly read records on the stored ones, record by record."""
    objects = {
        name: pl.concat(
            [
                previous.objects[name].join(frame.select("id"), on="id", how="anti"),
                frame,
            ],
            how="diagonal_relaxed",
        )
        for name, frame in fresh.objects.items()
    }
    history = {
        name: pl.concat(
            [
                previous.history[name].join(
                    fresh.objects[name].select("id"), on="id", how="anti"
                ),
                frame,
            ]
        )
        for name, frame in fresh.history.items()
    }
    links = {}
    for key, frame in fresh.links.items():
        source = key.split(">")[0]
        changed = fresh.objects[source].select(from_id="id")
        stored = previous.links.get(key, pl.DataFrame(schema=LINK_SCHEMA))
        links[key] = pl.concat([stored.join(changed, on="from_id", how="anti"), frame])
    fresh.objects, fresh.history, fresh.links = objects, history, links
    return fresh


def _state_folder(state_dir: Path | None, config: OrgConfig) -> Path | None:
    return None if state_dir is None else state_dir / "hubspot" / config.org.id


def save_state(
    folder: Path, raw: RawPortal, config: OrgConfig, specs: list[ObjectSpec]
) -> None:
    """Write the raw frames as Parquet and the extraction time as JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in raw.objects.items():
        frame.write_parquet(folder / f"objects-{name}.parquet")
    for name, frame in raw.history.items():
        frame.write_parquet(folder / f"history-{name}.parquet")
    for key, frame in raw.links.items():
        frame.write_parquet(folder / f"links-{key.replace('>', '-to-')}.parquet")
    meta = {
        "version": STATE_VERSION,
        "host": config.hubspot.host,
        "extracted_at": raw.extracted_at.isoformat(),
        "objects": sorted(raw.objects),
        "history": sorted(raw.history),
        "links": sorted(raw.links),
        "specs": {spec.name: [*spec.properties, *spec.history] for spec in specs},
    }
    (folder / "state.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


def load_state(
    folder: Path, config: OrgConfig, specs: list[ObjectSpec]
) -> RawPortal | None:
    """Read the stored raw frames; ``None`` when absent, stale or for another host.

    Stored frames that lack a property now wanted (say, a rejection-reason
    property added to the config) are stale: the extraction starts over.
    """
    meta_path = folder / "state.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("version") != STATE_VERSION or meta.get("host") != config.hubspot.host:
        logger.info(
            "HubSpot state in %s is for another host or version; reading all", folder
        )
        return None
    stored = meta.get("specs", {})
    for spec in specs:
        if not {*spec.properties, *spec.history} <= set(stored.get(spec.name, ())):
            logger.info(
                "HubSpot state in %s lacks %s properties; reading all",
                folder,
                spec.name,
            )
            return None
    return RawPortal(
        objects={
            n: pl.read_parquet(folder / f"objects-{n}.parquet") for n in meta["objects"]
        },
        history={
            n: pl.read_parquet(folder / f"history-{n}.parquet") for n in meta["history"]
        },
        links={
            k: pl.read_parquet(folder / f"links-{k.replace('>', '-to-')}.parquet")
            for k in meta["links"]
        },
        owners=pl.DataFrame(),
        deal_stages=pl.DataFrame(),
        definitions=pl.DataFrame(),
        extracted_at=dt.datetime.fromisoformat(meta["extracted_at"]),
    )
