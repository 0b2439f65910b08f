"""A fake Salesforce org served over HTTPS on 127.0.0.1, for connector tests.

It speaks the wire format that ``simple-salesforce`` 1.12 sends and reads: the
SOAP login and the OAuth 2.0 JWT bearer token endpoint, REST ``query`` and
``queryAll`` with ``nextRecordsUrl`` pages, ``sobjects/<object>/describe`` (also
as subrequests of ``composite``),
``limits`` and ``limits/recordCount``, and Bulk API 2.0 query jobs whose results
come as CSV pages chained by ``Sforce-Locator``. Every API response carries a
``Sforce-Limit-Info`` header. Errors are injected with :meth:`FakeSalesforce.fail`.

Records come from a Salesforce export folder (CSV files named by object). The
SOQL parser reads only what the connector sends: a field list or ``COUNT()``,
one object, ``AND``-joined comparisons on datetime fields, and ``ORDER BY``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import itertools
import json
import re
import ssl
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import trustme

ORG_ID = "00D5g00000FakeOrgAA"
USER_ID = "0055g00000ApiUsrAAA"
BOOLEAN_NAMES = re.compile(r"^(Is|Has)[A-Z]")
DATE_NAMES = {"ConvertedDate", "CloseDate", "FirstRespondedDate", "ActivityDate"}
NUMBER_NAMES = {
    "Amount",
    "ActualCost",
    "AnnualRevenue",
    "ExpectedRevenue",
    "Probability",
}
EXPORT_DATETIME = "%Y-%m-%dT%H:%M:%S.%f%z"
DEFAULT_MODSTAMP = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
# History objects are never edited, so they carry no SystemModstamp.
WITHOUT_MODSTAMP = {"LeadHistory"}
SOQL = re.compile(
    r"^SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>.+?))?$",
    re.IGNORECASE | re.DOTALL,
)
CONDITION = re.compile(r"^(\w+)\s*(>=|<=|>|<|=)\s*(\S+)$")


def utc_now() -> dt.datetime:
    """Return the current UTC time to the millisecond, as Salesforce stores it."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _parse_export_datetime(text: str) -> dt.datetime:
    text = text.strip().replace("Z", "+0000")
    if "." not in text:
        text = text[:19] + ".000" + text[19:]
    return dt.datetime.strptime(text, EXPORT_DATETIME).astimezone(dt.UTC)


DATETIME_TEXT = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{4})$"
)
DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NUMBER_TEXT = re.compile(r"^-?\d+(\.\d+)?$")


def _field_type(name: str, values: list[str]) -> str:
    """Return the describe type of an export column from its values or name."""
    filled = [value for value in values if value != ""]

    def all_match(pattern: re.Pattern[str]) -> bool:
        return bool(filled) and all(pattern.match(value) for value in filled)

    if name == "Id":
        return "id"
    if name.endswith("Id"):
        return "reference"
    if BOOLEAN_NAMES.match(name) or (
        filled and all(v.upper() in ("TRUE", "FALSE") for v in filled)
    ):
        return "boolean"
    if all_match(DATE_TEXT):
        return "date"
    if all_match(DATETIME_TEXT):
        return "datetime"
    if name in NUMBER_NAMES or all_match(NUMBER_TEXT):
        return "currency" if name in NUMBER_NAMES else "double"
    if filled:
        return "string"
    if name in DATE_NAMES:
        return "date"
    if name.endswith(("Date", "DateTime")) or name == "SystemModstamp":
        return "datetime"
    return "string"


def _typed(value: str, kind: str) -> Any:
    if value == "":
        return None
    if kind == "boolean":
        return value.upper() == "TRUE"
    if kind == "datetime":
        return _parse_export_datetime(value)
    if kind in ("currency", "double"):
        return float(value)
    return value


