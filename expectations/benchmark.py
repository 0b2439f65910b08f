"""Measure what the data-quality gate adds to a run.

Run it as ``python -m expectations.benchmark [--leads N] [--repeat N]``.

Each scenario runs in a fresh interpreter, so great_expectations is imported
cold, as in a real ``revalign`` run:

- ``extract``: extraction alone, the baseline;
- ``sequential``: extraction, then the gate (which imports great_expectations);
- ``overlapped``: :func:`expectations.gate.start_import` first, then the same.

Extraction reads the demo org's Salesforce export, which is written once
beforehand, as ``revalign check data --path`` would.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Scenario processes import only the standard library before their clock starts,
# so numpy, pandas and polars load inside the timed part, as in a real run.
SCENARIOS = ("extract", "sequential", "overlapped")


def run_scenario(scenario: str, folder: Path, as_of: dt.datetime) -> dict[str, float]:
    """Run one scenario in this process and return its timings in seconds.

    ``cpu`` is the process's CPU time, all threads included, which varies less
    than wall-clock time when other processes share the machine.
    """
    started = time.perf_counter()
    if scenario == "overlapped":
        from expectations.gate import start_import

        start_import()
    from config.models import load_config
    from connectors.salesforce_export import read_export
    from flows.pipeline import DEMO_CONFIG

    config = load_config(DEMO_CONFIG)
    tables = read_export(folder, config)
    extracted = time.perf_counter()
    timings = {"extract": extracted - started}
    if scenario != "extract":
        from expectations.gate import run_gate

        report = run_gate(tables, config, as_of=as_of)
        timings["gate"] = report.duration_seconds
        timings["gate_import"] = report.import_seconds
        timings["findings"] = len(report.findings)
    timings["total"] = time.perf_counter() - started
    timings["cpu"] = time.process_time()
    return timings


def main() -> None:
    """Run every scenario ``--repeat`` times in fresh interpreters; print the timings.

    Each line gives median timings and what the gate added to extraction, by median
    and by fastest run; the fastest is the better estimate on a shared machine.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--as-of", type=dt.datetime.fromisoformat, help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(run_scenario(args.scenario, args.folder, args.as_of)))
        return

    from connectors.demo import generate_demo

    with tempfile.TemporaryDirectory() as parent:
        demo = generate_demo(Path(parent) / "demo-export", leads=args.leads)
        print(f"demo export of {args.leads} leads")
        results = {name: _repeat(name, demo, args.repeat) for name in SCENARIOS}
    baseline = statistics.median(r["total"] for r in results["extract"])
    fastest = min(r["total"] for r in results["extract"])
    for name, runs in results.items():
        medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        summary = ", ".join(f"{key} {value:.2f}" for key, value in medians.items())
        added = medians["total"] - baseline
        added_min = min(r["total"] for r in runs) - fastest
        print(f"{name:>10}: median {summary}")
        print(f"{'':>12}added: median {added:.2f} s, fastest {added_min:.2f} s")


def _repeat(scenario: str, demo: Any, repeat: int) -> list[dict[str, float]]:
    command = [sys.executable, "-m", "expectations.benchmark", "--scenario", scenario]
    command += ["--folder", str(demo.folder), "--as-of", demo.as_of.isoformat()]
    runs = []
    for _ in range(repeat):
        output = subprocess.run(
            command, check=True, capture_output=True, text=True
        ).stdout
        runs.append(json.loads(output.splitlines()[-1]))
    return runs


if __name__ == "__main__":
    main()
