"""A fake HubSpot CRM API on 127.0.0.1, speaking the v3/v4 JSON wire format.

It serves what the connector reads: object list pages with ``after`` cursors,
batch reads with ``propertiesWithHistory``, search with date filters and the
10,000-result cap, v4 association batch reads, owners (archived too), pipelines
and property definitions. Tests add records through :class:`FakePortal`, queue
429 responses with :meth:`FakePortal.inject`, malformed bodies with
:meth:`FakePortal.inject_body`, and read request counts from
:attr:`FakePortal.requests`.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import json
import re
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "pat-eu1-fake-token"
SEARCH_CAP = 10_000
SEARCH_MAX_LIMIT = 200
LIST_MAX_LIMIT = 100
HISTORY_MAX_LIMIT = 50
BATCH_MAX_INPUTS = 100
CREATED = "2023-01-01T00:00:00.000Z"
# Properties the search endpoint returns whatever the request names.
SEARCH_DEFAULTS = (
    "hs_object_id",
    "createdate",
    "lastmodifieddate",
    "hs_lastmodifieddate",
)


def iso(value: dt.datetime) -> str:
    """Format a UTC datetime the way HubSpot writes datetime properties."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{value.microsecond // 1000:03d}Z"
    )


def epoch_ms(value: dt.datetime) -> str:
    """Format a datetime as epoch milliseconds, as older date properties come."""
    return str(int(value.timestamp() * 1000))


@functools.lru_cache(maxsize=65536)
def _parse_time(text: str) -> float | None:
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text) / 1000
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


@dataclass
class FakeObject:
    """A CRM object: current values and, per property, its (value, time) history."""

    id: str
    properties: dict[str, str]
    history: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    archived: bool = False

    def as_json(self, names: list[str], with_history: list[str]) -> dict[str, Any]:
        props = {name: self.properties.get(name) for name in names}
        props["hs_object_id"] = self.id
        created = self.properties.get("createdate") or CREATED
        updated = (
            self.properties.get("lastmodifieddate")
            or self.properties.get("hs_lastmodifieddate")
            or created
        )
        body: dict[str, Any] = {
            "id": self.id,
            "properties": props,
            "createdAt": _iso_text(created),
            "updatedAt": _iso_text(updated),
            "archived": self.archived,
        }
        if with_history:
            histories = {name: self._history_json(name) for name in with_history}
            body["propertiesWithHistory"] = {k: v for k, v in histories.items() if v}
        return body

    def _history_json(self, name: str) -> list[dict[str, Any]]:
        entries = self.history.get(name)
        if entries is None and self.properties.get(name) is not None:
            entries = [
                (self.properties[name], self.properties.get("createdate") or CREATED)
            ]
        return [
            {
                "value": value,
                "timestamp": _iso_text(at),
                "sourceType": "CRM_UI",
                "sourceId": "userId:1",
                "updatedByUserId": 1,
            }
            for value, at in reversed(entries or [])
        ]


def _iso_text(value: str) -> str:
    seconds = _parse_time(value)
    if seconds is None:
        return value
    return iso(dt.datetime.fromtimestamp(seconds, dt.UTC))


