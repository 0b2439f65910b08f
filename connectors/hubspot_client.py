"""HubSpot CRM API access through hubspot-api-client: paging, search windows, retries.

Every call goes through :meth:`HubSpotApi.call`, which logs one INFO line per
request (method, path and paging cursor, never the token) and retries a 429, a
5xx or a timeout with bounded exponential backoff, honouring ``Retry-After``. A
refused connection or an unknown host name gets only two quick retries. The
client raises a 429 as a plain ``ApiException``, so the status code decides.
Every body is checked before use: a body that is not JSON, or whose ``results``
are not a list of objects, raises :class:`HubSpotError` naming the endpoint.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4 import exceptions as association_errors
from hubspot.crm.associations.v4.models import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.objects import exceptions as object_errors
from hubspot.crm.objects.models import (
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
)
from hubspot.crm.owners import exceptions as owner_errors
from hubspot.crm.owners.models import CollectionResponsePublicOwnerForwardPaging
from hubspot.crm.pipelines import exceptions as pipeline_errors
from hubspot.crm.pipelines.models import CollectionResponsePipelineNoPaging
from hubspot.crm.properties import exceptions as property_errors
from hubspot.crm.properties.models import CollectionResponsePropertyNoPaging

from config.models import HubSpotConfig
from connectors.errors import RevalignError

logger = logging.getLogger(__name__)

# Page and batch sizes are HubSpot's documented maximums for each endpoint.
LIST_LIMIT = 100
HISTORY_LIST_LIMIT = 50
BATCH_READ_LIMIT = 100
SEARCH_LIMIT = 200
ASSOCIATION_BATCH_LIMIT = 1000
# A search query returns at most this many results; paging past it fails.
SEARCH_CAP = 10_000
BACKOFF_BASE_SECONDS = 1.0
# A refused connection or an unknown host name is rarely transient (a wrong
# hubspot.host or a stopped proxy), so it gets two quick retries, not the backoff.
QUICK_RETRIES = 2
QUICK_BACKOFF_SECONDS = 0.5
REQUEST_TIMEOUT = (10.0, 120.0)  # connect and read timeouts, seconds
DEFAULT_HOST = "https://api.hubapi.com"

API_EXCEPTIONS = (
    object_errors.ApiException,
    association_errors.ApiException,
    owner_errors.ApiException,
    pipeline_errors.ApiException,
    property_errors.ApiException,
)
NETWORK_EXCEPTIONS = (urllib3.exceptions.HTTPError, OSError)

T = TypeVar("T")


class HubSpotError(RevalignError):
    """Raised when the HubSpot API cannot be reached or rejects a request."""

    def __init__(self, message: str, *, retryable: bool = False, exit_code: int = 4):
        super().__init__(message)
        self.retryable = retryable
        self.exit_code = exit_code


@dataclass
class Record:
    """One CRM object: its id, property values as text, and property histories.

    ``history`` maps a property name to ``(value, timestamp)`` pairs, newest
    first as HubSpot sends them; timestamps are ISO 8601 text.
    """

    id: str
    properties: dict[str, str | None]
    history: dict[str, list[tuple[str | None, str]]] = field(default_factory=dict)
    archived: bool = False


def resolve_token(settings: HubSpotConfig) -> str:
    """Return the private-app access token from its variable or Prefect Secret block.

    Raises:
        HubSpotError: neither source contains a token (exit code 2, not retryable).
    """
    token = os.environ.get(settings.token_env, "").strip()
    if token:
        return token
    if settings.token_block:
        import httpx
        from prefect.blocks.system import Secret

        try:
            return str(Secret.load(settings.token_block).get()).strip()
        except (ValueError, httpx.HTTPError) as exc:
            # Secret.load raises ValueError for a block that does not exist,
            # and httpx.HTTPError when the Prefect API is unreachable or
            # returns an error status.
            msg = (
                f"no HubSpot access token: the environment variable "
                f"{settings.token_env!r} is unset and Prefect Secret block "
                f"{settings.token_block!r} could not be loaded ({exc}); set the "
                f"variable, or point hubspot.token_block at an existing block and "
                f"check that the Prefect API is reachable"
            )
            raise HubSpotError(msg, exit_code=2) from None
    msg = (
        f"no HubSpot access token: the environment variable {settings.token_env!r} "
        f"is unset; set it to a private-app token, or name a Prefect Secret block "
        f"in hubspot.token_block"
    )
    raise HubSpotError(msg, exit_code=2)


def build_client(settings: HubSpotConfig, token: str) -> HubSpot:
    """Return a client for ``settings.host`` that verifies TLS with the CA bundle."""
    options: dict[str, Any] = {"access_token": token, "host": settings.host}
    if settings.ca_bundle is not None:
        options["ssl_ca_cert"] = str(settings.ca_bundle)
    return HubSpot(**options)


def _retry_after_seconds(exc: Exception) -> float | None:
    headers = getattr(exc, "headers", None)
    value = headers.get("Retry-After") if headers else None
    if value is None:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _describe_failure(exc: Exception, label: str) -> HubSpotError:
    status = getattr(exc, "status", None)
    body = getattr(exc, "body", None) or b""
    detail = (
        body.decode("utf-8", "replace")[:300]
        if isinstance(body, bytes)
        else str(body)[:300]
    )
    if status == 0:
        reason = getattr(exc, "reason", "")
        msg = (
            f"HubSpot request {label} failed before a response: {reason}; check "
            f"hubspot.ca_bundle"
        )
        return HubSpotError(msg, exit_code=2)
    if status == 401:
        msg = (
            f"HubSpot rejected the access token (401) on {label}; check that the "
            f"token is a current private-app token for this portal"
        )
        return HubSpotError(msg, exit_code=2)
    if status == 403:
        msg = (
            f"HubSpot denied {label} (403): {detail}; grant the private app the "
            f"missing CRM read scopes"
        )
        return HubSpotError(msg, exit_code=2)
    retryable = status is None or status == 429 or status >= 500
    msg = f"HubSpot request {label} failed with status {status}: {detail}"
    return HubSpotError(msg, retryable=retryable, exit_code=4 if retryable else 2)


def _causes(exc: BaseException) -> list[BaseException]:
    """Return ``exc`` and every exception behind it (``reason``, cause, context)."""
    found: list[BaseException] = []
    pending: list[object] = [exc]
    while pending:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or any(
            current is seen for seen in found
        ):
            continue
        found.append(current)
        pending += [
            getattr(current, "reason", None),
            current.__cause__,
            current.__context__,
        ]
    return found


_NETWORK_PROBLEMS: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((ConnectionRefusedError,), "connection refused"),
    ((socket.gaierror, urllib3.exceptions.NameResolutionError), "host name not found"),
    ((TimeoutError, urllib3.exceptions.TimeoutError), "timed out"),
)
QUICK_PROBLEMS = ("connection refused", "host name not found")


def _network_problem(exc: BaseException) -> str | None:
    """Return the known problem behind a network error, or ``None``."""
    causes = _causes(exc)
    for kinds, problem in _NETWORK_PROBLEMS:
        if any(isinstance(cause, kinds) for cause in causes):
            return problem
    return None


class HubSpotApi:
    """The HubSpot endpoints revalign reads, with paging, batching and retries.

    ``sleep`` is called with each backoff delay in seconds, so tests can record
    the delays instead of waiting. ``request_timeout`` is the connect and read
    timeout of each request, in seconds.
    """

    def __init__(
        self,
        client: HubSpot,
        *,
        max_retries: int = 6,
        max_backoff_seconds: float = 60.0,
        request_timeout: tuple[float, float] = REQUEST_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.max_retries = max_retries
        self.max_backoff_seconds = max_backoff_seconds
        self.request_timeout = request_timeout
        self.sleep = sleep
        self.calls = 0
        self.host = str(client.config.get("host") or DEFAULT_HOST).rstrip("/")
        # urllib3 would otherwise retry a 429 carrying Retry-After on its own, unlogged
        # and unbounded by max_backoff_seconds; every retry happens in call().
        client.config["retry"] = urllib3.Retry(
            total=0, respect_retry_after_header=False
        )
        crm = client.crm
        self._basic = crm.objects.basic_api
        self._batch = crm.objects.batch_api
        self._search = crm.objects.search_api
        self._associations = crm.associations.v4.batch_api
        self._owners = crm.owners.owners_api
        self._pipelines = crm.pipelines.pipelines_api
        self._properties = crm.properties.core_api

    def call(
        self, label: str, function: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        """Call one endpoint, retrying 429, 5xx and network errors with backoff.

        A refused connection or an unknown host is retried at most
        :data:`QUICK_RETRIES` times, after 0.5 s and 1 s.

        Raises:
            HubSpotError: the request failed for good or retries ran out.
        """
        for attempt in range(self.max_retries + 1):
            self.calls += 1
            logger.info("HubSpot %s", label)
            try:
                return function(*args, _request_timeout=self.request_timeout, **kwargs)
            except API_EXCEPTIONS as exc:
                status = exc.status or 0
                if not (status == 429 or status >= 500) or attempt == self.max_retries:
                    raise _describe_failure(exc, label) from None
                delay = self._delay(attempt, _retry_after_seconds(exc))
                logger.warning(
                    "HubSpot %s: status %s, retry in %.1f s", label, status, delay
                )
            except NETWORK_EXCEPTIONS as exc:
                problem = _network_problem(exc)
                quick = problem in QUICK_PROBLEMS
                limit = (
                    min(self.max_retries, QUICK_RETRIES) if quick else self.max_retries
                )
                if attempt >= limit:
                    raise self._network_failure(
                        label, exc, problem, attempt + 1
                    ) from None
                delay = (
                    QUICK_BACKOFF_SECONDS * 2**attempt
                    if quick
                    else self._delay(attempt, None)
                )
                logger.warning(
                    "HubSpot %s: %s, retry in %.1f s",
                    label, problem or type(exc).__name__, delay,
                )  # fmt: skip
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _network_failure(
        self, label: str, exc: BaseException, problem: str | None, attempts: int
    ) -> HubSpotError:
        if problem in QUICK_PROBLEMS:
            msg = f"cannot connect to {self.host}: {problem}; check hubspot.host"
            return HubSpotError(msg)
        if problem == "timed out":
            msg = (
                f"HubSpot request {label} to {self.host} timed out {attempts} times; "
                f"check the network or proxy, and retry later"
            )
            return HubSpotError(msg, retryable=True)
        root = _causes(exc)[-1]
        msg = (
            f"HubSpot request {label} to {self.host} failed {attempts} times: "
            f"{type(root).__name__}: {root}"
        )
        return HubSpotError(msg, retryable=True)

    def call_json(
        self, label: str, function: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        """Like :meth:`call`, but return the decoded JSON body, skipping the models.

        The generated models parse every timestamp one by one; object pages are
        decoded here and their timestamps parsed column-wise later.

        Raises:
            HubSpotError: as :meth:`call`, or the body is not a JSON object whose
                ``results`` is a list of objects.
        """
        data, content_type = self._fetch(label, function, *args, **kwargs)
        return _checked_body(label, data, content_type)

    def call_model(
        self,
        label: str,
        function: Callable[..., Any],
        model: type[T],
        *args: Any,
        **kwargs: Any,
    ) -> T:
        """Like :meth:`call_json`, then build ``model`` from the checked body.

        ``function`` must be a bound method of a generated API class, whose
        ``api_client`` builds the model.
        """
        data, content_type = self._fetch(label, function, *args, **kwargs)
        _checked_body(label, data, content_type)
        api_client = function.__self__.api_client  # type: ignore[attr-defined]
        try:
            return api_client.deserialize(_RawBody(data), model)
        except API_EXCEPTIONS as exc:
            # The generated models raise ApiException (status 0) for a bad timestamp.
            raise _invalid_response(label, str(exc.reason)) from None

    def _fetch(
        self, label: str, function: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> tuple[bytes, str]:
        """Return a response's raw body and its Content-Type."""
        response = self.call(label, function, *args, _preload_content=False, **kwargs)
        try:
            return response.data, response.headers.get("Content-Type", "")
        finally:
            response.release_conn()

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff_seconds)
        return min(BACKOFF_BASE_SECONDS * 2**attempt, self.max_backoff_seconds)

    def list_objects(
        self,
        object_type: str,
        properties: Sequence[str],
        history: Sequence[str] = (),
    ) -> Iterator[Record]:
        """Yield every live object of ``object_type``, following ``after`` cursors."""
        limit = HISTORY_LIST_LIMIT if history else LIST_LIMIT
        after: str | None = None
        while True:
            label = f"GET /crm/v3/objects/{object_type} after={after or '-'}"
            page = self.call_json(
                label,
                self._basic.get_page,
                object_type,
                limit=limit,
                after=after,
                properties=list(properties),
                properties_with_history=list(history) or None,
            )
            yield from (_record(result, label) for result in page["results"])
            after = _next_after(page, label)
            if after is None:
                return

    def read_objects(
        self,
        object_type: str,
        ids: Sequence[str],
        properties: Sequence[str],
        history: Sequence[str] = (),
        *,
        archived: bool = False,
    ) -> list[Record]:
        """Read objects by id in batches; ids HubSpot does not find are left out."""
        records: list[Record] = []
        for start in range(0, len(ids), BATCH_READ_LIMIT):
            chunk = ids[start : start + BATCH_READ_LIMIT]
            body = BatchReadInputSimplePublicObjectId(
                inputs=[SimplePublicObjectId(id=object_id) for object_id in chunk],
                properties=list(properties),
                properties_with_history=list(history),
            )
            label = (
                f"POST /crm/v3/objects/{object_type}/batch/read "
                f"({len(chunk)} ids{', archived' if archived else ''})"
            )
            response = self.call_json(
                label, self._batch.read, object_type, body, archived=archived
            )
            records.extend(_record(result, label) for result in response["results"])
        return records

    def search_modified(
        self,
        object_type: str,
        date_property: str,
        start: dt.datetime,
        end: dt.datetime,
        properties: Sequence[str],
        *,
        window: dt.timedelta,
    ) -> list[Record]:
        """Return objects whose ``date_property`` lies in ``[start, end)``, in whole ms.

        The range is searched in windows of at most ``window``; a window whose
        total passes the 10,000-result cap is halved until each part fits.

        Raises:
            HubSpotError: more than 10,000 objects share one millisecond.
        """
        records: list[Record] = []
        step = max(1, int(window.total_seconds() * 1000))
        cursor, stop_ms = _epoch_ms(start), _epoch_ms(end)
        while cursor < stop_ms:
            stop = min(cursor + step, stop_ms)
            records.extend(
                self._search_window(
                    object_type, date_property, cursor, stop, properties
                )
            )
            cursor = stop
        return records

    def _search_window(
        self,
        object_type: str,
        date_property: str,
        start_ms: int,
        end_ms: int,
        properties: Sequence[str],
    ) -> list[Record]:
        first, label = self._search_page(
            object_type, date_property, start_ms, end_ms, properties, None
        )
        total = _search_total(first, label)
        if total > SEARCH_CAP:
            if end_ms - start_ms <= 1:
                msg = (
                    f"HubSpot search on {object_type}: {total} records have "
                    f"{date_property} in the one millisecond at {_iso(start_ms)}, more "
                    f"than the search cap of {SEARCH_CAP}; run with --full-refresh to "
                    f"list them instead"
                )
                raise HubSpotError(msg, exit_code=2)
            middle = (start_ms + end_ms) // 2
            logger.info(
                "HubSpot search on %s: %d results in %s..%s, over the cap; halving",
                object_type, total, _iso(start_ms), _iso(end_ms),
            )  # fmt: skip
            return self._search_window(
                object_type, date_property, start_ms, middle, properties
            ) + self._search_window(
                object_type, date_property, middle, end_ms, properties
            )
        records = [_record(result, label) for result in first["results"]]
        after = _next_after(first, label)
        while after is not None:
            page, label = self._search_page(
                object_type, date_property, start_ms, end_ms, properties, after
            )
            records.extend(_record(result, label) for result in page["results"])
            after = _next_after(page, label)
        return records

    def _search_page(
        self,
        object_type: str,
        date_property: str,
        start_ms: int,
        end_ms: int,
        properties: Sequence[str],
        after: str | None,
    ) -> tuple[dict[str, Any], str]:
        """Return one page of search results and the label of its request."""
        filters = [
            Filter(property_name=date_property, operator="GTE", value=str(start_ms)),
            Filter(property_name=date_property, operator="LT", value=str(end_ms)),
        ]
        body = PublicObjectSearchRequest(
            filter_groups=[FilterGroup(filters=filters)],
            sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            properties=list(properties),
            limit=SEARCH_LIMIT,
            after=after,
        )
        label = (
            f"POST /crm/v3/objects/{object_type}/search {date_property} "
            f"{_iso(start_ms)}..{_iso(end_ms)} after={after or '-'}"
        )
        return self.call_json(label, self._search.do_search, object_type, body), label

    def associations(
        self, from_type: str, to_type: str, ids: Sequence[str]
    ) -> list[tuple[str, str]]:
        """Return ``(from id, to id)`` v4 association pairs, following per-id paging."""
        pairs: list[tuple[str, str]] = []
        pending = [(object_id, None) for object_id in ids]
        while pending:
            chunk, pending = (
                pending[:ASSOCIATION_BATCH_LIMIT],
                pending[ASSOCIATION_BATCH_LIMIT:],
            )
            body = BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[
                    PublicFetchAssociationsBatchRequest(id=i, after=a) for i, a in chunk
                ]
            )
            label = (
                f"POST /crm/v4/associations/{from_type}/{to_type}/batch/read "
                f"({len(chunk)} ids)"
            )
            response = self.call_json(
                label, self._associations.get_page, from_type, to_type, body
            )
            for result in response["results"]:
                from_id, targets = _association_targets(result, label)
                pairs.extend((from_id, target) for target in targets)
                after = _next_after(result, label)
                if after is not None:
                    pending.append((from_id, after))
        return pairs

    def owners(self) -> list[Any]:
        """Return every owner, active and archived (two paged listings)."""
        owners: list[Any] = []
        for archived in (False, True):
            after: str | None = None
            while True:
                flag = str(archived).lower()
                label = f"GET /crm/v3/owners archived={flag} after={after or '-'}"
                page = self.call_model(
                    label,
                    self._owners.get_page,
                    CollectionResponsePublicOwnerForwardPaging,
                    limit=LIST_LIMIT,
                    after=after,
                    archived=archived,
                )
                owners.extend(page.results)
                after = _model_next_after(page.paging)
                if after is None:
                    break
        return owners

    def pipelines(self, object_type: str) -> list[Any]:
        """Return the pipelines of ``object_type`` with their stages."""
        label = f"GET /crm/v3/pipelines/{object_type}"
        page = self.call_model(
            label,
            self._pipelines.get_all,
            CollectionResponsePipelineNoPaging,
            object_type,
        )
        return list(page.results)

    def property_definitions(self, object_type: str) -> list[Any]:
        """Return the property definitions of ``object_type``."""
        label = f"GET /crm/v3/properties/{object_type}"
        page = self.call_model(
            label,
            self._properties.get_all,
            CollectionResponsePropertyNoPaging,
            object_type,
        )
        return list(page.results)


