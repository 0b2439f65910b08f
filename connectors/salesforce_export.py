"""Salesforce export folder: CSV files named by object API name, as the weekly
data export and Data Loader write them.

Only ``Lead.csv`` is required. A missing optional file or column is reported and
makes the metrics that need it "not measurable". Only the columns revalign uses
are read, so names, phone numbers and addresses never enter memory.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from config.models import OrgConfig
from connectors.errors import InputError
from connectors.salesforce_objects import (
    OBJECT_NAMES,
    REQUIRED,
    canonical_from_objects,
    wanted_fields,
)
from connectors.schema import CanonicalTables

logger = logging.getLogger(__name__)


def _find_file(folder: Path, obj: str) -> Path | None:
    exact = folder / f"{obj}.csv"
    if exact.is_file():
        return exact
    lowered = f"{obj.lower()}.csv"
    for candidate in folder.iterdir():
        if candidate.name.lower() == lowered:
            return candidate
    return None


def read_object_csv(
    path: Path, obj: str, config: OrgConfig
) -> tuple[pl.DataFrame, list[str]]:
    """Read the columns revalign uses from one object CSV, all as text.

    Returns the frame and the wanted columns the file lacks. Raises
    :class:`InputError` when a column the object cannot be used without is missing.
    """
    try:
        header = pl.read_csv(
            path, n_rows=0, infer_schema=False, encoding="utf8-lossy"
        ).columns
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as exc:
        msg = (
            f"{path}: cannot read as CSV ({exc}); re-export it as comma-separated UTF-8"
        )
        raise InputError(msg) from None
    raw_names = {name.lstrip("\ufeff"): name for name in header}
    header = list(raw_names)
    wanted = wanted_fields(obj, config)
    present = [name for name in wanted if name in header]
    missing = [name for name in wanted if name not in header]
    required_missing = [name for name in REQUIRED[obj] if name not in header]
    if required_missing:
        msg = (
            f"{path}: missing required column(s) {', '.join(required_missing)}; "
            f"the file has {', '.join(header) or 'no columns'}. Export {obj} with its "
            f"API field names."
        )
        raise InputError(msg)
    try:
        frame = pl.read_csv(
            path,
            columns=[raw_names[name] for name in present],
            infer_schema=False,
            encoding="utf8-lossy",
        )
    except pl.exceptions.ComputeError as exc:
        msg = f"{path}: malformed CSV ({exc}); check quoting and re-export the file"
        raise InputError(msg) from None
    frame = frame.rename({raw_names[name]: name for name in present})
    return frame, missing


def read_export(
    folder: Path, config: OrgConfig, *, salt: str = "revalign"
) -> CanonicalTables:
    """Read a Salesforce export folder into canonical tables."""
    if not folder.is_dir():
        msg = f"export folder {str(folder)!r} not found; pass the folder that holds Lead.csv"
        raise InputError(msg)
    if _find_file(folder, "Lead") is None:
        msg = f"{folder}: Lead.csv not found; an export folder needs at least Lead.csv"
        raise InputError(msg)

    objects: dict[str, pl.DataFrame] = {}
    gaps: list[str] = []
    absent: list[str] = []
    for obj in OBJECT_NAMES:
        path = _find_file(folder, obj)
        if path is None:
            absent.append(f"{obj}.csv")
            continue
        frame, missing = read_object_csv(path, obj, config)
        logger.info("read %s: %d rows", path.name, frame.height)
        objects[obj] = frame
        gaps.extend(f"{obj}.{name}" for name in missing if _matters(obj, name))

    tables = canonical_from_objects(
        objects, config, origin=f"{folder}/", suffix=".csv", salt=salt
    )
    if absent:
        tables.notes.insert(0, f"files not in the export: {', '.join(absent)}")
    if gaps:
        tables.notes.insert(
            1 if absent else 0, f"columns not in the export: {', '.join(gaps)}"
        )
    return tables


def _matters(obj: str, name: str) -> bool:
    # Bookkeeping columns whose absence changes no metric are not reported.
    return name not in {
        "IsDeleted",
        "SystemModstamp",
        "LastModifiedDate",
        "MasterRecordId",
        "Email",
    }
