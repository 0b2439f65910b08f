"""The registry of data sources that ``revalign score --source NAME`` can read.

Each source is a function from a :class:`SourceRequest` to canonical tables. API
sources also report the extraction time, which becomes the run's as-of time when
the user gives none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from config.models import OrgConfig
from connectors.errors import InputError
from connectors.schema import CanonicalTables


@dataclass(frozen=True)
class SourceRequest:
    """Inputs a source needs to extract one org's data."""

    config: OrgConfig
    path: Path | None = None
    state_dir: Path | None = None
    full_refresh: bool = False


@dataclass
class Extract:
    """Canonical tables plus when they were extracted (``None`` for files)."""

    tables: CanonicalTables
    extracted_at: dt.datetime | None = None


SourceReader = Callable[[SourceRequest], Extract]


def _salesforce_export(request: SourceRequest) -> Extract:
    from connectors.salesforce_export import read_export

    if request.path is None:
        msg = "--source salesforce-export needs --path FOLDER (the folder holding Lead.csv)"
        raise InputError(msg)
    return Extract(read_export(request.path, request.config))


def _salesforce_api(request: SourceRequest) -> Extract:
    from connectors.salesforce_api import extract_salesforce

    result = extract_salesforce(
        request.config, state_dir=request.state_dir, full_refresh=request.full_refresh
    )
    return Extract(result.tables, extracted_at=result.extracted_at)


def _canonical_files(request: SourceRequest) -> Extract:
    from connectors.canonical_files import read_canonical

    if request.path is None:
        msg = "--source canonical needs --path FOLDER (the folder holding leads.parquet)"
        raise InputError(msg)
    return Extract(read_canonical(request.path, request.config))


def _hubspot_api(request: SourceRequest) -> Extract:
    from connectors.hubspot_api import extract_hubspot

    return extract_hubspot(request)


SOURCES: dict[str, SourceReader] = {
    "canonical": _canonical_files,
    "hubspot": _hubspot_api,
    "salesforce-export": _salesforce_export,
    "salesforce": _salesforce_api,
}


def extract(source: str, request: SourceRequest) -> Extract:
    """Read one org's data from ``source``; raises InputError for an unknown name."""
    reader = SOURCES.get(source)
    if reader is None:
        msg = f"unknown source {source!r}; choose one of: {', '.join(sorted(SOURCES))}"
        raise InputError(msg)
    return reader(request)