class FakePortal:
    """The data and behaviour switches of one fake HubSpot portal."""

    def __init__(self, token: str = TOKEN):
        self.token = token
        self.objects: dict[str, dict[str, FakeObject]] = {}
        self.links: dict[tuple[str, str], dict[str, list[str]]] = {}
        self.owners: list[dict[str, Any]] = []
        self.pipelines: dict[str, list[dict[str, Any]]] = {}
        self.definitions: dict[str, list[dict[str, Any]]] = {}
        self.association_page_size = 500
        self.faults: deque[Fault] = deque()
        self.requests: Counter[str] = Counter()
        self.search_bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._next_id = 1000
        self._time_index: dict[
            tuple[str, str], tuple[list[float], list[FakeObject]]
        ] = {}

    # Building data.

    def add(
        self,
        object_type: str,
        properties: dict[str, str | None],
        *,
        history: dict[str, list[tuple[str, str]]] | None = None,
        archived: bool = False,
        object_id: str | None = None,
    ) -> str:
        """Add an object; a property with history takes its last value as current."""
        if object_id is None:
            self._next_id += 1
            object_id = str(self._next_id)
        self._time_index.clear()
        values = {k: v for k, v in properties.items() if v is not None}
        for name, entries in (history or {}).items():
            if entries:
                values[name] = entries[-1][0]
        self.objects.setdefault(object_type, {})[object_id] = FakeObject(
            object_id, values, dict(history or {}), archived
        )
        return object_id

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        """Associate two objects in both directions."""
        self.links.setdefault((from_type, to_type), {}).setdefault(from_id, []).append(
            to_id
        )
        self.links.setdefault((to_type, from_type), {}).setdefault(to_id, []).append(
            from_id
        )

    def add_owner(
        self,
        owner_id: str,
        user_id: int,
        *,
        teams: tuple[str, ...] = (),
        archived: bool = False,
        archived_at: str = "2024-06-30T12:00:00.000Z",
    ) -> None:
        """Add an owner; archived owners are listed only with ``archived=true``.

        An archived owner's ``updatedAt`` is ``archived_at``, when it was archived.
        """
        self.owners.append(
            {
                "id": owner_id,
                "email": f"owner{owner_id}@example.com",
                "type": "PERSON",
                "firstName": "Owner",
                "lastName": owner_id,
                "userId": None if archived else user_id,
                "userIdIncludingInactive": user_id,
                "createdAt": "2022-01-01T00:00:00.000Z",
                "updatedAt": archived_at if archived else "2023-01-01T00:00:00.000Z",
                "archived": archived,
                "teams": [
                    {"id": str(900 + i), "name": name, "primary": i == 0}
                    for i, name in enumerate(teams)
                ],
            }
        )

    def add_pipeline(
        self,
        object_type: str,
        pipeline_id: str,
        label: str,
        stages: list[tuple[str, str, bool, float]],
    ) -> None:
        """Add a pipeline; each stage is (id, label, is closed, probability)."""
        self.pipelines.setdefault(object_type, []).append(
            {
                "id": pipeline_id,
                "label": label,
                "displayOrder": len(self.pipelines.get(object_type, [])),
                "createdAt": CREATED,
                "updatedAt": CREATED,
                "archived": False,
                "stages": [
                    {
                        "id": stage_id,
                        "label": stage_label,
                        "displayOrder": order,
                        "metadata": {
                            "isClosed": str(closed).lower(),
                            "probability": str(probability),
                        },
                        "createdAt": CREATED,
                        "updatedAt": CREATED,
                        "archived": False,
                        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                    }
                    for order, (
                        stage_id,
                        stage_label,
                        closed,
                        probability,
                    ) in enumerate(stages)
                ],
            }
        )

    def define(
        self,
        object_type: str,
        name: str,
        kind: str = "string",
        options: list[tuple[str, str]] = (),  # type: ignore[assignment]
    ) -> None:
        """Add a property definition; ``options`` are (value, label) pairs."""
        field_type = {"enumeration": "select", "date": "date", "datetime": "date"}.get(
            kind, "text"
        )
        self.definitions.setdefault(object_type, []).append(
            {
                "name": name,
                "label": name.replace("_", " ").title(),
                "type": kind,
                "fieldType": field_type,
                "description": "",
                "groupName": "contactinformation",
                "options": [
                    {"value": value, "label": label, "displayOrder": i, "hidden": False}
                    for i, (value, label) in enumerate(options)
                ],
                "hubspotDefined": True,
                "hidden": False,
                "formField": False,
                "calculated": False,
                "externalOptions": False,
                "hasUniqueValue": False,
                "createdAt": CREATED,
                "updatedAt": CREATED,
                "archived": False,
            }
        )

    def inject(
        self, status: int = 429, *, retry_after: str | None = None, count: int = 1
    ) -> None:
        """Return ``status`` for the next ``count`` requests, then serve normally."""
        headers = {} if retry_after is None else {"Retry-After": retry_after}
        for _ in range(count):
            self.faults.append(Fault(status, headers))

    def inject_body(
        self,
        body: bytes,
        *,
        status: int = 200,
        content_type: str = "application/json;charset=utf-8",
        count: int = 1,
    ) -> None:
        """Send ``body`` as it is, with ``status``, for the next ``count`` requests."""
        headers = {"Content-Type": content_type}
        for _ in range(count):
            self.faults.append(Fault(status, headers, body))

    # Serving.

    def live(self, object_type: str) -> list[FakeObject]:
        objects = self.objects.get(object_type, {}).values()
        return sorted((o for o in objects if not o.archived), key=lambda o: int(o.id))

    def by_time(
        self, object_type: str, name: str
    ) -> tuple[list[float], list[FakeObject]]:
        """Live objects with a time in property ``name``, sorted by it (cached)."""
        key = (object_type, name)
        if key not in self._time_index:
            pairs = sorted(
                (
                    (seconds, o)
                    for o in self.live(object_type)
                    if (seconds := _parse_time(o.properties.get(name, ""))) is not None
                ),
                key=lambda pair: (pair[0], int(pair[1].id)),
            )
            self._time_index[key] = ([t for t, _ in pairs], [o for _, o in pairs])
        return self._time_index[key]


