"""Salesforce API connector: reads an org's objects into the canonical tables.

Per object: ``describe()`` first, to keep only the wanted fields that exist and
are readable (a configured custom field that is not is an error); then
``queryAll`` through REST ``query_all_iter``, or a Bulk API 2.0 ``queryAll`` job
when the rows to read reach ``salesforce.bulk_threshold_rows``. ``queryAll``
also returns deleted records, so deletes can be applied, and archived
activities, so they count.

With a state folder the extraction is incremental: each object's newest
``SystemModstamp`` (``CreatedDate`` where it has none) is its watermark; the
next run reads from the watermark minus ``salesforce.lookback_minutes``, merges
by ``Id`` into the stored rows and drops deleted ones. A watermark never moves
past the start of the extraction that read it, and nothing is stored unless the
whole extraction succeeds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl
import requests

from config.models import OrgConfig
from connectors.errors import RevalignError
from connectors.salesforce_auth import build_session
from connectors.salesforce_calls import CallMeter, SalesforceApiError
from connectors.salesforce_objects import (
    OBJECT_NAMES,
    REQUIRED,
    canonical_from_objects,
    wanted_fields,
)
from connectors.salesforce_query import (
    ObjectPlan,
    ObjectReader,
    build_soql,
    parse_stamp,
)
from connectors.salesforce_session import ApiSession, ExtractOptions, WindowTimedOut
from connectors.salesforce_state import ObjectState, StateStore, StoredState
from connectors.schema import CanonicalTables

logger = logging.getLogger(__name__)

BOOKKEEPING = ("Id", "IsDeleted")
COMPOSITE_MAX = 25


class SalesforceFieldError(RevalignError):
    """Raised when a field the org config names does not exist or is not readable."""


@dataclass(frozen=True)
class ObjectStats:
    """Counts of one object's read: mode, path, and rows fetched, deleted and stored."""

    mode: Literal["full", "incremental"]
    path: Literal["rest", "bulk"]
    fetched: int
    deleted: int
    stored: int


@dataclass
class ApiExtract:
    """Result of an extraction: tables, start time, per-object and API-call counts."""

    tables: CanonicalTables
    extracted_at: dt.datetime
    stats: dict[str, ObjectStats]
    api_calls: int
    api_usage: str


def plan_objects(
    api: ApiSession, config: OrgConfig
) -> tuple[dict[str, ObjectPlan], list[str]]:
    """Describe each object and decide which fields to read.

    Returns the plans and notes on unavailable objects and unreadable standard
    fields. Raises :class:`SalesforceFieldError` naming every configured custom
    field, or required field, that is missing or unreadable.
    """
    custom = _configured_fields(config)
    plans: dict[str, ObjectPlan] = {}
    unavailable: list[str] = []
    unreadable: list[str] = []
    errors: list[str] = []
    described_objects = describe_objects(api, list(OBJECT_NAMES))
    for obj in OBJECT_NAMES:
        described = described_objects.get(obj)
        if described is None:
            unavailable.append(obj)
            continue
        types = {item["name"]: item["type"] for item in described["fields"]}
        for name in wanted_fields(obj, config):
            if name in types:
                continue
            if (obj, name) in custom:
                errors.append(f"{obj}.{name} (fields.{custom[obj, name]})")
            elif name in REQUIRED[obj]:
                errors.append(f"{obj}.{name} (required)")
            else:
                unreadable.append(f"{obj}.{name}")
        plans[obj] = _plan(obj, config, types)
    if errors:
        msg = (
            f"field(s) {', '.join(errors)} do not exist or are not readable by the API "
            f"user; correct the API names in the org config, or grant the user read "
            f"access to them (field-level security)"
        )
        raise SalesforceFieldError(msg)
    notes = []
    if unavailable:
        notes.append(f"objects not available to the API user: {', '.join(unavailable)}")
    if unreadable:
        notes.append(f"fields not readable by the API user: {', '.join(unreadable)}")
    return plans, notes


def _configured_fields(config: OrgConfig) -> dict[tuple[str, str], str]:
    names = config.fields
    pairs = {
        ("Lead", names.lead_score): "lead_score",
        ("Lead", names.rejection_reason): "rejection_reason",
        ("Lead", names.mql_date): "mql_date",
        ("Account", names.target_account): "target_account",
    }
    return {key: value for key, value in pairs.items() if key[1]}