@dataclass
class FakeObject:
    """One sObject: its fields with their describe types, and its records."""

    name: str
    fields: dict[str, str]
    records: list[dict[str, Any]] = field(default_factory=list)
    unreadable: set[str] = field(default_factory=set)

    def describe(self) -> dict[str, Any]:
        """Return the ``describe`` response body, without unreadable fields."""
        visible = [name for name in self.fields if name not in self.unreadable]
        return {
            "name": self.name,
            "queryable": True,
            "fields": [
                {
                    "name": name,
                    "type": self.fields[name],
                    "custom": name.endswith("__c"),
                }
                for name in visible
            ],
        }


class FakeOrg:
    """The records of a fake org, with the edits a test makes between runs."""

    def __init__(self, objects: dict[str, FakeObject]) -> None:
        self.objects = objects
        self.lock = threading.Lock()

    @classmethod
    def from_export(
        cls, folder: Path, *, modstamp: dt.datetime = DEFAULT_MODSTAMP
    ) -> FakeOrg:
        """Load every ``<Object>.csv`` in ``folder`` that has an ``Id`` column.

        ``IsDeleted`` and (except on history objects) ``SystemModstamp`` are added
        when the file lacks them; a missing modstamp becomes the record's
        ``CreatedDate``, or ``modstamp`` when it has none.
        """
        objects = {}
        for path in sorted(folder.glob("*.csv")):
            with path.open(encoding="utf-8-sig", newline="") as handle:
                rows = list(csv.DictReader(handle))
                header = list(rows[0]) if rows else next(csv.reader(path.open()), [])
            if "Id" in header:
                objects[path.stem] = cls._object(path.stem, header, rows, modstamp)
        return cls(objects)

    @staticmethod
    def _object(
        name: str,
        header: list[str],
        rows: list[dict[str, str]],
        modstamp: dt.datetime | None,
    ) -> FakeObject:
        types = {
            column: _field_type(column, [row[column] for row in rows])
            for column in header
        }
        records = [
            {column: _typed(row[column], types[column]) for column in header}
            for row in rows
        ]
        if "IsDeleted" not in types:
            types["IsDeleted"] = "boolean"
            for record in records:
                record["IsDeleted"] = False
        if name not in WITHOUT_MODSTAMP and "SystemModstamp" not in types:
            types["SystemModstamp"] = "datetime"
            for record in records:
                record["SystemModstamp"] = record.get("CreatedDate") or modstamp
        if name in ("Task", "Event") and "IsArchived" not in types:
            types["IsArchived"] = "boolean"
            for record in records:
                record["IsArchived"] = False
        return FakeObject(name, types, records)

    def ensure(self, name: str, fields: dict[str, str]) -> FakeObject:
        """Return object ``name``, created with ``fields`` if the export lacks it."""
        with self.lock:
            if name not in self.objects:
                self.objects[name] = FakeObject(name, dict(fields))
            return self.objects[name]

    def add(self, name: str, record: dict[str, Any]) -> None:
        """Insert a record; its ``SystemModstamp`` becomes now unless given."""
        obj = self.objects[name]
        with self.lock:
            full = {column: None for column in obj.fields}
            full.update({"IsDeleted": False, **record})
            if "SystemModstamp" in obj.fields:
                full.setdefault("SystemModstamp", utc_now())
                full["SystemModstamp"] = full["SystemModstamp"] or utc_now()
            obj.records.append(full)

    def update(self, name: str, record_ids: list[str], **values: Any) -> None:
        """Set ``values`` on the records and move their ``SystemModstamp`` to now."""
        wanted = set(record_ids)
        stamp = utc_now()
        with self.lock:
            for record in self.objects[name].records:
                if record["Id"] in wanted:
                    record.update(values)
                    record["SystemModstamp"] = stamp

    def delete(self, name: str, record_ids: list[str]) -> None:
        """Move records to the recycle bin, where only ``queryAll`` returns them."""
        self.update(name, record_ids, IsDeleted=True)

    def archive(self, name: str, record_ids: list[str]) -> None:
        """Archive activities, which only ``queryAll`` returns."""
        self.update(name, record_ids, IsArchived=True)

    def write_export(self, folder: Path) -> None:
        """Write every object as an export CSV (TRUE/FALSE, ``+0000`` datetimes)."""
        folder.mkdir(parents=True, exist_ok=True)
        for obj in self.objects.values():
            with (folder / f"{obj.name}.csv").open(
                "w", encoding="utf-8", newline=""
            ) as handle:
                writer = csv.writer(handle)
                writer.writerow(obj.fields)
                for record in obj.records:
                    writer.writerow(
                        [_export_text(record.get(n), obj.fields[n]) for n in obj.fields]
                    )