@dataclass(frozen=True)
class Fault:
    """A queued response: a status, extra headers and a raw body or none."""

    status: int
    headers: dict[str, str]
    body: bytes | None = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    portal: FakePortal

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        portal = self.portal
        with portal.lock:
            portal.requests[f"{method} {url.path.rstrip('/')}"] += 1
            fault = portal.faults.popleft() if portal.faults else None
        if fault is not None and fault.body is not None:
            self._send_raw(fault.status, fault.body, fault.headers)
            return
        if fault is not None:
            self._send(fault.status, _error(fault.status), fault.headers)
            return
        if self.headers.get("Authorization") != f"Bearer {portal.token}":
            self._send(401, _error(401))
            return
        try:
            status, payload = _route(portal, method, url.path.rstrip("/"), query, body)
        except Exception as exc:  # noqa: BLE001 - a fake bug becomes a visible 500
            status, payload = 500, _error(500, f"fake server error: {exc!r}")
        self._send(status, payload)

    def _send(
        self, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        content = {"Content-Type": "application/json;charset=utf-8"}
        self._send_raw(status, json.dumps(payload).encode(), content | (headers or {}))

    def _send_raw(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _error(status: int, message: str | None = None) -> dict[str, Any]:
    categories = {
        400: "VALIDATION_ERROR",
        401: "INVALID_AUTHENTICATION",
        404: "OBJECT_NOT_FOUND",
        429: "RATE_LIMITS",
    }
    body = {
        "status": "error",
        "message": message
        or {429: "You have reached your secondly limit."}.get(status, "error"),
        "correlationId": "00000000-0000-0000-0000-000000000000",
        "category": categories.get(status, "INTERNAL_ERROR"),
    }
    if status == 429:
        body["errorType"] = "RATE_LIMIT"
        body["policyName"] = "SECONDLY"
    return body


def _names(query: dict[str, list[str]], key: str) -> list[str]:
    return [name for value in query.get(key, []) for name in value.split(",") if name]


def _route(
    portal: FakePortal,
    method: str,
    path: str,
    query: dict[str, list[str]],
    body: dict[str, Any],
) -> tuple[int, Any]:
    routes = (
        ("GET", r"/crm/v3/objects/(\w+)", _list_objects),
        ("POST", r"/crm/v3/objects/(\w+)/batch/read", _batch_read),
        ("POST", r"/crm/v3/objects/(\w+)/search", _search),
        ("POST", r"/crm/v4/associations/(\w+)/(\w+)/batch/read", _associations),
        ("GET", r"/crm/v3/owners", _owners),
        ("GET", r"/crm/v3/pipelines/(\w+)", _pipelines),
        ("GET", r"/crm/v3/properties/(\w+)", _properties),
    )
    for route_method, pattern, handler in routes:
        match = re.fullmatch(pattern, path)
        if match and route_method == method:
            return handler(portal, query, body, *match.groups())
    return 404, _error(404, f"no route for {method} {path}")


def _list_objects(
    portal: FakePortal, query: dict, body: dict, object_type: str
) -> tuple[int, Any]:
    names = _names(query, "properties")
    with_history = _names(query, "propertiesWithHistory")
    cap = HISTORY_MAX_LIMIT if with_history else LIST_MAX_LIMIT
    limit = min(int(query.get("limit", ["10"])[0]), cap)
    archived = query.get("archived", ["false"])[0].lower() == "true"
    objects = [
        o
        for o in sorted(
            portal.objects.get(object_type, {}).values(), key=lambda o: int(o.id)
        )
        if o.archived == archived
    ]
    after = query.get("after", [None])[0]
    if after is not None:
        objects = [o for o in objects if int(o.id) >= int(after)]
    page, rest = objects[:limit], objects[limit:]
    payload: dict[str, Any] = {
        "results": [o.as_json(names, with_history) for o in page]
    }
    if rest:
        payload["paging"] = {
            "next": {"after": rest[0].id, "link": f"?after={rest[0].id}"}
        }
    return 200, payload


def _batch_read(
    portal: FakePortal, query: dict, body: dict, object_type: str
) -> tuple[int, Any]:
    inputs = [item["id"] for item in body.get("inputs", [])]
    if len(inputs) > BATCH_MAX_INPUTS:
        return 400, _error(400, f"at most {BATCH_MAX_INPUTS} inputs per batch")
    archived = query.get("archived", ["false"])[0].lower() == "true"
    store = portal.objects.get(object_type, {})
    found = [store[i] for i in inputs if i in store and store[i].archived == archived]
    missing = [i for i in inputs if i not in {o.id for o in found}]
    names = body.get("properties") or []
    with_history = body.get("propertiesWithHistory") or []
    payload: dict[str, Any] = {
        "status": "COMPLETE",
        "results": [o.as_json(names, with_history) for o in found],
        "startedAt": CREATED,
        "completedAt": CREATED,
    }
    if not missing:
        return 200, payload
    payload["numErrors"] = 1
    payload["errors"] = [_not_found(object_type, missing)]
    return 207, payload


def _not_found(object_type: str, ids: list[str]) -> dict[str, Any]:
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": f"Could not get some {object_type} objects; they may be deleted.",
        "context": {"ids": ids},
        "errors": [],
        "links": {},
    }


def _matches(obj: FakeObject, rule: dict[str, Any]) -> bool:
    raw = obj.properties.get(rule["propertyName"])
    if rule["propertyName"] == "hs_object_id":
        raw = obj.id
    if raw is None:
        return False
    value, target = _parse_time(raw), _parse_time(str(rule.get("value", "")))
    if value is None or target is None:
        return rule["operator"] == "EQ" and raw == rule.get("value")
    match rule["operator"]:
        case "GTE":
            return value >= target
        case "GT":
            return value > target
        case "LT":
            return value < target
        case "LTE":
            return value <= target
        case "EQ":
            return value == target
        case "BETWEEN":
            high = _parse_time(str(rule["highValue"]))
            return high is not None and target <= value <= high
    return False


def _range_hits(
    portal: FakePortal, object_type: str, groups: list[dict[str, Any]]
) -> list[FakeObject] | None:
    """Find the hits of one group of date range filters in the sorted index.

    Returns ``None`` for any other query, which is then scanned object by object.
    """
    if len(groups) != 1 or not groups[0]["filters"]:
        return None
    rules = groups[0]["filters"]
    names = {rule["propertyName"] for rule in rules}
    if len(names) != 1 or any(
        rule["operator"] not in ("GTE", "GT", "LT", "LTE") for rule in rules
    ):
        return None
    times, objects = portal.by_time(object_type, names.pop())
    low, high = 0, len(times)
    for rule in rules:
        bound = _parse_time(str(rule["value"]))
        if bound is None:
            return None
        match rule["operator"]:
            case "GTE":
                low = max(low, bisect.bisect_left(times, bound))
            case "GT":
                low = max(low, bisect.bisect_right(times, bound))
            case "LT":
                high = min(high, bisect.bisect_left(times, bound))
            case "LTE":
                high = min(high, bisect.bisect_right(times, bound))
    return sorted(objects[low:high], key=lambda o: int(o.id))


def _search(
    portal: FakePortal, query: dict, body: dict, object_type: str
) -> tuple[int, Any]:
    portal.search_bodies.append(body)
    limit = int(body.get("limit") or 10)
    if limit > SEARCH_MAX_LIMIT:
        return 400, _error(400, f"limit must be at most {SEARCH_MAX_LIMIT}")
    after = int(body.get("after") or 0)
    if after >= SEARCH_CAP:
        return 400, _error(400, f"paging past {SEARCH_CAP} results is not supported")
    groups = body.get("filterGroups") or [{"filters": []}]
    hits = _range_hits(portal, object_type, groups)
    if hits is None:
        hits = [
            o
            for o in portal.live(object_type)
            if any(
                all(_matches(o, rule) for rule in group["filters"]) for group in groups
            )
        ]
    end = min(after + limit, len(hits), SEARCH_CAP)
    names = list(dict.fromkeys([*SEARCH_DEFAULTS, *(body.get("properties") or [])]))
    payload: dict[str, Any] = {
        "total": len(hits),
        "results": [o.as_json(names, []) for o in hits[after:end]],
    }
    if end < min(len(hits), SEARCH_CAP):
        payload["paging"] = {"next": {"after": str(end), "link": f"?after={end}"}}
    return 200, payload


def _associations(
    portal: FakePortal, query: dict, body: dict, from_type: str, to_type: str
) -> tuple[int, Any]:
    table = portal.links.get((from_type, to_type), {})
    results, missing = [], []
    size = portal.association_page_size
    for item in body.get("inputs", []):
        targets = table.get(item["id"], [])
        if not targets:
            missing.append(item["id"])
            continue
        start = int(item.get("after") or 0)
        result: dict[str, Any] = {
            "from": {"id": item["id"]},
            "to": [
                {
                    "toObjectId": int(target),
                    "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": None}
                    ],
                }
                for target in targets[start : start + size]
            ],
        }
        if start + size < len(targets):
            result["paging"] = {"next": {"after": str(start + size), "link": None}}
        results.append(result)
    payload: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": CREATED,
        "completedAt": CREATED,
    }
    if not missing:
        return 200, payload
    payload["numErrors"] = len(missing)
    payload["errors"] = [_not_found(from_type, missing)]
    return 207, payload