def describe_objects(
    api: ApiSession, objects: list[str]
) -> dict[str, dict[str, Any] | None]:
    """Return ``describe()`` of each object, ``None`` for one the user cannot query.

    The describes go as subrequests of one Composite API call per 25 objects,
    which counts as a single call against the daily API limit.
    """
    results: dict[str, dict[str, Any] | None] = {}
    for start in range(0, len(objects), COMPOSITE_MAX):
        chunk = objects[start : start + COMPOSITE_MAX]
        body = {
            "allOrNone": False,
            "compositeRequest": [_describe_request(api, o) for o in chunk],
        }
        answer = api.call(
            "describe of " + ", ".join(chunk),
            lambda client, body=body: client.restful(
                "composite", method="POST", json=body
            ),
        )
        for item in answer["compositeResponse"]:
            results[item["referenceId"]] = _described(item)
    return results


def _describe_request(api: ApiSession, obj: str) -> dict[str, str]:
    url = f"/services/data/v{api.settings.api_version}/sobjects/{obj}/describe"
    return {"method": "GET", "url": url, "referenceId": obj}


def _described(item: dict[str, Any]) -> dict[str, Any] | None:
    status, body = item["httpStatusCode"], item["body"]
    if status == 200:
        return body if body.get("queryable", True) else None
    if status == 404:
        return None
    error = body[0] if isinstance(body, list) and body else {}
    msg = (
        f"describe of {item['referenceId']} failed with "
        f"{error.get('errorCode', f'HTTP {status}')}: {error.get('message', '')}"
    )
    raise SalesforceApiError(msg, retryable=status >= 500)


def _plan(obj: str, config: OrgConfig, types: dict[str, str]) -> ObjectPlan:
    watermark = next((n for n in ("SystemModstamp", "CreatedDate") if n in types), None)
    wanted = [name for name in wanted_fields(obj, config) if name in types]
    extra = [
        n for n in (*BOOKKEEPING, watermark) if n and n in types and n not in wanted
    ]
    fields = tuple(wanted + extra)
    return ObjectPlan(obj, fields, {name: types[name] for name in fields}, watermark)


def record_counts(api: ApiSession, objects: list[str]) -> dict[str, int]:
    """Return the approximate record count of each object (one call for all)."""
    if not objects:
        return {}
    answer = api.call(
        "record count",
        lambda client: client.restful(
            "limits/recordCount", params={"sObjects": ",".join(objects)}
        ),
    )
    return {
        item["name"]: int(item["count"]) for item in (answer or {}).get("sObjects", [])
    }


def _use_bulk(
    api: ApiSession, plan: ObjectPlan, total: int, lower: dt.datetime | None
) -> bool:
    threshold = api.settings.bulk_threshold_rows
    if total < threshold:
        return False
    if lower is None:
        return True
    soql = build_soql(plan, lower, None, ordered=False, select="COUNT()")
    try:
        size = api.call(
            f"count of {plan.obj}",
            lambda client: client.query(soql, include_deleted=True)["totalSize"],
        )
    except WindowTimedOut:
        return True
    return size >= threshold


@dataclass
class _ObjectResult:
    frame: pl.DataFrame
    state: ObjectState
    stats: ObjectStats


def extract_object(
    api: ApiSession,
    plan: ObjectPlan,
    stored: tuple[ObjectState, pl.DataFrame] | None,
    total: int,
    started: dt.datetime,
) -> _ObjectResult:
    """Read one object and merge it into its stored rows.

    The read is incremental when ``stored`` was read with the same fields and
    watermark field, and full otherwise. ``total`` is the object's record count,
    which picks REST or Bulk API.
    """
    since = _usable_watermark(stored, plan)
    old_rows = stored[1] if stored and since else None
    lower = (
        since - dt.timedelta(minutes=api.settings.lookback_minutes) if since else None
    )
    bulk = _use_bulk(api, plan, total, lower)
    fetched = ObjectReader(api, plan, started, bulk=bulk).read(lower, None)

    merged, deleted = merge_rows(old_rows, fetched)
    watermark = _watermark(fetched, plan, started) or since
    mode = "incremental" if since else "full"
    stats = ObjectStats(
        mode, "bulk" if bulk else "rest", fetched.height, deleted, merged.height
    )
    logger.info(
        "%s: %s read by %s, %d row(s) fetched, %d deleted, %d stored",
        plan.obj, mode, stats.path.upper(), fetched.height, deleted, merged.height,
    )  # fmt: skip
    state = ObjectState(
        plan.fields, plan.watermark_field or "", watermark, merged.height
    )
    return _ObjectResult(merged, state, stats)


