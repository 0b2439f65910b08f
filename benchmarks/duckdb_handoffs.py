"""The handoff metrics in plain DuckDB SQL, as a yardstick for the polars stage.

It computes what :mod:`metrics.handoff_metrics` reports (handoff count, speed to
lead in business and calendar hours, untouched share, SLA breach rate, SAL rate,
rejection reasons, recycle rate and routing failures) with the same definitions:
handoff windows bounded by the lead's next handoff, first touches and decisions
by as-of joins, and business hours as positions on a cumulative clock of opening
periods. Only the opening periods' dates and the holiday list come from Python.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from config.models import WEEKDAYS, OrgConfig
from metrics.calendar import BusinessCalendar
from metrics.handoffs import ACCEPTED_STAGES, REJECTED_STAGES

_TABLES = ("stage_events", "activities", "users", "owner_events", "leads")

_PERIODS = """
CREATE TEMP TABLE periods AS
WITH days AS (
    SELECT CAST(d AS DATE) AS day
    FROM generate_series($first, $last, INTERVAL 1 DAY) AS g(d)
), open_days AS (
    SELECT day FROM days
    WHERE isodow(day) IN (SELECT unnest($weekdays))
      AND day NOT IN (SELECT unnest($holidays))
), bounds AS (
    SELECT timezone($zone, day + $opens) AS opens_at,
           timezone($zone, day + $closes) AS closes_at
    FROM open_days
)
SELECT opens_at,
       epoch_us(closes_at) - epoch_us(opens_at) AS length,
       sum(epoch_us(closes_at) - epoch_us(opens_at)) OVER (ORDER BY opens_at)
           - (epoch_us(closes_at) - epoch_us(opens_at)) AS elapsed_before
FROM bounds
"""

_HANDOFFS = """
CREATE TEMP TABLE handoffs AS
SELECT lead_id, handoff_at,
       coalesce(lead(handoff_at) OVER (PARTITION BY lead_id ORDER BY handoff_at),
                $as_of) AS window_end
FROM (SELECT DISTINCT lead_id, entered_at AS handoff_at
      FROM stage_events WHERE stage = 'mql' AND entered_at <= $as_of);

CREATE TEMP TABLE touches AS
SELECT a.lead_id, a.occurred_at AS touched_at
FROM activities a
WHERE a.is_completed AND NOT a.is_automated AND a.kind IN (SELECT unnest($kinds))
  AND a.occurred_at <= $as_of AND a.lead_id IS NOT NULL
  AND a.owner_id IN (SELECT user_id FROM users WHERE team = 'sales');

CREATE TEMP TABLE decisions AS
SELECT lead_id, entered_at AS decided_at,
       CASE WHEN stage IN (SELECT unnest($accepted)) THEN 'accepted'
            ELSE 'rejected' END AS decision
FROM stage_events
WHERE stage IN (SELECT unnest($accepted)) OR stage IN (SELECT unnest($rejected));

CREATE TEMP TABLE followed AS
WITH touched AS (
    SELECT h.*, t.touched_at AS candidate
    FROM handoffs h ASOF LEFT JOIN touches t
      ON h.lead_id = t.lead_id AND t.touched_at >= h.handoff_at
), decided AS (
    SELECT x.*, d.decided_at AS decided_candidate, d.decision AS decision_candidate
    FROM touched x ASOF LEFT JOIN decisions d
      ON x.lead_id = d.lead_id AND d.decided_at >= x.handoff_at
)
SELECT lead_id, handoff_at, window_end,
       CASE WHEN candidate < window_end
             OR (window_end = $as_of AND candidate <= window_end)
            THEN candidate END AS touched_at,
       CASE WHEN decided_candidate < window_end
             OR (window_end = $as_of AND decided_candidate <= window_end)
            THEN decided_candidate END AS decided_at,
       CASE WHEN decided_candidate < window_end
             OR (window_end = $as_of AND decided_candidate <= window_end)
            THEN decision_candidate END AS decision
FROM decided;
"""

_CLOCKED = """
CREATE TEMP TABLE clocked AS
WITH start_clock AS (
    SELECT f.*, CASE WHEN p.opens_at IS NULL THEN 0 ELSE p.elapsed_before
        + least(epoch_us(f.handoff_at) - epoch_us(p.opens_at), p.length) END AS c0
    FROM followed f ASOF LEFT JOIN periods p ON f.handoff_at >= p.opens_at
), touch_clock AS (
    SELECT s.*, CASE WHEN s.touched_at IS NULL THEN NULL
        WHEN p.opens_at IS NULL THEN 0 ELSE p.elapsed_before
        + least(epoch_us(s.touched_at) - epoch_us(p.opens_at), p.length) END AS c1
    FROM start_clock s ASOF LEFT JOIN periods p ON s.touched_at >= p.opens_at
), as_of_clock AS (
    SELECT p.elapsed_before
        + least(epoch_us($as_of) - epoch_us(p.opens_at), p.length) AS c2
    FROM periods p WHERE p.opens_at <= $as_of ORDER BY p.opens_at DESC LIMIT 1
)
SELECT t.*,
       (c1 - c0) / 3.6e9 AS business_hours,
       (epoch_us(touched_at) - epoch_us(handoff_at)) / 3.6e9 AS calendar_hours,
       (a.c2 - c0) / 3.6e9 AS open_hours
FROM touch_clock t, as_of_clock a
"""

_FOLLOW_UP = """
CREATE TEMP TABLE follow_up AS
SELECT c.lead_id, c.handoff_at,
       bool_or(e.stage IN (SELECT unnest($rejected)) AND e.reason IS NOT NULL)
           AS has_reason,
       bool_or(e.stage = 'recycled' AND e.entered_at >= c.decided_at) AS recycled