def _owners(portal: FakePortal, query: dict, body: dict) -> tuple[int, Any]:
    archived = query.get("archived", ["false"])[0].lower() == "true"
    owners = [o for o in portal.owners if o["archived"] == archived]
    start = int(query.get("after", ["0"])[0])
    limit = min(int(query.get("limit", ["100"])[0]), LIST_MAX_LIMIT)
    payload: dict[str, Any] = {"results": owners[start : start + limit]}
    if start + limit < len(owners):
        payload["paging"] = {"next": {"after": str(start + limit), "link": None}}
    return 200, payload


def _pipelines(
    portal: FakePortal, query: dict, body: dict, object_type: str
) -> tuple[int, Any]:
    return 200, {"results": portal.pipelines.get(object_type, [])}


def _properties(
    portal: FakePortal, query: dict, body: dict, object_type: str
) -> tuple[int, Any]:
    return 200, {"results": portal.definitions.get(object_type, [])}


class FakeHubSpot:
    """The fake portal served over plain HTTP on 127.0.0.1; use as a context manager."""

    def __init__(self, portal: FakePortal | None = None):
        self.portal = portal or FakePortal()
        handler = type("Handler", (_Handler,), {"portal": self.portal})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
        )

    @property
    def url(self) -> str:
        """The base URL to pass as the client's ``host``."""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeHubSpot:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


