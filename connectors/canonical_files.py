"""Canonical files: a folder of Parquet or CSV files already in the canonical schema.

For warehouse users (Fivetran, Airbyte, dbt) who map their CRM tables themselves:
one file per canonical table, named ``<table>.parquet`` or ``<table>.csv``
(``leads.parquet``, ``stage_events.csv``, ...). Only ``leads`` is required. CSV
cells are parsed like export cells (timestamps with a zone or in the org's time
zone, TRUE/FALSE, numbers); ``lead_ids`` in CSV is a ``;``-separated list.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from config.models import OrgConfig
from connectors.errors import InputError
from connectors.schema import SCHEMAS, STAGES, CanonicalTables, conform
from connectors.values import parse_bool, parse_date, parse_datetime, parse_number

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "leads": ("lead_id",),
    "stage_events": ("lead_id", "stage", "entered_at"),
    "owner_events": ("lead_id", "owner_id", "assigned_at"),
    "activities": ("activity_id", "lead_id", "owner_id", "occurred_at", "kind"),
    "opportunities": ("opportunity_id",),
    "opportunity_history": ("opportunity_id", "changed_at"),
    "touches": ("touch_id", "touched_at"),
    "campaigns": ("campaign_id",),
    "accounts": ("account_id",),
    "users": ("user_id", "team"),
}


def _typed_csv(
    path: Path, table: str, config: OrgConfig, zoneless: dict[str, int]
) -> pl.DataFrame:
    frame = pl.read_csv(path, infer_schema=False)
    source = str(path)
    columns = {}
    for name, dtype in SCHEMAS[table].items():
        if name not in frame.columns:
            continue
        if dtype == pl.Datetime("us", "UTC"):
            columns[name], forms = parse_datetime(
                frame, name, source=source, time_zone=config.calendar.time_zone,
                date_order=config.source.locale_date_order,
            )  # fmt: skip
            if sum(forms.values()):
                zoneless[f"{path.name} {name}"] = sum(forms.values())
        elif dtype == pl.Date:
            columns[name] = parse_date(frame, name, source=source)
        elif dtype == pl.Boolean:
            columns[name] = parse_bool(frame, name, source=source)
        elif dtype == pl.Float64:
            columns[name] = parse_number(frame, name, source=source)
        elif isinstance(dtype, pl.List):
            columns[name] = frame[name].str.split(";")
        else:
            columns[name] = frame[name].str.strip_chars().replace("", None)
    return pl.DataFrame(columns) if columns else pl.DataFrame()


def _typed_parquet(
    path: Path, table: str, config: OrgConfig, zoneless: dict[str, int]
) -> pl.DataFrame:
    """Read a Parquet table and cast its columns to the canonical types.

    A timestamp column stored without a time zone is read in the org's time zone,
    as zone-less CSV values are. Casting it straight to UTC would silently shift
    every value by the zone's offset.
    """
    frame = pl.read_parquet(path)
    for name, dtype in SCHEMAS[table].items():
        if name not in frame.columns:
            continue
        column = frame[name]
        if isinstance(column.dtype, pl.Datetime) and column.dtype.time_zone is None:
            local = column.dt.replace_time_zone(
                config.calendar.time_zone, ambiguous="earliest", non_existent="null"
            )
            frame = frame.with_columns(local.alias(name))
            zoneless[f"{path.name} {name}"] = column.count()
        try:
            frame = frame.with_columns(pl.col(name).cast(dtype))
        except pl.exceptions.PolarsError:
            msg = (
                f"{path}: column `{name}` has type {frame[name].dtype}, which cannot be "
                f"read as {dtype}; write it as {dtype} in the canonical schema"
            )
            raise InputError(msg) from None
    return frame


def _find(folder: Path, table: str) -> Path | None:
    for suffix in (".parquet", ".csv"):
        path = folder / f"{table}{suffix}"
        if path.is_file():
            return path
    return None


def read_canonical(folder: Path, config: OrgConfig) -> CanonicalTables:
    """Read a folder of canonical-schema files; raises InputError for bad files."""
    if not folder.is_dir():
        msg = f"canonical folder {str(folder)!r} not found; pass the folder holding leads.parquet or leads.csv"
        raise InputError(msg)
    if _find(folder, "leads") is None:
        msg = f"{folder}: leads.parquet or leads.csv not found; the leads table is required"
        raise InputError(msg)
    result = CanonicalTables(tables={})
    zoneless: dict[str, int] = {}
    for table in SCHEMAS:
        path = _find(folder, table)
        if path is None:
            result.missing[table] = f"no {table} file"
            continue
        if path.suffix == ".parquet":
            frame = _typed_parquet(path, table, config, zoneless)
        else:
            frame = _typed_csv(path, table, config, zoneless)
        absent = [name for name in REQUIRED_COLUMNS[table] if name not in frame.columns]
        if absent:
            msg = f"{path}: missing required column(s) {', '.join(absent)}; see connectors/schema.py"
            raise InputError(msg)
        result.tables[table] = conform(table, frame)
        result.counts[path.name] = frame.height
    _check_stages(folder, result)
    result.unmapped_statuses = _unmapped_statuses(result["leads"], config)
    for column, count in zoneless.items():
        result.notes.append(
            f"{column}: {count} value(s) had no time zone; read in the org's "
            f"time zone {config.calendar.time_zone}"
        )
    return result


def _unmapped_statuses(leads: pl.DataFrame, config: OrgConfig) -> dict[str, int]:
    """Count the leads' status values that the config's stage mapping lacks.

    Canonical files carry their stage events already, so no mapping was applied
    on reading. The gate and the hygiene metric still judge status values by the
    config's mapping, as for the other sources.
    """
    mapping = config.stages.resolved()
    counts = (
        leads.filter(
            pl.col("status_raw").is_not_null()
            & ~pl.col("status_raw").is_in(list(mapping))
        )
        .group_by("status_raw")
        .len()
    )
    return dict(zip(counts["status_raw"], counts["len"]))


def _check_stages(folder: Path, result: CanonicalTables) -> None:
    events = result["stage_events"]
    unknown = events.filter(~pl.col("stage").is_in(STAGES))["stage"].unique().sort()
    if unknown.len():
        msg = (
            f"{folder}/stage_events: stage value(s) {', '.join(map(repr, unknown))} are not "
            f"canonical; use one of {', '.join(STAGES)}"
        )
        raise InputError(msg)


def write_canonical(tables: CanonicalTables, folder: Path) -> list[Path]:
    """Write every provided canonical table as Parquet into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in tables.tables.items():
        if name in tables.missing:
            continue
        path = folder / f"{name}.parquet"
        frame.write_parquet(path)
        written.append(path)
    return written
