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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import polars as pl
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceOperationError

from config.models import OrgConfig, SalesforceConfig
from connectors.errors import RevalignError
from connectors.salesforce_auth import (
    SalesforceAuthError,
    SessionCredentials,
    build_session,
    connect,
    login,
    login_url,
    read_credentials,
)
from connectors.salesforce_bulk import bulk_query
from connectors.salesforce_calls import (
    CallMeter,
    RetryPolicy,
    SalesforceApiError,
    classify,
    describe_failure,
)
from connectors.salesforce_objects import OBJECT_NAMES, REQUIRED, canonical_from_objects, wanted_fields
from connectors.salesforce_rows import export_text, frame_from_records
from connectors.salesforce_state import ObjectState, StateStore, StoredState
from connectors.schema import CanonicalTables

logger = logging.getLogger(__name__)

# The lower bound of a split window when the query had none: no record is older.
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
BOOKKEEPING = ("Id", "IsDeleted")
COMPOSITE_MAX = 25
API_ERRORS = (SalesforceError, SalesforceOperationError, requests.exceptions.RequestException)
T = TypeVar("T")


class SalesforceFieldError(RevalignError):
    """Raised when a field the org config names does not exist or is not readable."""


class _WindowTimedOut(Exception):
    """A query answered QUERY_TIMEOUT; the caller splits its time window."""