def _export_text(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "boolean":
        return "TRUE" if value else "FALSE"
    if kind == "datetime":
        return (
            value.strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{value.microsecond // 1000:03d}+0000"
        )
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _json_value(value: Any, kind: str) -> Any:
    if value is None or kind != "datetime":
        return value
    return _export_text(value, kind)


def _bulk_text(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "datetime":
        return (
            value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
        )
    return str(value)


@dataclass
class Query:
    """A parsed SOQL statement."""

    obj: str
    fields: list[str]
    count_only: bool
    conditions: list[tuple[str, str, dt.datetime]]
    order: list[str]


def parse_soql(text: str) -> Query:
    """Parse the SOQL subset the connector sends; raises ValueError otherwise."""
    match = SOQL.match(" ".join(text.split()))
    if match is None:
        raise ValueError(f"unsupported SOQL: {text}")
    fields = [name.strip() for name in match["fields"].split(",")]
    count_only = fields == ["COUNT()"]
    conditions = []
    if match["where"]:
        for part in re.split(r"\s+AND\s+", match["where"], flags=re.IGNORECASE):
            condition = CONDITION.match(part.strip())
            if condition is None:
                raise ValueError(f"unsupported condition: {part}")
            name, operator, literal = condition.groups()
            when = dt.datetime.fromisoformat(literal.replace("Z", "+00:00"))
            conditions.append((name, operator, when))
    order = [name.strip() for name in (match["order"] or "").split(",") if name.strip()]
    return Query(
        match["object"], [] if count_only else fields, count_only, conditions, order
    )


_COMPARE = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "=": lambda a, b: a == b,
}


@dataclass
class Failure:
    """An injected error: ``kind`` is returned for the next ``times`` calls to ``on``."""

    kind: str
    on: str
    times: int
    skip: int = 0


class ApiError(Exception):
    """An error response the handler sends as Salesforce's JSON error list."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict | None = None
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers or {}


FAILURES = {
    "invalid_session": (401, "INVALID_SESSION_ID", "Session expired or invalid"),
    "unavailable": (503, "SERVER_UNAVAILABLE", "Server temporarily unavailable"),
    "request_limit": (403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    "query_timeout": (
        400,
        "QUERY_TIMEOUT",
        "Your query request was running for too long.",
    ),
}


class FakeSalesforce:
    """The HTTPS server: sessions, query cursors, bulk jobs, counters and failures.

    ``requests`` counts calls by kind: ``login``, ``query``, ``query_more``,
    ``describe``, ``composite``, ``limits``, ``record_count``, ``bulk_create``,
    ``bulk_poll`` and ``bulk_results``. ``rows`` counts records sent, per object.
    """

    def __init__(
        self,
        org: FakeOrg,
        ca: trustme.CA,
        *,
        username: str = "api@example.com",
        password: str = "pass-word",
        security_token: str = "TOKEN123",
        consumer_key: str = "fake-consumer-key",
        public_key_pem: bytes | None = None,
        jwt_audience: str = "https://login.salesforce.com",
        page_size: int = 2000,
        api_used: int = 0,
        api_limit: int = 15000,
        retry_after: int | None = None,
        query_timeout_over: dt.timedelta | None = None,
    ) -> None:
        self.org = org
        self.credentials = (username, password + security_token)
        self.consumer_key = consumer_key
        self.public_key_pem = public_key_pem
        self.jwt_audience = jwt_audience
        self.page_size = page_size
        self.api_used = api_used
        self.api_limit = api_limit
        self.retry_after = retry_after
        self.query_timeout_over = query_timeout_over
        self.requests: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.queries: list[str] = []
        self.failures: list[Failure] = []
        self.sessions: set[str] = set()
        self.cursors: dict[str, tuple[str, list[dict[str, Any]], dict[str, str]]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )

    @property
    def url(self) -> str:
        """Return the base URL, such as ``https://127.0.0.1:50123``."""
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeSalesforce:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def fail(self, kind: str, *, on: str, times: int = 1, skip: int = 0) -> None:
        """Fail ``times`` calls of kind ``on`` with ``kind``, after ``skip`` good ones.

        ``kind`` is one of ``invalid_session`` (which also ends every session),
        ``unavailable``, ``request_limit`` or ``query_timeout``.
        """
        self.failures.append(Failure(kind, on, times, skip))

    def api_calls(self) -> int:
        """Return the number of API calls counted, logins excluded."""
        return sum(count for kind, count in self.requests.items() if kind != "login")

    def reset_counts(self) -> None:
        """Zero the request, row and query counters."""
        self.requests.clear()
        self.rows.clear()
        self.queries.clear()

    def new_id(self, prefix: str) -> str:
        """Return a fresh 18-character id with ``prefix``."""
        with self._lock:
            number = next(self._ids)
        return f"{prefix}5g0000Fake{number:05d}AAA"[:18]

    def check_failure(self, kind: str) -> None:
        """Raise the injected error for a call of ``kind``, if one is due."""
        with self._lock:
            for failure in self.failures:
                if failure.on != kind or failure.times <= 0:
                    continue
                if failure.skip > 0:
                    failure.skip -= 1
                    return
                failure.times -= 1
                status, code, message = FAILURES[failure.kind]
                if failure.kind == "invalid_session":
                    self.sessions.clear()
                headers = {}
                if self.retry_after is not None and status in (403, 503):
                    headers["Retry-After"] = str(self.retry_after)
                raise ApiError(status, code, message, headers)

    def login(self) -> str:
        """Start a session and return its id."""
        session_id = f"{ORG_ID}!fake-session-{self.new_id('sid')}"
        with self._lock:
            self.sessions.add(session_id)
        return session_id

    def describe(self, name: str) -> tuple[int, Any]:
        """Return the status and body of ``sobjects/<name>/describe``."""
        obj = self.org.objects.get(name)
        if obj is None:
            return 404, [
                {
                    "errorCode": "NOT_FOUND",
                    "message": "The requested resource does not exist",
                }
            ]
        return 200, obj.describe()

    def run_query(
        self, soql: str, include_deleted: bool
    ) -> tuple[Query, list[dict[str, Any]]]:
        """Return the parsed query and its matching records, sorted as asked."""
        self.queries.append(soql)
        query = parse_soql(soql)
        obj = self.org.objects.get(query.obj)
        if obj is None:
            raise ApiError(
                400, "INVALID_TYPE", f"sObject type '{query.obj}' is not supported."
            )
        unknown = [
            n for n in query.fields if n not in obj.fields or n in obj.unreadable
        ]
        if unknown:
            raise ApiError(
                400, "INVALID_FIELD", f"No such column '{unknown[0]}' on {obj.name}"
            )
        self._check_window(query)
        with self.org.lock:
            records = [
                dict(r) for r in obj.records if self._matches(r, query, include_deleted)
            ]
        for name in reversed(query.order):
            records.sort(key=lambda r, n=name: (r.get(n) is None, r.get(n) or ""))
        return query, records

    def _check_window(self, query: Query) -> None:
        # A query times out when it has no lower bound or spans more than the limit.
        if self.query_timeout_over is None or query.count_only:
            return
        low = [when for _, op, when in query.conditions if op in (">=", ">")]
        high = [when for _, op, when in query.conditions if op in ("<=", "<")] or [
            utc_now()
        ]
        if not low or max(high) - min(low) > self.query_timeout_over:
            status, code, message = FAILURES["query_timeout"]
            raise ApiError(status, code, message)

    @staticmethod
    def _matches(record: dict[str, Any], query: Query, include_deleted: bool) -> bool:
        if not include_deleted and (
            record.get("IsDeleted") or record.get("IsArchived")
        ):
            return False
        for name, operator, when in query.conditions:
            value = record.get(name)
            if value is None or not _COMPARE[operator](value, when):
                return False
        return True

    def page(
        self,
        cursor: str | None,
        rest: list[dict[str, Any]],
        fields: dict[str, str],
        session_id: str,
        base: str,
    ) -> dict[str, Any]:
        """Return one ``query`` response page and remember the rest under a cursor."""
        head, tail = rest[: self.page_size], rest[self.page_size :]
        body: dict[str, Any] = {"done": not tail, "records": []}
        for record in head:
            row = {"attributes": {"type": fields["__object__"], "url": ""}}
            row.update(
                {
                    n: _json_value(record.get(n), fields[n])
                    for n in fields
                    if n != "__object__"
                }
            )
            body["records"].append(row)
        if tail:
            cursor = cursor or f"01g5g0000Cursor{self.new_id('c')}"
            position = int(cursor.rsplit("-", 1)[1]) if "-" in cursor else 0
            key = f"{cursor.split('-')[0]}-{position + len(head)}"
            with self._lock:
                self.cursors[key] = (session_id, tail, fields)
            body["nextRecordsUrl"] = f"{base}/{key}"
        return body


def _handler_for(fake: FakeSalesforce) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        server_fake = fake

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm on, each
    # response would wait for the client's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True
    server_fake: FakeSalesforce

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict | None = None) -> None:
        fake = self.server_fake
        with fake._lock:
            fake.api_used += 1
            usage = f"api-usage={fake.api_used}/{fake.api_limit}"
        extra = {"Sforce-Limit-Info": usage, **(headers or {})}
        self._send(
            status,
            json.dumps(payload).encode(),
            "application/json;charset=UTF-8",
            extra,
        )

    def _dispatch(self, method: str) -> None:
        body = self._body()
        parsed = urllib.parse.urlsplit(self.path)
        try:
            if parsed.path.startswith("/services/Soap/u/"):
                self._soap_login(body)
            elif parsed.path == "/services/oauth2/token":
                self._token(body)
            else:
                self._api(method, parsed, body)
        except ApiError as error:
            payload = [{"message": str(error), "errorCode": error.code}]
            self._json(error.status, payload, error.headers)

    def _soap_login(self, body: bytes) -> None:
        fake = self.server_fake
        fake.requests["login"] += 1
        text = body.decode()
        username = re.search(r"<n1:username>(.*?)</n1:username>", text)
        password = re.search(r"<n1:password>(.*?)</n1:password>", text)
        given = (username and username[1], password and password[1])
        if given != fake.credentials:
            fault = (
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
                "<faultcode>INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: "
                "Invalid username, password, security token; or user locked out."
                "</faultstring><detail><sf:LoginFault><sf:exceptionCode>INVALID_LOGIN"
                "</sf:exceptionCode><sf:exceptionMessage>Invalid username, password, "
                "security token; or user locked out.</sf:exceptionMessage>"
                "</sf:LoginFault></detail></soapenv:Fault>"
                "</soapenv:Body></soapenv:Envelope>"
            )
            self._send(500, fault.encode(), "text/xml;charset=UTF-8")
            return
        session_id = fake.login()
        server_url = f"{fake.url}/services/Soap/u/62.0/{ORG_ID}"
        response = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f"<metadataServerUrl>{fake.url}/services/Soap/m/62.0/{ORG_ID}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
            f"<serverUrl>{server_url}</serverUrl><sessionId>{session_id}</sessionId>"
            f"<userId>{USER_ID}</userId></result></loginResponse></soapenv:Body>"
            "</soapenv:Envelope>"
        )
        self._send(200, response.encode(), "text/xml;charset=UTF-8")

    def _token(self, body: bytes) -> None:
        fake = self.server_fake
        fake.requests["login"] += 1
        form = dict(urllib.parse.parse_qsl(body.decode()))
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                fake.public_key_pem or b"",
                algorithms=["RS256"],
                audience=fake.jwt_audience,
            )
        except (jwt.PyJWTError, ValueError) as error:
            payload = {"error": "invalid_grant", "error_description": str(error)}
            self._send(400, json.dumps(payload).encode(), "application/json")
            return
        if (
            claims.get("iss") != fake.consumer_key
            or claims.get("sub") != fake.credentials[0]
        ):
            payload = {
                "error": "invalid_client_id",
                "error_description": "client identifier invalid",
            }
            self._send(400, json.dumps(payload).encode(), "application/json")
            return
        payload = {
            "access_token": fake.login(),
            "instance_url": fake.url,
            "id": f"{fake.url}/id/{ORG_ID}/{USER_ID}",
            "token_type": "Bearer",
        }
        self._send(200, json.dumps(payload).encode(), "application/json")

    def _api(self, method: str, parsed: urllib.parse.SplitResult, body: bytes) -> None:
        fake = self.server_fake
        route = re.match(r"^/services/data/v(\d+\.\d)/(.*?)/?$", parsed.path)
        if route is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        base = f"/services/data/v{route[1]}"
        rest = route[2]
        params = dict(urllib.parse.parse_qsl(parsed.query))
        kind = _kind(method, rest)
        fake.requests[kind] += 1
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if token not in fake.sessions:
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        fake.check_failure(kind)
        handler = getattr(self, f"_{kind}")
        handler(base, rest, params, body, token)

    def _describe(
        self, base: str, rest: str, params: dict, body: bytes, token: str
    ) -> None:
        status, payload = self.server_fake.describe(rest.split("/")[1])
        self._json(status, payload)

    def _composite(
        self, base: str, rest: str, params: dict, body: bytes, token: str
    ) -> None:
        fake = self.server_fake
        answers = []
        for request in json.loads(body)["compositeRequest"]:
            route = re.match(
                r"^/services/data/v\d+\.\d/sobjects/(\w+)/describe/?$", request["url"]
            )
            if route is None or request["method"] != "GET":
                raise ApiError(
                    400, "INVALID_URL", f"unsupported subrequest {request['url']}"
                )
            status, payload = fake.describe(route[1])
            answers.append(
                {
                    "body": payload,
                    "httpHeaders": {},
                    "httpStatusCode": status,
                    "referenceId": request["referenceId"],
                }
            )
        self._json(200, {"compositeResponse": answers})

    def _limits(
        self, base: str, rest: str, params: dict, body: bytes, token: str
    ) -> None:
        fake = self.server_fake
        remaining = fake.api_limit - fake.api_used - 1
        self._json(
            200, {"DailyApiRequests": {"Max": fake.api_limit, "Remaining": remaining}}
        )

    def _record_count(
        self, base: str, rest: str, params: dict, body: bytes, token: str
    ) -> None:
        objects = self.server_fake.org.objects
        names = [n for n in params.get("sObjects", "").split(",") if n in objects]
        counts = [{"count": len(objects[n].records), "name": n} for n in names]
        self._json(200, {"sObjects": counts})

    def _query(
        self, base: str, rest: str, params: dict, body: bytes, token: str
    ) -> None:
        fake = self.server_fake
        endpoint = rest.split("/")[0]
        query, records = fake.run_query(
            params["q"], include_deleted=endpoint == "queryAll"
        )
        if query.count_only:
            self._json(200, {"totalSize": len(records), "done": True, "records": []})
            return
        fields = {n: fake.org.objects[query.obj].fields[n] for n in query.fields}
        fields["__object__"] = query.obj
        page = fake.page(None, records, fields, token, f"{base}/{endpoint}")
        page["totalSize"] = len(records)
        fake.rows[query.obj] += len(page["records"])
        self._json(200, page)

    def _query_more(
        self, base: str, rest: str, params: dict, body: bytes, token: str
    ) -> None:
        fake = self.server_fake
        endpoint, cursor = rest.split("/", 1)
        with fake._lock:
            saved = fake.cursors.pop(cursor, None)
        if saved is None or saved[0] not in fake.sessions:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        _, records, fields = saved
        page = fake.page(cursor, records, fields, token, f"{base}/{endpoint}")
        fake.rows[fields["__object__"]] += len(page["records"])
        self._json(200, page)

    def _bulk_create(
        self, base: str, rest: str, params: dict, body: bytes, token: str
    ) -> None:
        fake = self.server_fake
        request = json.loads(body)
        include_deleted = request["operation"] == "queryAll"
        query, records = fake.run_query(request["query"], include_deleted)
        job_id = fake.new_id("750")
        fields = {n: fake.org.objects[query.obj].fields[n] for n in query.fields}
        rows = [[_bulk_text(r.get(n), fields[n]) for n in fields] for r in records]
        with fake._lock:
            fake.jobs[job_id] = {
                "object": query.obj,
                "fields": list(fields),
                "rows": rows,
                "polls": 0,
            }
        self._json(
            200,
            {
                "id": job_id,
                "operation": request["operation"],
                "object": query.obj,
                "state": "UploadComplete",
                "contentType": "CSV",
            },
        )

    def _bulk_poll(
        self, base: str, rest: str, params: dict, body: bytes, token: str
    ) -> None:
        fake = self.server_fake
        job_id = rest.split("/")[2]
        job = fake.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        job["polls"] += 1
        state = "InProgress" if job["polls"] == 1 else "JobComplete"
        self._json(
            200,
            {"id": job_id, "state": state, "numberRecordsProcessed": len(job["rows"])},
        )

    def _bulk_results(
        self, base: str, rest: str, params: dict, body: bytes, token: str
    ) -> None:
        fake = self.server_fake
        job = fake.jobs.get(rest.split("/")[2])
        if job is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        start = int(params.get("locator") or 0)
        size = min(int(params.get("maxRecords") or fake.page_size), fake.page_size)
        chunk = job["rows"][start : start + size]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(job["fields"])
        writer.writerows(chunk)
        following = start + size
        locator = str(following) if following < len(job["rows"]) else "null"
        fake.rows[job["object"]] += len(chunk)
        with fake._lock:
            fake.api_used += 1
            usage = f"api-usage={fake.api_used}/{fake.api_limit}"
        headers = {
            "Sforce-Locator": locator,
            "Sforce-NumberOfRecords": str(len(chunk)),
            "Sforce-Limit-Info": usage,
        }
        self._send(200, out.getvalue().encode(), "text/csv", headers)


