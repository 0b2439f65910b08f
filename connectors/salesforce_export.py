"""Salesforce export folder: CSV files named by object API name, as the weekly
data export and Data Loader write them.

Only ``Lead.csv`` is required. A missing optional file or column is reported and
makes the metrics that need it "not measurable". Only the columns revalign uses
are read, so names, phone numbers and addresses never enter memory.
"""

from __future__ import annotations

import csv
import logging
import re
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
    header_cells = [name.lstrip("\ufeff") for name in header]
    raw_names = {name.lstrip("\ufeff"): name for name in header}
    header = list(raw_names)
    wanted = wanted_fields(obj, config)
    present = [name for name in wanted if name in header]
    missing = [name for name in wanted if name not in header]
    required_missing = [name for name in REQUIRED[obj] if name not in header]
    if required_missing:
        msg = (
            f"{path}: missing required column(s) {', '.join(required_missing)}; "
            f"{_describe_header(header)} Export {obj} as comma-separated UTF-8 with "
            f"its API field names in the first row."
        )
        raise InputError(msg)
    repeated = sorted(
        {re.sub(r"_duplicated_\d+$", "", name) for name in header_cells if _DUPLICATE.search(name)}
    )
    if repeated:
        msg = (
            f"{path}: column(s) {', '.join(map(repr, repeated))} appear more than once "
            f"in the header; keep one of each and re-export"
        )
        raise InputError(msg)
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
    except pl.exceptions.ComputeError as exc:
        raise InputError(_malformed_message(path, str(exc))) from None
    frame = frame.select([raw_names[name] for name in present])
    frame = frame.rename({raw_names[name]: name for name in present})
    return frame, missing


_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_DUPLICATE = re.compile(r"_duplicated_\d+$")


def _malformed_message(path: Path, reason: str) -> str:
    """Turn a CSV parser error into a message naming the row and the likely fix."""
    if "utf-8" in reason.lower():
        return f"{path}: the file is not UTF-8 encoded; save it again as CSV UTF-8"
    row = _first_ragged_row(path)
    if row is not None:
        number, cells, expected = row
        return (
            f"{path}: row {number} has {cells} cells but the header has {expected}; "
            "check for an unquoted comma or a missing cell and re-export"
        )
    offset = re.search(r"offset in the file is (\d+) bytes", reason)
    if offset:
        # The parser counts the offset from the first row after the header.
        with path.open("rb") as handle:
            handle.readline()
            line = handle.read(int(offset.group(1))).count(b"\n") + 2
        return (
            f"{path}: cannot parse the file near line {line}; check for an unclosed "
            "quote and re-export"
        )
    return f"{path}: malformed CSV ({reason.splitlines()[0]}); check quoting and re-export"


def _first_ragged_row(path: Path) -> tuple[int, int, int] | None:
    """Return (row, cells, header cells) of the first row whose width differs."""
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        for number, cells in enumerate(reader, start=2):
            if cells and len(cells) != len(header):
                return number, len(cells), len(header)
    return None


def _describe_header(header: list[str]) -> str:
    """Describe a header for an error without echoing cells that may be data."""
    names = [name for name in header if _FIELD_NAME.match(name)]
    if not header:
        return "the file has no columns."
    if len(names) < len(header):
        return (
            f"its first row has {len(header)} cells, {len(header) - len(names)} of which "
            "are not API field names (a missing header row, another delimiter or "
            "encoding?)."
        )
    return f"the file has {', '.join(names)}."


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
        if obj == "Lead" and frame.is_empty():
            msg = f"{path}: the file has a header but no lead rows; export the leads again"
            raise InputError(msg)
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