@dataclass
class ExtractOptions:
    """Tuning of an extraction; the defaults suit a real org."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    bulk_poll_seconds: float = 5.0
    bulk_page_rows: int = 50_000
    min_window: dt.timedelta = dt.timedelta(minutes=1)
    max_logins: int = 3
    request_timeout: tuple[float, float] = (10.0, 300.0)


@dataclass(frozen=True)
class ObjectPlan:
    """What to read from one object: the fields, their describe types, the watermark field."""

    obj: str
    fields: tuple[str, ...]
    types: dict[str, str]
    watermark_field: str | None


@dataclass(frozen=True)
class ObjectStats:
    """How one object was read, for logs, reports and request budgeting."""

    mode: Literal["full", "incremental"]
    path: Literal["rest", "bulk"]
    fetched: int
    deleted: int
    stored: int


@dataclass
class ApiExtract:
    """Canonical tables, the extraction start, and per-object and API-call counts."""

    tables: CanonicalTables
    extracted_at: dt.datetime
    stats: dict[str, ObjectStats]
    api_calls: int
    api_usage: str


class ApiSession:
    """A logged-in client that logs in again when Salesforce ends the session."""

    def __init__(
        self,
        settings: SalesforceConfig,
        session: requests.Session,
        meter: CallMeter,
        options: ExtractOptions,
    ) -> None:
        self.settings = settings
        self.session = session
        self.meter = meter
        self.options = options
        self.credentials = read_credentials(settings)
        self.logins = 0
        self._client: Salesforce | None = None

    def client(self) -> Salesforce:
        """Return the client, logging in first when there is no live session."""
        if self._client is None:
            try:
                live = login(self.settings, self.credentials, self.session)
            except requests.exceptions.RequestException as exc:
                raise _unreachable(exc, login_url(self.settings)) from None
            self.logins += 1
            self._client = connect(self.settings, live, self.session)
        return self._client

    def call(self, what: str, action: Callable[[Salesforce], T]) -> T:
        """Run ``action`` with the client, retrying and logging in again as needed."""
        attempt = 0
        while True:
            try:
                return action(self.client())
            except Exception as exc:  # noqa: BLE001 - classify() sorts them out
                attempt = self.recover(exc, attempt, what)

    def recover(self, exc: Exception, attempt: int, what: str) -> int:
        """Handle a failed call: return the new attempt count, or raise.

        Ends the session on INVALID_SESSION_ID, waits before a retryable error and
        raises :class:`_WindowTimedOut` on QUERY_TIMEOUT.
        """
        if isinstance(exc, RevalignError) or not isinstance(exc, API_ERRORS):
            raise exc
        kind = classify(exc)
        if kind == "reauth":
            self._relogin(what)
            return attempt
        if kind == "timeout":
            raise _WindowTimedOut(what) from exc
        if kind == "fatal":
            if isinstance(exc, requests.exceptions.RequestException):
                raise _unreachable(exc, login_url(self.settings)) from None
            raise SalesforceApiError(f"{describe_failure(exc, what)}") from None
        attempt += 1
        policy = self.options.retry
        if attempt >= policy.attempts:
            msg = (
                f"{describe_failure(exc, what)}; gave up after {attempt} tries. "
                f"API usage: {self.meter.usage_text()}"
            )
            raise SalesforceApiError(msg, retryable=True) from None
        retry_after = self.meter.retry_after if isinstance(exc, SalesforceError) else None
        delay = policy.delay(attempt - 1, retry_after)
        logger.warning("%s; retry %d in %.1f s", describe_failure(exc, what), attempt, delay)
        policy.sleep(delay)
        return attempt

    def _relogin(self, what: str) -> None:
        if isinstance(self.credentials, SessionCredentials):
            msg = (
                f"Salesforce rejected the session id in {self.settings.session_id_env!r} "
                f"(INVALID_SESSION_ID) during {what}; set a current one, or set "
                f"salesforce.auth to 'password' or 'jwt' so revalign can log in itself"
            )
            raise SalesforceAuthError(msg)
        if self.logins >= self.options.max_logins:
            msg = (
                f"Salesforce ended the session {self.logins} times during this run "
                f"(last during {what}); check the session policies of the API user"
            )
            raise SalesforceApiError(msg, retryable=True)
        logger.warning("session ended during %s; logging in again and restarting", what)
        self._client = None


def _unreachable(exc: requests.exceptions.RequestException, url: str) -> SalesforceApiError:
    if isinstance(exc, requests.exceptions.SSLError):
        msg = (
            f"TLS verification failed for {url} ({exc}); if a proxy or test server uses "
            f"its own CA, set salesforce.ca_bundle to its PEM file"
        )
        return SalesforceApiError(msg)
    msg = f"cannot reach Salesforce at {url} ({type(exc).__name__}); check the network"
    return SalesforceApiError(msg, retryable=True)


def soql_datetime(when: dt.datetime) -> str:
    """Return a SOQL datetime literal in UTC, whole seconds (``2025-03-10T14:00:00Z``)."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_soql(
    plan: ObjectPlan, lower: dt.datetime | None, upper: dt.datetime | None, *, ordered: bool
) -> str:
    """Return the SELECT for ``plan`` within ``[lower, upper)`` on its watermark field."""
    soql = f"SELECT {', '.join(plan.fields)} FROM {plan.obj}"
    conditions = []
    if plan.watermark_field and lower is not None:
        conditions.append(f"{plan.watermark_field} >= {soql_datetime(lower)}")
    if plan.watermark_field and upper is not None:
        conditions.append(f"{plan.watermark_field} < {soql_datetime(upper)}")
    if conditions:
        soql += " WHERE " + " AND ".join(conditions)
    if ordered and plan.watermark_field:
        soql += f" ORDER BY {plan.watermark_field}, Id"
    return soql


def _parse_stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")