def _kind(method: str, rest: str) -> str:
    parts = rest.split("/")
    if parts[0] in ("query", "queryAll"):
        return "query_more" if len(parts) > 1 else "query"
    if parts[0] == "sobjects" and len(parts) == 3 and parts[2] == "describe":
        return "describe"
    if rest == "composite" and method == "POST":
        return "composite"
    if rest == "limits":
        return "limits"
    if rest == "limits/recordCount":
        return "record_count"
    if parts[:2] == ["jobs", "query"]:
        if method == "POST":
            return "bulk_create"
        return "bulk_results" if parts[-1] == "results" else "bulk_poll"
    raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")


@contextlib.contextmanager
def serve(org: FakeOrg, ca: trustme.CA, **options: Any) -> Iterator[FakeSalesforce]:
    """Run a :class:`FakeSalesforce` for the duration of a ``with`` block."""
    with FakeSalesforce(org, ca, **options) as fake:
        yield fake


LEAD_STATUS_FIELDS = {
    "Id": "id",
    "ApiName": "string",
    "MasterLabel": "string",
    "SortOrder": "int",
    "IsConverted": "boolean",
    "SystemModstamp": "datetime",
}


def add_lead_statuses(org: FakeOrg, values: list[str]) -> None:
    """Give the org a LeadStatus picklist with ``values`` in that order."""
    org.ensure("LeadStatus", LEAD_STATUS_FIELDS)
    for order, value in enumerate(values, start=1):
        org.add(
            "LeadStatus",
            {
                "Id": f"01J5g00000Stat{order:02d}AA",
                "ApiName": value,
                "MasterLabel": value,
                "SortOrder": order,
                "IsConverted": "Convert" in value,
                "SystemModstamp": DEFAULT_MODSTAMP,
            },
        )


