"""Bulk API 2.0 query jobs, for objects too large to page through REST.

A job runs the SOQL on the server; its results come back as CSV pages chained by
the ``Sforce-Locator`` header, every value a string and null an empty string.
"""

from __future__ import annotations

import io
import logging

import polars as pl
from simple_salesforce import Salesforce

logger = logging.getLogger(__name__)


def bulk_query(
    client: Salesforce,
    obj: str,
    soql: str,
    *,
    include_deleted: bool,
    poll_seconds: float,
    page_rows: int,
) -> pl.DataFrame:
    """Run ``soql`` as a Bulk API 2.0 query job and return its rows as strings.

    ``include_deleted`` runs a ``queryAll`` job, which also returns deleted and
    archived records. Raises the ``simple-salesforce`` errors of the failing call,
    or ``SalesforceOperationError`` when the job itself fails.
    """
    job = getattr(client.bulk2, obj)
    run = job.query_all if include_deleted else job.query
    pages = run(soql, max_records=page_rows, wait=poll_seconds)
    frames = [_read_page(text) for text in pages if text]
    logger.debug("bulk job for %s returned %d page(s)", obj, len(frames))
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="vertical")


def _read_page(text: str) -> pl.DataFrame:
    return pl.read_csv(io.StringIO(text), infer_schema=False)