class ObjectReader:
    """Reads one object's rows in a time window, splitting it when a query times out."""

    def __init__(
        self, api: ApiSession, plan: ObjectPlan, started: dt.datetime, *, bulk: bool
    ) -> None:
        self.api = api
        self.plan = plan
        self.started = started
        self.bulk = bulk

    def read(self, lower: dt.datetime | None, upper: dt.datetime | None) -> pl.DataFrame:
        """Return the rows with watermark in ``[lower, upper)``, in export text form."""
        try:
            frame = self._read_bulk(lower, upper) if self.bulk else self._read_rest(lower, upper)
        except _WindowTimedOut:
            return self._read_split(lower, upper)
        return frame.unique("Id", keep="last", maintain_order=True)

    def _read_split(self, lower: dt.datetime | None, upper: dt.datetime | None) -> pl.DataFrame:
        low = lower or EPOCH
        high = upper or self.started
        if self.plan.watermark_field is None or high - low <= self.api.options.min_window:
            msg = (
                f"the query of {self.plan.obj} timed out (QUERY_TIMEOUT) even for the window "
                f"{soql_datetime(low)} to {soql_datetime(high)}; ask Salesforce support "
                f"about the object's indexes, or lower salesforce.bulk_threshold_rows"
            )
            raise SalesforceApiError(msg, retryable=True)
        middle = (low + (high - low) / 2).replace(microsecond=0)
        logger.warning(
            "query of %s timed out for %s..%s; splitting at %s",
            self.plan.obj, soql_datetime(low), upper and soql_datetime(upper),
            soql_datetime(middle),
        )  # fmt: skip
        first = self.read(low, middle)
        second = self.read(middle, upper)
        return pl.concat([first, second]).unique("Id", keep="last", maintain_order=True)

    def _read_rest(self, lower: dt.datetime | None, upper: dt.datetime | None) -> pl.DataFrame:
        """Page through ``queryAll``; after a failure, query again from the last stamp read.

        Rows are ordered by (watermark, Id), so every row older than the last one
        read is already in hand: the new query starts at that row's stamp (``>=``)
        and duplicates are dropped by ``Id``. A ``nextRecordsUrl`` is never reused.
        """
        records: list[dict[str, Any]] = []
        resume = lower
        attempt = 0
        api = self.api
        while True:
            soql = build_soql(self.plan, resume, upper, ordered=True)
            try:
                rows = api.client().query_all_iter(
                    soql, include_deleted=True, timeout=api.options.request_timeout
                )
                records.extend(rows)
                break
            except Exception as exc:  # noqa: BLE001 - recover() sorts them out
                attempt = api.recover(exc, attempt, f"query of {self.plan.obj}")
                if records and self.plan.watermark_field:
                    last = _parse_stamp(records[-1][self.plan.watermark_field])
                    resume = last.replace(microsecond=0)
        frame = frame_from_records(records, _types(self.plan))
        return export_text(frame, self.plan.types)

    def _read_bulk(self, lower: dt.datetime | None, upper: dt.datetime | None) -> pl.DataFrame:
        soql = build_soql(self.plan, lower, upper, ordered=False)
        options = self.api.options
        attempt = 0
        while True:
            try:
                frame = bulk_query(
                    self.api.client(), self.plan.obj, soql, include_deleted=True,
                    poll_seconds=options.bulk_poll_seconds, page_rows=options.bulk_page_rows,
                )  # fmt: skip
                break
            except Exception as exc:  # noqa: BLE001 - recover() sorts them out
                attempt = self.api.recover(exc, attempt, f"bulk query of {self.plan.obj}")
        if frame.width == 0:
            frame = pl.DataFrame(schema=dict.fromkeys(self.plan.fields, pl.String))
        return export_text(frame.select(self.plan.fields), self.plan.types)


def _types(plan: ObjectPlan) -> dict[str, str]:
    return {name: plan.types[name] for name in plan.fields}


def plan_objects(api: ApiSession, config: OrgConfig) -> tuple[dict[str, ObjectPlan], list[str]]:
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


