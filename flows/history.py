"""The history of scored runs, in an embedded DuckDB file.

One completed run per org and as-of day: storing a run for a day that already has
one replaces that day's rows in one transaction. A failed run adds only its
failure record (with the gate findings when the gate stopped it) and leaves the
day's scored rows alone. The as-of day is the UTC date of the as-of time.

The schema is versioned: ``schema_version`` lists the applied migrations and
:data:`MIGRATIONS` lists every step in order, so an older file is upgraded when it
is opened. Connections are short-lived, because DuckDB lets only one process at a
time open a file for writing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from config.models import OrgConfig
from connectors.errors import RevalignError
from connectors.schema import CanonicalTables

logger = logging.getLogger(__name__)

EXTRACTS_FOLDER = "extracts"

_V1 = """
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY,
    org_id VARCHAR NOT NULL,
    as_of_day DATE NOT NULL,
    as_of TIMESTAMPTZ,
    source VARCHAR,
    status VARCHAR NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    overall_score DOUBLE,
    overall_band VARCHAR,
    gate_passed BOOLEAN,
    error VARCHAR,
    flow_run_id VARCHAR,
    document JSON
);
CREATE TABLE metrics (
    run_id VARCHAR NOT NULL,
    org_id VARCHAR NOT NULL,
    as_of_day DATE NOT NULL,
    key VARCHAR NOT NULL,
    label VARCHAR,
    value DOUBLE,
    population BIGINT,
    unit VARCHAR,
    measurable BOOLEAN,
    note VARCHAR,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE dimensions (
    run_id VARCHAR NOT NULL,
    org_id VARCHAR NOT NULL,
    as_of_day DATE NOT NULL,
    key VARCHAR NOT NULL,
    score DOUBLE,
    level INTEGER,
    source VARCHAR,
    confidence VARCHAR,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE audit (
    run_id VARCHAR NOT NULL,
    org_id VARCHAR NOT NULL,
    as_of_day DATE NOT NULL,
    dimension VARCHAR NOT NULL,
    measured_level INTEGER,
    self_reported DOUBLE,
    verdict VARCHAR,
    perception_gap BOOLEAN
);
CREATE TABLE red_flags (
    run_id VARCHAR NOT NULL,
    org_id VARCHAR NOT NULL,
    as_of_day DATE NOT NULL,
    key VARCHAR NOT NULL,
    dimension VARCHAR,
    message VARCHAR
);
CREATE TABLE gate_findings (
    run_id VARCHAR NOT NULL,
    org_id VARCHAR NOT NULL,
    as_of_day DATE NOT NULL,
    expectation VARCHAR NOT NULL,
    table_name VARCHAR,
    severity VARCHAR,
    failed BIGINT,
    total BIGINT
);
CREATE TABLE alerts_sent (
    org_id VARCHAR NOT NULL,
    rule_id VARCHAR NOT NULL,
    day DATE NOT NULL,
    channel VARCHAR NOT NULL,
    run_id VARCHAR,
    status VARCHAR NOT NULL,
    attempts INTEGER NOT NULL,
    error VARCHAR,
    sent_at TIMESTAMPTZ NOT NULL,
    payload JSON,
    PRIMARY KEY (org_id, rule_id, day, channel)
);
"""

_V2 = """
CREATE TABLE watermarks (
    org_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    object VARCHAR NOT NULL,
    watermark TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, source, object)
);
ALTER TABLE runs ADD COLUMN extract_path VARCHAR;
"""

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "runs, metrics, dimensions, audit, gate findings and alerts", _V1),
    (2, "per-object watermarks and the raw extract folder of each run", _V2),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

# Tables whose rows belong to one run, deleted with it when a day is replaced.
_RUN_TABLES = ("metrics", "dimensions", "audit", "red_flags", "gate_findings")


class HistoryError(RevalignError):
    """Raised when the history file cannot be opened, upgraded or written."""


@dataclass(frozen=True)
class RunSummary:
    """One completed run as alert rules and trends compare it: scores and values."""

    run_id: str
    org_id: str
    day: dt.date
    as_of: dt.datetime | None
    source: str | None
    overall_score: float | None
    overall_band: str | None
    levels: dict[str, int | None] = field(default_factory=dict)
    scores: dict[str, float | None] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)


def as_of_day(as_of: str | dt.datetime) -> dt.date:
    """Return the UTC date of an as-of time (ISO text or an aware datetime)."""
    if isinstance(as_of, str):
        as_of = dt.datetime.fromisoformat(as_of.replace("Z", "+00:00"))
    if as_of.tzinfo is None:
        msg = f"as-of time {as_of.isoformat()!r} has no time zone; give it in UTC"
        raise HistoryError(msg)
    return as_of.astimezone(dt.UTC).date()


class HistoryStore:
    """A connection to the history file; use as a context manager.

    Opening creates the file and its folder when missing and applies pending
    migrations. A file locked by another process raises a retryable
    :class:`HistoryError`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> HistoryStore:
        if self.path.is_dir():
            msg = f"history file {str(self.path)!r} is a folder; pass a .duckdb file path"
            raise HistoryError(msg)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"cannot create the folder of history file {str(self.path)!r}: {exc.strerror}"
            raise HistoryError(msg) from None
        try:
            self._connection = duckdb.connect(str(self.path))
        except duckdb.IOException as exc:
            if "not a valid DuckDB database file" in str(exc):
                msg = (
                    f"history file {str(self.path)!r} is not a DuckDB database; "
                    "pass a new path or the history file revalign wrote"
                )
                raise HistoryError(msg) from None
            error = HistoryError(
                f"cannot open history file {str(self.path)!r}: {exc}; another "
                f"process may be writing to it, so try again when it has finished"
            )
            error.retryable = True
            raise error from None
        self._connection.execute("SET TimeZone = 'UTC'")
        migrate(self._connection)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @property
    def db(self) -> duckdb.DuckDBPyConnection:
        """Return the open connection; raises HistoryError outside ``with``."""
        if self._connection is None:
            raise HistoryError(
                "the history store is not open; use it in a `with` block"
            )
        return self._connection

    def schema_version(self) -> int:
        """Return the highest migration applied to the file."""
        return current_version(self.db)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run the block in one transaction, rolled back if it raises."""
        self.db.execute("BEGIN TRANSACTION")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def save_run(
        self,
        document: Mapping[str, Any],
        *,
        flow_run_id: str | None = None,
        extract_path: Path | None = None,
    ) -> str:
        """Store a scored run, replacing the org's completed run of the same day.

        Returns the new run id.
        """
        org_id = document["org"]["id"]
        day = as_of_day(document["as_of"])
        run_id = uuid.uuid4().hex
        with self.transaction() as db:
            replaced = self._delete_completed(db, org_id, day)
            db.execute(
                "INSERT INTO runs (run_id, org_id, as_of_day, as_of, source, status, "
                "recorded_at, overall_score, overall_band, gate_passed, flow_run_id, "
                "document, extract_path) VALUES (?, ?, ?, ?, ?, 'completed', ?, ?, ?, "
                "?, ?, ?, ?)",
                _run_values(run_id, document, day, flow_run_id, extract_path),
            )
            _insert_run_rows(db, run_id, org_id, day, document)
        logger.info(
            "stored run %s of org %s for %s (replaced %d)",
            run_id,
            org_id,
            day,
            replaced,
        )
        return run_id

    def record_failure(
        self,
        *,
        org_id: str,
        day: dt.date,
        source: str | None,
        error: str,
        gate: Mapping[str, Any] | None = None,
        flow_run_id: str | None = None,
    ) -> str:
        """Add a failure record (with the gate's findings, if any); returns its id."""
        run_id = uuid.uuid4().hex
        gate_passed = None if gate is None else bool(gate.get("passed"))
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (run_id, org_id, as_of_day, source, status, "
                "recorded_at, gate_passed, error, flow_run_id) "
                "VALUES (?, ?, ?, ?, 'failed', ?, ?, ?, ?)",
                [run_id, org_id, day, source, _now(), gate_passed, error, flow_run_id],
            )
            if gate is not None:
                _insert_gate_findings(db, run_id, org_id, day, gate)
        logger.info("recorded a failed run %s of org %s for %s", run_id, org_id, day)
        return run_id

    def _delete_completed(
        self, db: duckdb.DuckDBPyConnection, org_id: str, day: dt.date
    ) -> int:
        old = db.execute(
            "SELECT run_id FROM runs WHERE org_id = ? AND as_of_day = ? "
            "AND status = 'completed'",
            [org_id, day],
        ).fetchall()
        ids = [row[0] for row in old]
        if not ids:
            return 0
        for table in _RUN_TABLES:
            db.execute(f"DELETE FROM {table} WHERE list_contains(?, run_id)", [ids])
        db.execute("DELETE FROM runs WHERE list_contains(?, run_id)", [ids])
        return len(ids)

    def completed_runs(self, org_id: str) -> list[RunSummary]:
        """Return the org's completed runs, oldest as-of day first."""
        rows = self.db.execute(
            "SELECT run_id, org_id, as_of_day, as_of, source, overall_score, "
            "overall_band FROM runs WHERE org_id = ? AND status = 'completed' "
            "ORDER BY as_of_day",
            [org_id],
        ).fetchall()
        return [self._summary(row) for row in rows]

    def previous_run(self, org_id: str, day: dt.date) -> RunSummary | None:
        """Return the org's latest completed run before ``day``, or ``None``."""
        row = self.db.execute(
            "SELECT run_id, org_id, as_of_day, as_of, source, overall_score, "
            "overall_band FROM runs WHERE org_id = ? AND status = 'completed' "
            "AND as_of_day < ? ORDER BY as_of_day DESC LIMIT 1",
            [org_id, day],
        ).fetchone()
        return None if row is None else self._summary(row)

    def failures(self, org_id: str) -> list[dict[str, Any]]:
        """Return the org's failure records, oldest first."""
        rows = self.db.execute(
            "SELECT run_id, as_of_day, source, recorded_at, gate_passed, error "
            "FROM runs WHERE org_id = ? AND status = 'failed' ORDER BY recorded_at",
            [org_id],
        ).fetchall()
        keys = ("run_id", "day", "source", "recorded_at", "gate_passed", "error")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def metric_rows(self, run_id: str) -> list[dict[str, Any]]:
        """Return a run's metric rows (key, label, value, population, unit)."""
        rows = self.db.execute(
            "SELECT key, label, value, population, unit FROM metrics WHERE run_id = ? "
            "ORDER BY key",
            [run_id],
        ).fetchall()
        keys = ("key", "label", "value", "population", "unit")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def _summary(self, row: tuple[Any, ...]) -> RunSummary:
        run_id = row[0]
        dimensions = self.db.execute(
            "SELECT key, level, score FROM dimensions WHERE run_id = ? ORDER BY key",
            [run_id],
        ).fetchall()
        metrics = self.db.execute(
            "SELECT key, value FROM metrics WHERE run_id = ?", [run_id]
        ).fetchall()
        return RunSummary(
            run_id=run_id,
            org_id=row[1],
            day=row[2],
            as_of=row[3],
            source=row[4],
            overall_score=row[5],
            overall_band=row[6],
            levels={key: level for key, level, _ in dimensions},
            scores={key: score for key, _, score in dimensions},
            metrics=dict(metrics),
        )

    def alert_sent(self, org_id: str, rule_id: str, day: dt.date, channel: str) -> bool:
        """Return whether the rule's alert of ``day`` already reached ``channel``."""
        row = self.db.execute(
            "SELECT 1 FROM alerts_sent WHERE org_id = ? AND rule_id = ? AND day = ? "
            "AND channel = ? AND status = 'sent'",
            [org_id, rule_id, day, channel],
        ).fetchone()
        return row is not None

    def record_alert(
        self,
        *,
        org_id: str,
        rule_id: str,
        day: dt.date,
        channel: str,
        run_id: str | None,
        status: str,
        attempts: int,
        payload: Mapping[str, Any],
        error: str | None = None,
    ) -> None:
        """Record one send of an alert (``sent`` or ``failed``) to one channel."""
        self.db.execute(
            "INSERT OR REPLACE INTO alerts_sent (org_id, rule_id, day, channel, "
            "run_id, status, attempts, error, sent_at, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                org_id,
                rule_id,
                day,
                channel,
                run_id,
                status,
                attempts,
                error,
                _now(),
                json.dumps(payload, default=str),
            ],
        )

    def alerts(self, org_id: str) -> list[dict[str, Any]]:
        """Return the org's recorded alert sends, oldest first."""
        rows = self.db.execute(
            "SELECT rule_id, day, channel, status, attempts, error, payload "
            "FROM alerts_sent WHERE org_id = ? ORDER BY sent_at, rule_id, channel",
            [org_id],
        ).fetchall()
        keys = ("rule_id", "day", "channel", "status", "attempts", "error", "payload")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def save_watermarks(
        self, org_id: str, source: str, marks: Mapping[str, dt.datetime]
    ) -> None:
        """Store per-object watermarks (aware datetimes), replacing older values."""
        rows = [
            [org_id, source, obj, _aware(obj, mark), _now()]
            for obj, mark in marks.items()
        ]
        if not rows:
            return
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO watermarks (org_id, source, object, watermark, "
                "updated_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def load_watermarks(self, org_id: str, source: str) -> dict[str, dt.datetime]:
        """Return the stored watermark of each object, in UTC."""
        rows = self.db.execute(
            "SELECT object, watermark FROM watermarks WHERE org_id = ? AND source = ?",
            [org_id, source],
        ).fetchall()
        return {obj: mark.astimezone(dt.UTC) for obj, mark in rows}


def history_path_for(config: OrgConfig | None, explicit: Path | None) -> Path | None:
    """Return the history file to store runs in: ``explicit``, else the config's."""
    if explicit is not None:
        return explicit
    if config is not None and config.history is not None:
        return config.history.path
    return None


def store_run(
    document: Mapping[str, Any],
    tables: CanonicalTables | None,
    path: Path,
    *,
    keep_extracts: bool = True,
    flow_run_id: str | None = None,
) -> str:
    """Store a scored run (and its canonical tables as Parquet); returns the run id.

    The Parquet folder is ``extracts/<org>/<as-of day>/`` beside the history file.
    """
    extract_path = None
    if keep_extracts and tables is not None:
        day = as_of_day(document["as_of"])
        extract_path = write_extract(tables, path.parent, document["org"]["id"], day)
    with HistoryStore(path) as store:
        return store.save_run(
            document, flow_run_id=flow_run_id, extract_path=extract_path
        )


def store_failure(
    path: Path,
    *,
    org_id: str,
    day: dt.date,
    source: str | None,
    error: str,
    gate: Mapping[str, Any] | None = None,
    flow_run_id: str | None = None,
) -> str:
    """Add a failure record to the history at ``path``; returns its id."""
    with HistoryStore(path) as store:
        return store.record_failure(
            org_id=org_id,
            day=day,
            source=source,
            error=error,
            gate=gate,
            flow_run_id=flow_run_id,
        )


def failure_day(as_of: dt.datetime | None) -> dt.date:
    """Return the day a failed run is filed under: its as-of day, else today (UTC)."""
    return as_of_day(as_of) if as_of is not None else _now().date()


def save_watermarks(
    path: Path, org_id: str, source: str, marks: Mapping[str, dt.datetime]
) -> None:
    """Store ``{object: watermark}`` of one org and source in the history file."""
    with HistoryStore(path) as store:
        store.save_watermarks(org_id, source, marks)


def load_watermarks(path: Path, org_id: str, source: str) -> dict[str, dt.datetime]:
    """Return ``{object: watermark}`` of one org and source; empty when none stored."""
    if not path.exists():
        return {}
    with HistoryStore(path) as store:
        return store.load_watermarks(org_id, source)


def current_version(db: duckdb.DuckDBPyConnection) -> int:
    """Return the schema version of an open file; 0 for a new, empty one."""
    exists = db.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_name = 'schema_version'"
    ).fetchone()
    if not exists or exists[0] == 0:
        return 0
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(db: duckdb.DuckDBPyConnection, *, target: int = SCHEMA_VERSION) -> int:
    """Apply the migrations after the file's version up to ``target``, each atomically.

    Returns the version reached. Raises HistoryError when the file is newer than
    this revalign.
    """
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMPTZ)"
    )
    version = current_version(db)
    if version > SCHEMA_VERSION:
        msg = (
            f"the history file has schema version {version}, newer than this "
            f"revalign's {SCHEMA_VERSION}; upgrade revalign to read it"
        )
        raise HistoryError(msg)
    for step, description, script in MIGRATIONS:
        if version < step <= target:
            db.execute("BEGIN TRANSACTION")
            try:
                db.execute(script)
                db.execute(
                    "INSERT INTO schema_version VALUES (?, ?, ?)",
                    [step, description, _now()],
                )
            except duckdb.Error:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            logger.info("upgraded the history schema to version %d", step)
            version = step
    return version