FROM clocked c JOIN stage_events e
  ON e.lead_id = c.lead_id AND e.entered_at >= c.handoff_at
 AND e.entered_at <= c.window_end
GROUP BY c.lead_id, c.handoff_at;

CREATE TEMP TABLE routed AS
WITH in_place AS (
    SELECT c.lead_id, c.handoff_at, o.owner_id AS owner_at_handoff
    FROM clocked c ASOF LEFT JOIN owner_events o
      ON c.lead_id = o.lead_id AND o.assigned_at <= c.handoff_at
), assigned AS (
    SELECT c.lead_id, c.handoff_at,
           CASE WHEN o.assigned_at <= c.handoff_at + to_microseconds($routing_us)
                THEN o.owner_id END AS owner_assigned
    FROM clocked c ASOF LEFT JOIN owner_events o
      ON c.lead_id = o.lead_id AND o.assigned_at >= c.handoff_at
)
SELECT i.lead_id, i.handoff_at,
       NOT coalesce(u.team = 'sales' AND (u.is_active
           OR coalesce(u.deactivated_at > i.handoff_at, false)), false)
           AS routing_failed
FROM in_place i
JOIN assigned a USING (lead_id, handoff_at)
LEFT JOIN leads l ON l.lead_id = i.lead_id
LEFT JOIN users u
  ON u.user_id = coalesce(a.owner_assigned, i.owner_at_handoff, l.owner_id);
"""

_METRICS = """
WITH h AS (
    SELECT c.*, coalesce(f.has_reason, false) AS has_reason,
           coalesce(f.recycled, false)
               OR (c.decision = 'rejected' AND c.window_end < $as_of) AS recycled,
           r.routing_failed,
           CASE WHEN c.touched_at IS NOT NULL THEN
                    CASE WHEN c.business_hours <= $sla + 1e-9 THEN 'on_time'
                         ELSE 'breached' END
                WHEN c.open_hours > $sla + 1e-9 THEN 'breached'
                ELSE 'not_due' END AS sla_status,
           c.handoff_at <= $as_of - to_days($window_days) AS mature
    FROM clocked c
    LEFT JOIN follow_up f USING (lead_id, handoff_at)
    LEFT JOIN routed r USING (lead_id, handoff_at)
)
SELECT
    count(*) AS handoff_count,
    median(business_hours) AS speed_to_lead_median_business_hours,
    quantile_cont(business_hours, 0.9) AS speed_to_lead_p90_business_hours,
    median(calendar_hours) AS speed_to_lead_median_calendar_hours,
    quantile_cont(calendar_hours, 0.9) AS speed_to_lead_p90_calendar_hours,
    avg(CASE WHEN touched_at IS NULL THEN 1.0 ELSE 0.0 END) AS untouched_share,
    count(*) FILTER (sla_status = 'breached')
        / count(*) FILTER (sla_status <> 'not_due') AS sla_breach_rate,
    count(*) FILTER (sla_status = 'on_time')
        / count(*) FILTER (sla_status <> 'not_due') AS sla_on_time_share,
    count(*) FILTER (mature AND decision = 'accepted')
        / count(*) FILTER (mature) AS sal_rate,
    count(*) FILTER (mature AND decision IS NOT NULL)
        / count(*) FILTER (mature) AS decided_share,
    count(*) FILTER (mature AND decision IS NULL)
        / count(*) FILTER (mature) AS undecided_share,
    count(*) FILTER (decision = 'rejected' AND has_reason)
        / count(*) FILTER (decision = 'rejected') AS rejection_reason_share,
    count(*) FILTER (decision = 'rejected' AND recycled)
        / count(*) FILTER (decision = 'rejected') AS recycle_rate,
    avg(CASE WHEN routing_failed THEN 1.0 ELSE 0.0 END) AS routing_failure_rate
FROM h
"""


def _run(
    connection: duckdb.DuckDBPyConnection, script: str, parameters: dict[str, object]
) -> duckdb.DuckDBPyConnection:
    """Execute each statement of ``script`` with the parameters it names."""
    cursor = connection
    for statement in filter(str.strip, script.split(";")):
        used = {k: v for k, v in parameters.items() if f"${k}" in statement}
        cursor = connection.execute(statement, used)
    return cursor


def _parameters(config: OrgConfig, as_of: dt.datetime) -> dict[str, object]:
    calendar = config.calendar
    first = dt.date(2000, 1, 1)
    last = as_of.date() + dt.timedelta(days=120)
    holidays = sorted(BusinessCalendar(calendar).holidays_between(first, last))
    return {
        "first": first,
        "last": last,
        "weekdays": [WEEKDAYS.index(day) + 1 for day in calendar.working_days],
        "holidays": holidays,
        "zone": calendar.time_zone,
        "opens": calendar.opens,
        "closes": calendar.closes,
    }


def handoff_metrics_sql(
    folder: Path, config: OrgConfig, as_of: dt.datetime
) -> dict[str, float | None]:
    """Return the handoff metric values computed by DuckDB over ``folder``'s files."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    for table in _TABLES:
        path = str(folder / f"{table}.parquet")
        connection.execute(
            f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')"
        )
    parameters = {
        **_parameters(config, as_of),
        "as_of": as_of,
        "kinds": list(config.sla.touch_kinds),
        "accepted": list(ACCEPTED_STAGES),
        "rejected": list(REJECTED_STAGES),
        "routing_us": round(config.sla.routing_hours * 3_600_000_000),
        "sla": config.sla.speed_to_lead_hours,
        "window_days": config.decision_window_days,
    }
    for script in (_PERIODS, _HANDOFFS, _CLOCKED, _FOLLOW_UP):
        _run(connection, script, parameters)
    cursor = _run(connection, _METRICS, parameters)
    names = [column[0] for column in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))