LIFECYCLE_OPTIONS = [
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
]
LEAD_STATUS_OPTIONS = [
    ("NEW", "New"),
    ("OPEN", "Open"),
    ("IN_PROGRESS", "In Progress"),
    ("OPEN_DEAL", "Open Deal"),
    ("UNQUALIFIED", "Unqualified"),
    ("ATTEMPTED_TO_CONTACT", "Attempted to contact"),
    ("CONNECTED", "Connected"),
    ("BAD_TIMING", "Bad Timing"),
]
DEAL_STAGES = [
    ("appointmentscheduled", "Appointment Scheduled", False, 0.2),
    ("qualifiedtobuy", "Qualified To Buy", False, 0.4),
    ("contractsent", "Contract Sent", False, 0.9),
    ("closedwon", "Closed Won", True, 1.0),
    ("closedlost", "Closed Lost", True, 0.0),
]


def define_standard_portal(portal: FakePortal, *, owners: bool = True) -> None:
    """Add the property definitions and deal pipeline every test portal has.

    With ``owners``, also owners 101 and 102 on the Sales team (102 archived),
    201 on Marketing and 301 on no team.
    """
    portal.define("contacts", "lifecyclestage", "enumeration", LIFECYCLE_OPTIONS)
    portal.define("contacts", "hs_lead_status", "enumeration", LEAD_STATUS_OPTIONS)
    for name, kind in (
        ("createdate", "datetime"),
        ("lastmodifieddate", "datetime"),
        ("hubspot_owner_id", "enumeration"),
        ("hubspot_owner_assigneddate", "datetime"),
        ("associatedcompanyid", "number"),
        ("hs_merged_object_ids", "enumeration"),
        ("email", "string"),
        ("hubspotscore", "number"),
        ("hs_analytics_source", "enumeration"),
        ("recent_conversion_date", "datetime"),
        ("hs_email_last_send_date", "datetime"),
        ("rejection_reason", "string"),
    ):
        portal.define("contacts", name, kind)
    for stage, _ in LIFECYCLE_OPTIONS:
        portal.define("contacts", f"hs_lifecyclestage_{stage}_date", "datetime")
        portal.define("contacts", f"hs_v2_date_entered_{stage}", "datetime")
    for name, kind in (
        ("amount", "number"),
        ("dealstage", "enumeration"),
        ("closedate", "datetime"),
    ):
        portal.define("deals", name, kind)
    portal.define("companies", "hs_is_target_account", "bool")
    portal.add_pipeline("deals", "default", "Sales Pipeline", DEAL_STAGES)
    if not owners:
        return
    portal.add_owner("101", 9101, teams=("Sales",))
    portal.add_owner("102", 9102, teams=("Sales",), archived=True)
    portal.add_owner("201", 9201, teams=("Marketing",))
    portal.add_owner("301", 9301)