SYNTHETIC_FIELDS = {
    "Lead": {
        "Id": "id",
        "CreatedDate": "datetime",
        "Status": "picklist",
        "OwnerId": "reference",
        "LeadSource": "picklist",
        "IsConverted": "boolean",
        "ConvertedDate": "date",
        "IsDeleted": "boolean",
        "SystemModstamp": "datetime",
    },
    "LeadHistory": {
        "Id": "id",
        "LeadId": "reference",
        "CreatedDate": "datetime",
        "Field": "picklist",
        "OldValue": "anyType",
        "NewValue": "anyType",
        "IsDeleted": "boolean",
    },
    "Task": {
        "Id": "id",
        "WhoId": "reference",
        "OwnerId": "reference",
        "CreatedDate": "datetime",
        "CompletedDateTime": "datetime",
        "TaskSubtype": "picklist",
        "Type": "picklist",
        "Status": "picklist",
        "IsClosed": "boolean",
        "IsDeleted": "boolean",
        "IsArchived": "boolean",
        "SystemModstamp": "datetime",
    },
    "User": {
        "Id": "id",
        "IsActive": "boolean",
        "Department": "string",
        "SystemModstamp": "datetime",
    },
}
SYNTHETIC_USERS = [
    ("0055g00000RepS1AAA", True, "Sales"),
    ("0055g00000RepS2AAA", True, "Sales"),
    ("0055g00000RepS3AAA", False, "Sales"),
    ("0055g00000MktM1AAA", True, "Marketing"),
]
SYNTHETIC_STATUSES = ["Marketing Qualified", "Accepted", "Rejected", "Recycled"]