def describe_objects(api: ApiSession, objects: list[str]) -> dict[str, dict[str, Any] | None]:
    """Return ``describe()`` of each object, ``None`` for one the user cannot query.

    The describes go as subrequests of one Composite API call per 25 objects,
    which counts as a single call against the daily API limit.
    """
    results: dict[str, dict[str, Any] | None] = {}
    for start in range(0, len(objects), COMPOSITE_MAX):
        chunk = objects[start : start + COMPOSITE_MAX]
        body = {"allOrNone": False, "compositeRequest": [_describe_request(api, o) for o in chunk]}
        answer = api.call(
            "describe of " + ", ".join(chunk),
            lambda client, body=body: client.restful("composite", method="POST", json=body),
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
    extra = [n for n in (*BOOKKEEPING, watermark) if n and n in types and n not in wanted]
    fields = tuple(wanted + extra)
    return ObjectPlan(obj, fields, {name: types[name] for name in fields}, watermark)


def record_counts(api: ApiSession, objects: list[str]) -> dict[str, int]:
    """Return the approximate record count of each object (one call for all)."""
    if not objects:
        return {}
    answer = api.call(
        "record count",
        lambda client: client.restful("limits/recordCount", params={"sObjects": ",".join(objects)}),
    )
    return {item["name"]: int(item["count"]) for item in (answer or {}).get("sObjects", [])}


def _use_bulk(
    api: ApiSession, plan: ObjectPlan, total: int, lower: dt.datetime | None
) -> bool:
    threshold = api.settings.bulk_threshold_rows
    if total < threshold:
        return False
    if lower is None:
        return True
    soql = build_soql(plan, lower, None, ordered=False).replace(
        f"SELECT {', '.join(plan.fields)}", "SELECT COUNT()"
    )
    try:
        size = api.call(
            f"count of {plan.obj}",
            lambda client: client.query(soql, include_deleted=True)["totalSize"],
        )
    except _WindowTimedOut:
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
    """Read one object, incrementally when ``stored`` matches the plan, and merge."""
    previous, old_rows = stored if stored else (None, None)
    incremental = (
        previous is not None
        and previous.watermark is not None
        and previous.fields == plan.fields
        and previous.watermark_field == plan.watermark_field
    )
    lookback = dt.timedelta(minutes=api.settings.lookback_minutes)
    lower = previous.watermark - lookback if incremental and previous and previous.watermark else None
    bulk = _use_bulk(api, plan, total, lower)
    fetched = ObjectReader(api, plan, started, bulk=bulk).read(lower, None)

    merged, deleted = merge_rows(old_rows if incremental else None, fetched)
    watermark = _watermark(fetched, plan, started) or (previous.watermark if incremental and previous else None)
    stats = ObjectStats(
        "incremental" if incremental else "full", "bulk" if bulk else "rest",
        fetched.height, deleted, merged.height,
    )  # fmt: skip
    logger.info(
        "%s: %s read by %s, %d row(s) fetched, %d deleted, %d stored",
        plan.obj, stats.mode, stats.path.upper(), stats.fetched, deleted, stats.stored,
    )  # fmt: skip
    state = ObjectState(plan.fields, plan.watermark_field or "", watermark, merged.height)
    return _ObjectResult(merged, state, stats)


def merge_rows(stored: pl.DataFrame | None, fetched: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Upsert ``fetched`` into ``stored`` by ``Id`` and drop deleted rows.

    Returns the merged rows sorted by ``Id`` and the number of fetched rows that
    were marked deleted.
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


def _watermark(fetched: pl.DataFrame, plan: ObjectPlan, started: dt.datetime) -> dt.datetime | None:
    if plan.watermark_field is None or fetched.is_empty():
        return None
    newest = fetched[plan.watermark_field].drop_nulls().max()
    if newest is None:
        return None
    return min(_parse_stamp(str(newest)), started)


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
            obj: extract_object(api, plan, _stored(store, previous, obj), totals.get(obj, 0), started)
            for obj, plan in plans.items()
        }

    frames = {obj: result.frame for obj, result in results.items()}
    if store is not None:
        store.save({obj: r.state for obj, r in results.items()}, frames, started)
    tables = canonical_from_objects(frames, config, origin="Salesforce API object ")
    tables.notes[:0] = notes
    logger.info("Salesforce extraction used %d API call(s); org usage %s", meter.calls, meter.usage_text())
    return ApiExtract(
        tables, started, {obj: r.stats for obj, r in results.items()}, meter.calls, meter.usage_text()
    )


def _stored(
    store: StateStore | None, previous: StoredState, obj: str
) -> tuple[ObjectState, pl.DataFrame] | None:
    if store is None or obj not in previous.objects:
        return None
    frame = store.read_frame(previous, obj)
    return (previous.objects[obj], frame) if frame is not None else None