def connect(
    settings: HubSpotConfig, *, sleep: Callable[[float], None] = time.sleep
) -> HubSpotApi:
    """Return a :class:`HubSpotApi` for the portal ``settings`` names."""
    client = build_client(settings, resolve_token(settings))
    return HubSpotApi(
        client,
        max_retries=settings.max_retries,
        max_backoff_seconds=settings.max_backoff_seconds,
        sleep=sleep,
    )


def _epoch_ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def _iso(epoch_ms: int) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC).isoformat(
        timespec="milliseconds"
    )


def _next_after(body: dict[str, Any], label: str) -> str | None:
    paging = body.get("paging") or {}
    following = (paging.get("next") or {}) if isinstance(paging, dict) else None
    if not isinstance(following, dict):
        raise _invalid_response(label, "`paging` is not an object with `next`")
    after = following.get("after")
    return str(after) if after else None


def _model_next_after(paging: Any) -> str | None:
    if paging is None or paging.next is None or not paging.next.after:
        return None
    return str(paging.next.after)


def _record(result: dict[str, Any], label: str) -> Record:
    if "id" not in result:
        raise _invalid_response(label, "a result has no `id`")
    record_id = str(result["id"])
    properties = result.get("properties") or {}
    if not isinstance(properties, dict):
        reason = (
            f"`properties` of result {record_id} is {_json_type(properties)}, "
            f"not an object"
        )
        raise _invalid_response(label, reason)
    return Record(
        id=record_id,
        properties=dict(properties),
        history=_history(result, record_id, label),
        archived=bool(result.get("archived", False)),
    )