def synthetic_org(leads: int) -> FakeOrg:
    """Return a deterministic org with ``leads`` leads, their history and one call each.

    Lead ``i`` is created ``3 * i`` hours after 2025-01-06 14:00 UTC; its record was
    last modified a day later. Every lead becomes MQL, and its status moves on by
    ``i % 4``.
    """
    org = FakeOrg(
        {
            name: FakeObject(name, dict(types))
            for name, types in SYNTHETIC_FIELDS.items()
        }
    )
    start = dt.datetime(2025, 1, 6, 14, tzinfo=dt.UTC)
    for user_id, active, department in SYNTHETIC_USERS:
        org.add(
            "User",
            {
                "Id": user_id,
                "IsActive": active,
                "Department": department,
                "SystemModstamp": DEFAULT_MODSTAMP,
            },
        )
    for i in range(leads):
        lead_id = f"00Q5g0000{i:06d}AAA"
        created = start + dt.timedelta(hours=3 * i)
        owner = SYNTHETIC_USERS[i % 2][0]
        status = SYNTHETIC_STATUSES[i % 4]
        org.add(
            "Lead",
            {
                "Id": lead_id,
                "CreatedDate": created,
                "Status": status,
                "OwnerId": owner,
                "LeadSource": ("Web", "Webinar", "Event")[i % 3],
                "IsConverted": False,
                "SystemModstamp": created + dt.timedelta(days=1),
            },
        )
        history = [("New", "Marketing Qualified", 30)]
        if status != "Marketing Qualified":
            history.append(("Marketing Qualified", status, 60 * (2 + i % 7)))
        for number, (old, new, minutes) in enumerate(history):
            org.add(
                "LeadHistory",
                {
                    "Id": f"0175g000{i:06d}H{number}AA",
                    "LeadId": lead_id,
                    "Field": "Status",
                    "CreatedDate": created + dt.timedelta(minutes=minutes),
                    "OldValue": old,
                    "NewValue": new,
                },
            )
        touched = created + dt.timedelta(minutes=45 + 20 * (i % 5))
        org.add(
            "Task",
            {
                "Id": f"00T5g0000{i:06d}AAA",
                "WhoId": lead_id,
                "OwnerId": owner,
                "CreatedDate": touched,
                "CompletedDateTime": touched,
                "TaskSubtype": "Call",
                "Type": "Call",
                "Status": "Completed",
                "IsClosed": True,
                "IsArchived": False,
                "SystemModstamp": touched,
            },
        )
    return org