_LIFECYCLE_OF_STAGE = {
    "mql": "marketingqualifiedlead",
    "sql": "salesqualifiedlead",
    "opportunity": "opportunity",
    "customer": "customer",
}
_LEAD_STATUS_OF_STAGE = {
    "sal": "IN_PROGRESS",
    "rejected": "UNQUALIFIED",
    "recycled": "BAD_TIMING",
}
_LIFECYCLE_RANK = {value: rank for rank, (value, _) in enumerate(LIFECYCLE_OPTIONS)}
_TEAM_NAMES = {"sales": ("Sales",), "marketing": ("Marketing",), "other": ()}
_ENGAGEMENT_OF_KIND = {
    "call": "calls",
    "email": "emails",
    "meeting": "meetings",
    "sms": "communications",
    "other": "communications",
    "task": "tasks",
}


class IdMap:
    """Numeric HubSpot ids handed out for the ids of another CRM, per object type."""

    def __init__(self) -> None:
        self.ids: dict[str, dict[str, str]] = {}
        self._next = 100

    def get(self, object_type: str, source_id: str | None) -> str | None:
        """Return the HubSpot id for ``source_id``, assigning the next free one."""
        if source_id is None:
            return None
        table = self.ids.setdefault(object_type, {})
        if source_id not in table:
            self._next += 1
            table[source_id] = str(self._next)
        return table[source_id]


def portal_from_tables(
    tables: Any, emails: dict[str, str] | None = None
) -> tuple[FakePortal, IdMap]:
    """Build a portal holding the same people and events as canonical ``tables``.

    Each lead becomes a contact, created at the same time. Its ``mql``, ``sql``,
    ``opportunity`` and ``customer`` entries become lifecycle-stage history (a
    stage that does not move forward is cleared first, as HubSpot requires), and
    ``sal``, ``rejected`` and ``recycled`` entries become lead-status history
    (IN_PROGRESS, UNQUALIFIED, BAD_TIMING) with the rejection reason beside it.
    Every contact starts with the lead status NEW; a lead whose status is
    unmapped (a key of ``tables.unmapped_statuses``) ends with that status
    spelled as a HubSpot value (``Contacted - Waiting`` as CONTACTED_WAITING).
    Owner events become owner history, completed activities engagements, open
    ones tasks, deals keep their stage history, users become owners (inactive
    ones archived). Responded marketing touches become form conversions and the
    others marketing e-mail sends.
    ``emails`` maps a lead id to its address, so e-mail hashes match.
    """
    portal = FakePortal()
    define_standard_portal(portal, owners=False)
    ids = IdMap()
    _owners_from_users(portal, ids, tables["users"])
    for company in tables["accounts"].iter_rows(named=True):
        target = company["is_target"]
        portal.add(
            "companies",
            {"hs_is_target_account": None if target is None else str(target).lower()},
            object_id=ids.get("companies", company["account_id"]),
        )
    _contacts_from_leads(portal, ids, tables, emails or {})
    _engagements_from_activities(portal, ids, tables["activities"])
    _deals_from_opportunities(portal, ids, tables)
    return portal, ids