def _history(
    result: dict[str, Any], record_id: str, label: str
) -> dict[str, list[tuple[str | None, str]]]:
    histories = result.get("propertiesWithHistory") or {}
    valid = isinstance(histories, dict) and all(
        isinstance(entries, list)
        and all(isinstance(entry, dict) and "timestamp" in entry for entry in entries)
        for entries in histories.values()
    )
    if not valid:
        reason = (
            f"`propertiesWithHistory` of result {record_id} is not an object of "
            f"lists of entries with a `timestamp`"
        )
        raise _invalid_response(label, reason)
    return {
        name: [(entry.get("value"), entry["timestamp"]) for entry in entries]
        for name, entries in histories.items()
    }


def _association_targets(result: dict[str, Any], label: str) -> tuple[str, list[str]]:
    """Return an association result's source id and its target ids."""
    source = result.get("from")
    targets = result.get("to")
    if not isinstance(source, dict) or "id" not in source:
        raise _invalid_response(label, "a result has no `from` object with an `id`")
    if not isinstance(targets, list) or not all(
        isinstance(target, dict) and "toObjectId" in target for target in targets
    ):
        reason = "a result has no `to` list of objects with a `toObjectId`"
        raise _invalid_response(label, reason)
    return str(source["id"]), [str(target["toObjectId"]) for target in targets]


