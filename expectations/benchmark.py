"""Measure what the data-quality gate adds to a run.

Run it as ``python -m expectations.benchmark [--leads N] [--repeat N]``.

Each scenario runs in a fresh interpreter, so great_expectations is imported
cold, as in a real ``revalign`` run:

- ``extract``: extraction alone, the baseline;
- ``sequential``: extraction, then the gate (which imports great_expectations);
- ``overlapped``: :func:`expectations.gate.start_import` first, then the same.

Extraction reads the demo org's Salesforce export, written once beforehand, when
``connectors.demo`` is available. Otherwise it builds canonical tables of the
same size in memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from config.models import OrgConfig
from connectors.schema import CanonicalTables, conform

SCENARIOS = ("extract", "sequential", "overlapped")
AS_OF = dt.datetime(2025, 11, 1, tzinfo=dt.UTC)


def synthetic_tables(leads: int, *, seed: int = 7) -> CanonicalTables:
    """Build a clean org: ``leads`` leads, each with 3 stage events and 4 activities."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    lead_ids = pl.Series([f"00Q{i:015d}" for i in range(leads)])
    created = pl.Series(
        [start + dt.timedelta(minutes=int(m)) for m in rng.integers(0, 500_000, leads)]
    )
    user_ids = [f"005{i:015d}" for i in range(40)]
    lead_frame = pl.DataFrame(
        {
            "lead_id": lead_ids,
            "created_at": created,
            "status_raw": rng.choice(
                ["Open - Not Contacted", "Working - Contacted"], leads
            ),
            "owner_id": rng.choice(user_ids, leads),
        }
    )
    per_lead = lead_frame.select("lead_id", "created_at")
    stages = pl.concat(
        [
            per_lead.with_columns(
                stage=pl.lit(stage),
                entered_at=pl.col("created_at") + pl.duration(hours=h),
            )
            for h, stage in ((1, "mql"), (30, "sal"), (200, "sql"))
        ]
    ).sort("lead_id", "entered_at")
    activities = pl.concat(
        [
            per_lead.with_columns(
                occurred_at=pl.col("created_at") + pl.duration(hours=h)
            )
            for h in (2, 26, 50, 74)
        ]
    )
    activities = activities.with_columns(
        activity_id=pl.Series([f"00T{i:015d}" for i in range(activities.height)]),
        owner_id=pl.Series(rng.choice(user_ids, activities.height)),
    )
    tables = {
        "leads": conform("leads", lead_frame),
        "stage_events": conform("stage_events", stages),
        "owner_events": conform(
            "owner_events",
            lead_frame.select("lead_id", "owner_id", assigned_at="created_at"),
        ),
        "activities": conform("activities", activities),
        "users": conform("users", pl.DataFrame({"user_id": user_ids, "team": "sales"})),
    }
    return CanonicalTables(tables=tables)


def _extract(
    folder: Path | None, leads: int
) -> tuple[CanonicalTables, OrgConfig, dt.datetime]:
    if folder is None:
        return synthetic_tables(leads), OrgConfig(), AS_OF
    from config.models import load_config
    from connectors.demo import DEMO_AS_OF
    from connectors.salesforce_export import read_export
    from flows.pipeline import DEMO_CONFIG

    config = load_config(DEMO_CONFIG)
    return read_export(folder, config), config, DEMO_AS_OF


def run_scenario(scenario: str, folder: Path | None, leads: int) -> dict[str, float]:
    """Run one scenario in this process and return its timings in seconds."""
    started = time.perf_counter()
    if scenario == "overlapped":
        from expectations.gate import start_import

        start_import()
    tables, config, as_of = _extract(folder, leads)
    extracted = time.perf_counter()
    timings = {"extract": extracted - started}
    if scenario != "extract":
        from expectations.gate import run_gate

        report = run_gate(tables, config, as_of=as_of)
        timings["gate"] = report.duration_seconds
        timings["gate_import"] = report.import_seconds
        timings["findings"] = len(report.findings)
    timings["total"] = time.perf_counter() - started
    return timings


def _demo_folder(parent: Path, leads: int) -> Path | None:
    try:
        from connectors.demo import generate_demo
    except ImportError:
        return None
    return generate_demo(parent / "demo-export", leads=leads).folder


def main() -> None:
    """Run every scenario ``--repeat`` times in fresh interpreters and print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(run_scenario(args.scenario, args.folder, args.leads)))
        return

    with tempfile.TemporaryDirectory() as parent:
        folder = _demo_folder(Path(parent), args.leads)
        print(f"source: {folder or 'synthetic canonical tables'}, {args.leads} leads")
        results = {name: _repeat(name, folder, args) for name in SCENARIOS}
    baseline = float(np.median([r["total"] for r in results["extract"]]))
    for name, runs in results.items():
        medians = {key: float(np.median([r[key] for r in runs])) for key in runs[0]}
        shown = ", ".join(f"{key} {value:.2f}" for key, value in medians.items())
        added = medians["total"] - baseline
        print(f"{name:>10}: {shown}; added to extraction {added:.2f} s")


def _repeat(scenario: str, folder: Path | None, args: argparse.Namespace) -> list[dict]:
    command = [sys.executable, "-m", "expectations.benchmark", "--scenario", scenario]
    command += ["--leads", str(args.leads)]
    if folder is not None:
        command += ["--folder", str(folder)]
    runs = []
    for _ in range(args.repeat):
        output = subprocess.run(
            command, check=True, capture_output=True, text=True
        ).stdout
        runs.append(json.loads(output.splitlines()[-1]))
    return runs


if __name__ == "__main__":
    main()