def write_extract(
    tables: CanonicalTables, root: Path, org_id: str, day: dt.date
) -> Path:
    """Write the canonical tables as Parquet to ``root/extracts/<org>/<day>/``.

    A folder already there for that day is replaced only after the new one is
    complete. ``meta.json`` keeps the source's record counts, missing tables and
    notes. Returns the folder.
    """
    folder = root / EXTRACTS_FOLDER / org_id / day.isoformat()
    staging = folder.with_name(f".{day.isoformat()}-{uuid.uuid4().hex[:8]}")
    staging.mkdir(parents=True)
    try:
        for name, frame in tables.tables.items():
            frame.write_parquet(staging / f"{name}.parquet")
        meta = {
            "counts": tables.counts,
            "missing": tables.missing,
            "notes": tables.notes,
            "unmapped_statuses": tables.unmapped_statuses,
        }
        (staging / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _run_values(
    run_id: str,
    document: Mapping[str, Any],
    day: dt.date,
    flow_run_id: str | None,
    extract_path: Path | None,
) -> list[Any]:
    overall = document["scorecard"]["overall"]
    gate = document.get("gate")
    return [
        run_id,
        document["org"]["id"],
        day,
        dt.datetime.fromisoformat(document["as_of"].replace("Z", "+00:00")),
        document["source"]["name"],
        _now(),
        overall.get("score"),
        band_name(overall.get("band")),
        None if gate is None else bool(gate["passed"]),
        flow_run_id,
        json.dumps(document, default=str),
        None if extract_path is None else str(extract_path),
    ]


def _insert_run_rows(
    db: duckdb.DuckDBPyConnection,
    run_id: str,
    org_id: str,
    day: dt.date,
    document: Mapping[str, Any],
) -> None:
    key = [run_id, org_id, day]
    metrics = [
        key
        + [
            name,
            m.get("label"),
            m.get("value"),
            m.get("population"),
            m.get("unit"),
            m.get("measurable"),
            m.get("note"),
        ]
        for name, m in document["metrics"].items()
    ]
    dimensions = [
        key
        + [
            d["key"],
            d.get("score"),
            d.get("level"),
            d.get("source"),
            d.get("confidence"),
        ]
        for d in document["scorecard"]["dimensions"]
    ]
    audit = document.get("audit") or {}
    audit_rows = [
        key
        + [
            d["key"],
            d.get("measured_level"),
            (d.get("everyone") or {}).get("self_reported"),
            (d.get("everyone") or {}).get("verdict"),
            d.get("perception_gap"),
        ]
        for d in audit.get("dimensions", [])
    ]
    flags = [
        key + [f["key"], f.get("dimension"), f.get("message")]
        for f in audit.get("red_flags", [])
    ]
    _insert(db, "metrics", metrics)
    _insert(db, "dimensions", dimensions)
    _insert(db, "audit", audit_rows)
    _insert(db, "red_flags", flags)
    if document.get("gate") is not None:
        _insert_gate_findings(db, run_id, org_id, day, document["gate"])


def _insert_gate_findings(
    db: duckdb.DuckDBPyConnection,
    run_id: str,
    org_id: str,
    day: dt.date,
    gate: Mapping[str, Any],
) -> None:
    rows = [
        [
            run_id,
            org_id,
            day,
            f["expectation"],
            f.get("table"),
            str(f.get("severity")),
            f.get("failed"),
            f.get("total"),
        ]
        for f in gate.get("findings", [])
    ]
    _insert(db, "gate_findings", rows)


def _insert(db: duckdb.DuckDBPyConnection, table: str, rows: list[list[Any]]) -> None:
    if rows:
        marks = ", ".join("?" * len(rows[0]))
        db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


def band_name(band: Any) -> str | None:
    """Return the name of an overall band given as a name or as ``{"name": ...}``."""
    if isinstance(band, Mapping):
        return band.get("name")
    return band


def _aware(obj: str, mark: dt.datetime) -> dt.datetime:
    if mark.tzinfo is None:
        msg = f"watermark of {obj!r} has no time zone; pass an aware datetime in UTC"
        raise HistoryError(msg)
    return mark.astimezone(dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