def _win_probability(closed: bool | None, won: bool | None) -> float:
    """Return a deal stage's win probability: 1 won, 0 lost, 0.5 still open."""
    if won:
        return 1.0
    if closed:
        return 0.0
    return 0.5


def _owners_from_users(portal: FakePortal, ids: IdMap, users: Any) -> None:
    for number, user in enumerate(users.iter_rows(named=True)):
        portal.add_owner(
            ids.get("owners", user["user_id"]) or "",
            50_000 + number,
            teams=_TEAM_NAMES.get(user["team"], ()),
            archived=not user["is_active"],
            archived_at=iso(user["deactivated_at"])
            if user["deactivated_at"] is not None
            else "2024-06-30T12:00:00.000Z",
        )


def _contacts_from_leads(
    portal: FakePortal, ids: IdMap, tables: Any, emails: dict
) -> None:
    events: dict[str, list[dict[str, Any]]] = {}
    for event in tables["stage_events"].sort("entered_at").iter_rows(named=True):
        events.setdefault(event["lead_id"], []).append(event)
    owners: dict[str, list[tuple[str, str]]] = {}
    for event in tables["owner_events"].sort("assigned_at").iter_rows(named=True):
        owner = ids.get("owners", event["owner_id"]) or ""
        owners.setdefault(event["lead_id"], []).append(
            (owner, iso(event["assigned_at"]))
        )
    touches: dict[tuple[str, bool], list[tuple[str, str]]] = {}
    for touch in tables["touches"].sort("touched_at").iter_rows(named=True):
        if touch["lead_id"] is not None:
            when = iso(touch["touched_at"])
            key = (touch["lead_id"], bool(touch["responded"]))
            touches.setdefault(key, []).append((when, when))
    unmapped = set(tables.unmapped_statuses)
    for lead in tables["leads"].iter_rows(named=True):
        lead_id = lead["lead_id"]
        history = _stage_history(lead["created_at"], events.get(lead_id, []))
        if lead["status_raw"] in unmapped:
            last = max(at for entries in history.values() for _, at in entries)
            custom = re.sub(r"[^A-Z0-9]+", "_", lead["status_raw"].upper())
            history["hs_lead_status"].append((custom, _iso_text(last)))
        history["hubspot_owner_id"] = owners.get(lead_id, [])
        history["recent_conversion_date"] = touches.get((lead_id, True), [])
        history["hs_email_last_send_date"] = touches.get((lead_id, False), [])
        values = {
            "createdate": iso(lead["created_at"]),
            "lastmodifieddate": iso(lead["created_at"]),
            "hubspot_owner_id": ids.get("owners", lead["owner_id"]),
            "hubspotscore": None if lead["score"] is None else f"{lead['score']:g}",
            "hs_analytics_source": lead["source"],
            "associatedcompanyid": ids.get("companies", lead["account_id"]),
            "email": emails.get(lead_id),
        }
        portal.add(
            "contacts", values, history=history, object_id=ids.get("contacts", lead_id)
        )


def _stage_history(
    created: dt.datetime, events: list[dict[str, Any]]
) -> dict[str, list]:
    lifecycle = [("lead", iso(created))]
    status = [("NEW", iso(created))]
    reasons: list[tuple[str, str]] = []
    for event in events:
        when = event["entered_at"]
        value = _LIFECYCLE_OF_STAGE.get(event["stage"])
        if value is not None:
            if _LIFECYCLE_RANK[value] <= _LIFECYCLE_RANK[lifecycle[-1][0] or "lead"]:
                lifecycle.append(("", iso(when - dt.timedelta(milliseconds=1))))
            lifecycle.append((value, iso(when)))
            continue
        status.append((_LEAD_STATUS_OF_STAGE[event["stage"]], iso(when)))
        if event["reason"] is not None:
            reasons.append((event["reason"], iso(when)))
    return {
        "lifecyclestage": lifecycle,
        "hs_lead_status": status,
        "rejection_reason": reasons,
    }