def _usable_watermark(
    stored: tuple[ObjectState, pl.DataFrame] | None, plan: ObjectPlan
) -> dt.datetime | None:
    if stored is None:
        return None
    previous = stored[0]
    same_fields = previous.fields == plan.fields
    if same_fields and previous.watermark_field == plan.watermark_field:
        return previous.watermark
    logger.info(
        "%s: fields changed since the last run, so it is read in full", plan.obj
    )
    return None


def merge_rows(
    stored: pl.DataFrame | None, fetched: pl.DataFrame
) -> tuple[pl.DataFrame, int]:
    """Upsert ``fetched`` into ``stored`` by ``Id`` and drop deleted rows.

    Returns the merged rows sorted by ``Id`` and the number of fetched rows that
    were marked deleted.

    NOTE: ``queryAll`` no longer returns a record once it is purged from the
    recycle bin, so a record purged between two runs stays in the stored rows
    until a full refresh.
    """
    combined = fetched
    if stored is not None:
        kept = stored.filter(~pl.col("Id").is_in(fetched["Id"].implode()))
        combined = pl.concat([kept.select(fetched.columns), fetched])
    deleted = 0
    if "IsDeleted" in combined.columns:
        is_deleted = pl.col("IsDeleted").fill_null("FALSE") == "TRUE"
        deleted = fetched.filter(is_deleted).height
        combined = combined.filter(~is_deleted)
    return combined.sort("Id"), deleted


def _watermark(
    fetched: pl.DataFrame, plan: ObjectPlan, started: dt.datetime
) -> dt.datetime | None:
    if plan.watermark_field is None or fetched.is_empty():
        return None
    newest = fetched[plan.watermark_field].drop_nulls().max()
    if newest is None:
        return None
    return min(parse_stamp(str(newest)), started)


def extract_salesforce(
    config: OrgConfig,
    *,
    session: requests.Session | None = None,
    state_dir: Path | None = None,
    full_refresh: bool = False,
    options: ExtractOptions | None = None,
) -> ApiExtract:
    """Read one org through the API into canonical tables.

    ``session`` carries TLS settings (built from ``config.salesforce`` when
    ``None``). With ``state_dir`` the run is incremental and its result is stored
    under ``state_dir/salesforce/<org id>``; ``full_refresh`` ignores what is stored.
    Raises :class:`SalesforceAuthError`, :class:`SalesforceFieldError` or
    :class:`SalesforceApiError`; after any error the stored state is unchanged.
    """
    settings = config.salesforce
    options = options or ExtractOptions()
    started = dt.datetime.now(dt.UTC)
    store = StateStore(state_dir / "salesforce" / config.org.id) if state_dir else None
    previous = store.load() if store and not full_refresh else StoredState()

    with contextlib.ExitStack() as stack:
        if session is None:
            session = stack.enter_context(build_session(settings))
        meter = stack.enter_context(CallMeter(settings.max_api_share).attach(session))
        api = ApiSession(settings, session, meter, options)
        plans, notes = plan_objects(api, config)
        totals = record_counts(api, list(plans))
        results = {
            obj: extract_object(
                api, plan, _stored(store, previous, obj), totals.get(obj, 0), started
            )
            for obj, plan in plans.items()
        }

    frames = {obj: result.frame for obj, result in results.items()}
    if store is not None:
        store.save({obj: r.state for obj, r in results.items()}, frames, started)
    tables = canonical_from_objects(frames, config, origin="Salesforce API object ")
    tables.notes[:0] = [*notes, _summary(results, meter)]
    logger.info(
        "Salesforce extraction used %d API call(s); org usage %s",
        meter.calls,
        meter.usage_text(),
    )
    return ApiExtract(
        tables,
        started,
        {obj: r.stats for obj, r in results.items()},
        meter.calls,
        meter.usage_text(),
    )


def _summary(results: dict[str, _ObjectResult], meter: CallMeter) -> str:
    incremental = sum(r.stats.mode == "incremental" for r in results.values())
    fetched = sum(r.stats.fetched for r in results.values())
    return (
        f"read through the Salesforce API: {meter.calls} call(s), {fetched} row(s) "
        f"fetched, {incremental} of {len(results)} object(s) incrementally; daily "
        f"API usage {meter.usage_text()}"
    )


def _stored(
    store: StateStore | None, previous: StoredState, obj: str
) -> tuple[ObjectState, pl.DataFrame] | None:
    if store is None or obj not in previous.objects:
        return None
    frame = store.read_frame(previous, obj)
    return (previous.objects[obj], frame) if frame is not None else None