# Checking response bodies.


@dataclass(frozen=True)
class _RawBody:
    """A body in the shape the generated ``ApiClient.deserialize`` reads."""

    data: bytes


def _invalid_response(
    label: str, reason: str, *, retryable: bool = False
) -> HubSpotError:
    msg = f"invalid response from HubSpot for {label}: {reason}"
    return HubSpotError(msg, retryable=retryable)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _checked_body(label: str, data: bytes, content_type: str) -> dict[str, Any]:
    """Decode a JSON body and check that ``results`` is a list of objects.

    Raises:
        HubSpotError: the body is empty, HTML, not JSON or of another shape. Only
            an HTML page is retryable, because proxies and outage pages send HTML.
    """
    if "html" in content_type.lower() or data.lstrip()[:1] == b"<":
        reason = (
            "the body is an HTML page, not JSON; a proxy or an outage page may have "
            "sent it in place of HubSpot"
        )
        raise _invalid_response(label, reason, retryable=True)
    if not data.strip():
        raise _invalid_response(label, "the body is empty")
    try:
        body = json.loads(data)
    except UnicodeDecodeError:
        raise _invalid_response(label, "the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        reason = (
            f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno})"
        )
        raise _invalid_response(label, reason) from None
    if not isinstance(body, dict):
        reason = f"the body is {_json_type(body)}, not a JSON object"
        raise _invalid_response(label, reason)
    if "results" not in body:
        raise _invalid_response(label, "`results` is missing")
    results = body["results"]
    if not isinstance(results, list):
        reason = f"`results` is {_json_type(results)}, not a list of objects"
        raise _invalid_response(label, reason)
    wrong = [item for item in results if not isinstance(item, dict)]
    if wrong:
        reason = f"`results` contains {_json_type(wrong[0])}, not an object"
        raise _invalid_response(label, reason)
    return body


def _search_total(body: dict[str, Any], label: str) -> int:
    total = body.get("total")
    if not isinstance(total, int) or isinstance(total, bool):
        reason = f"`total` is {_json_type(total)}, not a number"
        raise _invalid_response(label, reason)
    return total