def _engagements_from_activities(
    portal: FakePortal, ids: IdMap, activities: Any
) -> None:
    for activity in activities.iter_rows(named=True):
        kind = activity["kind"] if activity["is_completed"] else "task"
        object_type = _ENGAGEMENT_OF_KIND.get(kind, "tasks")
        engagement_id = ids.get("engagements", activity["activity_id"]) or ""
        values = {
            "hs_timestamp": iso(activity["occurred_at"]),
            "hs_lastmodifieddate": iso(activity["occurred_at"]),
            "hubspot_owner_id": ids.get("owners", activity["owner_id"]),
            "hs_engagement_source": "SEQUENCES"
            if activity["is_automated"]
            else "CRM_UI",
            **_engagement_details(object_type, activity),
        }
        portal.add(object_type, values, object_id=engagement_id)
        contact = ids.get("contacts", activity["lead_id"])
        if contact is not None:
            portal.associate(object_type, engagement_id, "contacts", contact)


def _engagement_details(object_type: str, activity: dict[str, Any]) -> dict[str, str]:
    direction = (activity["direction"] or "outbound").upper()
    match object_type:
        case "calls":
            return {"hs_call_direction": direction, "hs_call_status": "COMPLETED"}
        case "emails":
            inbound = direction == "INBOUND"
            return {
                "hs_email_direction": "INCOMING_EMAIL" if inbound else "EMAIL",
                "hs_email_status": "SENT",
            }
        case "meetings":
            return {"hs_meeting_outcome": "COMPLETED"}
        case "communications":
            channel = "SMS" if activity["kind"] == "sms" else "LINKEDIN_MESSAGE"
            return {"hs_communication_channel_type": channel}
    if activity["is_completed"]:
        return {
            "hs_task_status": "COMPLETED",
            "hs_task_completion_date": iso(activity["occurred_at"]),
        }
    return {"hs_task_status": "NOT_STARTED", "hs_task_type": activity["kind"].upper()}


def _deals_from_opportunities(portal: FakePortal, ids: IdMap, tables: Any) -> None:
    opportunities = tables["opportunities"]
    stages = {
        row["stage_raw"]: (row["is_closed"], row["is_won"])
        for row in opportunities.select("stage_raw", "is_closed", "is_won").iter_rows(
            named=True
        )
    }
    for label in tables["opportunity_history"]["stage_raw"].unique().to_list():
        stages.setdefault(label, (False, False))
    portal.pipelines["deals"] = []  # replaces the standard pipeline
    portal.add_pipeline(
        "deals",
        "default",
        "Sales Pipeline",
        [
            (
                _stage_id(label),
                label,
                bool(closed),
                _win_probability(closed, won),
            )
            for label, (closed, won) in sorted(stages.items())
        ],
    )
    history: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for change in (
        tables["opportunity_history"].sort("changed_at").iter_rows(named=True)
    ):
        entry = history.setdefault(
            change["opportunity_id"], {"dealstage": [], "amount": []}
        )
        when = iso(change["changed_at"])
        entry["dealstage"].append((_stage_id(change["stage_raw"]), when))
        if change["amount"] is not None:
            entry["amount"].append((f"{change['amount']:g}", when))
    for deal in opportunities.iter_rows(named=True):
        deal_id = ids.get("deals", deal["opportunity_id"]) or ""
        values = {
            "createdate": iso(deal["created_at"]),
            "hs_lastmodifieddate": iso(deal["created_at"]),
            "closedate": None
            if deal["close_date"] is None
            else deal["close_date"].isoformat(),
            "amount": None if deal["amount"] is None else f"{deal['amount']:g}",
            "dealstage": _stage_id(deal["stage_raw"]),
            "pipeline": "default",
            "hubspot_owner_id": ids.get("owners", deal["owner_id"]),
            "hs_analytics_source": deal["source"],
        }
        portal.add(
            "deals",
            values,
            history=history.get(deal["opportunity_id"]),
            object_id=deal_id,
        )
        for lead_id in deal["lead_ids"] or []:
            portal.associate(
                "deals", deal_id, "contacts", ids.get("contacts", lead_id) or ""
            )
        company = ids.get("companies", deal["account_id"])
        if company is not None:
            portal.associate("deals", deal_id, "companies", company)


def _stage_id(label: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "", (label or "").lower())
