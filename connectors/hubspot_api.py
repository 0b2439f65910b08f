"""HubSpot API connector: a portal's CRM data as canonical tables.

Reads contacts (the leads) with their lifecycle, lead-status and owner history,
engagements (calls, emails, meetings, tasks, communications) with their v4
contact associations, deals with stage history, owners including archived ones,
companies and form conversions, through ``hubspot-api-client``. The host, CA
bundle, token variable and mappings come from the ``hubspot`` section of the
org config.

Modules: :mod:`connectors.hubspot_client` (HTTP, paging, retries),
:mod:`connectors.hubspot_extract` (what to read, full or incremental, state),
:mod:`connectors.hubspot_contacts` and :mod:`connectors.hubspot_tables` (raw
frames to canonical tables).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from config.models import OrgConfig
from connectors.hubspot_client import HubSpotApi, HubSpotError, connect
from connectors.hubspot_extract import extract_raw
from connectors.hubspot_tables import canonical_from_portal
from connectors.schema import CanonicalTables

if TYPE_CHECKING:
    from flows.sources import Extract, SourceRequest

__all__ = ["HubSpotError", "extract_hubspot", "read_hubspot"]

logger = logging.getLogger(__name__)


def read_hubspot(
    config: OrgConfig,
    *,
    api: HubSpotApi | None = None,
    state_dir: Path | None = None,
    full_refresh: bool = False,
    now: dt.datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[CanonicalTables, dt.datetime]:
    """Read one portal into canonical tables; returns them and the extraction time.

    ``api`` defaults to a client built from ``config.hubspot``. With a
    ``state_dir``, raw frames are stored there and the next run reads only what
    changed since (less ``hubspot.lookback_minutes``).

    Raises:
        HubSpotError: the token is missing or rejected, the API cannot be reached,
            or it sends a body that is not the expected JSON.
        InputError: a property contains an invalid value.
    """
    api = api or connect(config.hubspot, sleep=sleep)
    started = time.monotonic()
    raw = extract_raw(
        api, config, state_dir=state_dir, full_refresh=full_refresh, now=now
    )
    tables = canonical_from_portal(raw, config)
    logger.info(
        "HubSpot %s extraction: %d API calls in %.1f s, %d leads",
        raw.mode, api.calls, time.monotonic() - started, tables["leads"].height,
    )  # fmt: skip
    return tables, raw.extracted_at


def extract_hubspot(request: SourceRequest) -> Extract:
    """Source-registry adapter: read the portal that ``request.config`` names."""
    from flows.sources import Extract

    tables, extracted_at = read_hubspot(
        request.config, state_dir=request.state_dir, full_refresh=request.full_refresh
    )
    return Extract(tables, extracted_at)
