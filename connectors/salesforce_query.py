"""Reading one object's rows in a time window, by REST or Bulk API 2.0.

The window is on the object's watermark field (``SystemModstamp``, or
``CreatedDate`` where it has none). A window whose query times out is split in
two, and a REST read that fails part-way resumes from the last row read.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import polars as pl

from connectors.salesforce_bulk import bulk_query
from connectors.salesforce_calls import SalesforceApiError
from connectors.salesforce_rows import export_text, frame_from_records
from connectors.salesforce_session import ApiSession, WindowTimedOut

logger = logging.getLogger(__name__)

# The lower bound of a split window when the query had none: no record is older.
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class ObjectPlan:
    """Fields to read from one object, their describe types, and its watermark field."""

    obj: str
    fields: tuple[str, ...]
    types: dict[str, str]
    watermark_field: str | None


def soql_datetime(when: dt.datetime) -> str:
    """Return a SOQL datetime literal in UTC to the second (2025-03-10T14:00:00Z)."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_soql(
    plan: ObjectPlan,
    lower: dt.datetime | None,
    upper: dt.datetime | None,
    *,
    ordered: bool,
    select: str | None = None,
) -> str:
    """Return the query of ``plan``'s rows with watermark in ``[lower, upper)``.

    ``None`` leaves that side open. ``select`` replaces the field list, as in
    ``COUNT()``. ``ordered`` sorts by watermark, then ``Id``.
    """
    soql = f"SELECT {select or ', '.join(plan.fields)} FROM {plan.obj}"
    conditions = []
    if plan.watermark_field and lower is not None:
        conditions.append(f"{plan.watermark_field} >= {soql_datetime(lower)}")
    if plan.watermark_field and upper is not None:
        conditions.append(f"{plan.watermark_field} < {soql_datetime(upper)}")
    if conditions:
        soql += " WHERE " + " AND ".join(conditions)
    if ordered and plan.watermark_field:
        soql += f" ORDER BY {plan.watermark_field}, Id"
    return soql


def parse_stamp(text: str) -> dt.datetime:
    """Parse an API datetime such as ``2025-03-10T14:00:00.000+0000`` (or ``Z``)."""
    return dt.datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")


class ObjectReader:
    """Reader of one object's rows in a time window, by REST or Bulk API 2.0."""

    def __init__(
        self, api: ApiSession, plan: ObjectPlan, started: dt.datetime, *, bulk: bool
    ) -> None:
        self.api = api
        self.plan = plan
        self.started = started
        self.bulk = bulk

    def read(
        self, lower: dt.datetime | None, upper: dt.datetime | None
    ) -> pl.DataFrame:
        """Return the rows with watermark in ``[lower, upper)``, in export text form."""
        try:
            frame = (
                self._read_bulk(lower, upper)
                if self.bulk
                else self._read_rest(lower, upper)
            )
        except WindowTimedOut:
            return self._read_split(lower, upper)
        return frame.unique("Id", keep="last", maintain_order=True)

    def _read_split(
        self, lower: dt.datetime | None, upper: dt.datetime | None
    ) -> pl.DataFrame:
        low = lower or EPOCH
        high = upper or self.started
        if (
            self.plan.watermark_field is None
            or high - low <= self.api.options.min_window
        ):
            window = f"{soql_datetime(low)} to {soql_datetime(high)}"
            msg = (
                f"the query of {self.plan.obj} timed out (QUERY_TIMEOUT) even for the "
                f"window {window}. Lower salesforce.bulk_threshold_rows so the object "
                f"is read by Bulk API, or ask Salesforce support about its indexes"
            )
            raise SalesforceApiError(msg, retryable=True)
        middle = (low + (high - low) / 2).replace(microsecond=0)
        logger.warning(
            "query of %s timed out for %s..%s; splitting at %s",
            self.plan.obj,
            soql_datetime(low),
            upper and soql_datetime(upper),
            soql_datetime(middle),
        )
        first = self.read(low, middle)
        second = self.read(middle, upper)
        return pl.concat([first, second]).unique("Id", keep="last", maintain_order=True)

    def _read_rest(
        self, lower: dt.datetime | None, upper: dt.datetime | None
    ) -> pl.DataFrame:
        """Page through ``queryAll``, and after a failure query again from the last row.

        Rows come ordered by (watermark, Id), so every row older than the last one
        read is already in hand. The new query starts at that row's watermark
        (``>=``), and ``read`` drops the duplicates by ``Id``. A ``nextRecordsUrl``
        is never reused after a failure.
        """
        records: list[dict[str, Any]] = []
        resume = lower
        attempt = 0
        api = self.api
        while True:
            soql = build_soql(self.plan, resume, upper, ordered=True)
            try:
                rows = api.client().query_all_iter(
                    soql, include_deleted=True, timeout=api.options.request_timeout
                )
                records.extend(rows)
                break
            except Exception as exc:  # noqa: BLE001 - recover() re-raises the rest
                attempt = api.recover(exc, attempt, f"query of {self.plan.obj}")
                if records and self.plan.watermark_field:
                    last = parse_stamp(records[-1][self.plan.watermark_field])
                    resume = last.replace(microsecond=0)
        frame = frame_from_records(records, self.plan.types)
        return export_text(frame, self.plan.types)

    def _read_bulk(
        self, lower: dt.datetime | None, upper: dt.datetime | None
    ) -> pl.DataFrame:
        soql = build_soql(self.plan, lower, upper, ordered=False)
        options = self.api.options
        attempt = 0
        while True:
            try:
                frame = bulk_query(
                    self.api.client(),
                    self.plan.obj,
                    soql,
                    include_deleted=True,
                    poll_seconds=options.bulk_poll_seconds,
                    page_rows=options.bulk_page_rows,
                )
                break
            except Exception as exc:  # noqa: BLE001 - recover() re-raises the rest
                attempt = self.api.recover(
                    exc, attempt, f"bulk query of {self.plan.obj}"
                )
        if frame.width == 0:
            frame = pl.DataFrame(schema=dict.fromkeys(self.plan.fields, pl.String))
        return export_text(frame.select(self.plan.fields), self.plan.types)
