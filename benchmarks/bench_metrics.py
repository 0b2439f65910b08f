"""Benchmark the metric stage on synthetic canonical Parquet files.

Usage, from the repository root (each step is its own process, so each peak
memory figure belongs to that step alone)::

    .venv/bin/python -m benchmarks.bench_metrics generate --leads 1000000 --out DIR
    .venv/bin/python -m benchmarks.bench_metrics generate --from-demo --out DIR
    .venv/bin/python -m benchmarks.bench_metrics measure DIR
    .venv/bin/python -m benchmarks.bench_metrics duckdb DIR

``generate --from-demo`` writes the demo company (``connectors.demo``) as a
Salesforce export, reads it through the export reader and keeps the canonical
tables as Parquet, with the demo's config and as-of time beside them in
``benchmark.json``. ``measure`` reads the files with the canonical-files
connector and runs ``metrics.measure.measure`` (every registered family), timing
the read, the per-handoff frame and each family. ``duckdb`` computes the handoff
metrics in plain DuckDB SQL over the same files for comparison. Both print JSON
with the wall times in seconds and the process's peak resident memory in MiB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

from benchmarks.synthetic import AS_OF, BENCHMARK_CONFIG, generate, write
from config.models import OrgConfig, load_config

SETTINGS_FILE = "benchmark.json"


def _peak_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine() -> dict[str, Any]:
    """Return the core count, memory and CPU model of this machine."""
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(pages / 2**30, 1),
        "cpu": model,
        "python": platform.python_version(),
    }


def run_generate(leads: int, out: Path, seed: int) -> dict[str, Any]:
    """Generate the synthetic tables and write them as Parquet."""
    started = time.perf_counter()
    tables = generate(leads, seed=seed)
    write(tables, out)
    rows = {name: frame.height for name, frame in tables.items()}
    return {"seconds": round(time.perf_counter() - started, 2), "rows": rows}


def run_generate_demo(leads: int, out: Path, seed: int) -> dict[str, Any]:
    """Write the demo company as an export, read it, keep the canonical Parquet."""
    import tempfile

    from connectors.canonical_files import write_canonical
    from connectors.demo import DEMO_AS_OF, DEMO_CONFIG, generate_demo
    from connectors.salesforce_export import read_export

    with tempfile.TemporaryDirectory(prefix="revalign-demo-") as export:
        started = time.perf_counter()
        generate_demo(Path(export), leads=leads, seed=seed)
        generated = time.perf_counter()
        tables = read_export(Path(export), load_config(DEMO_CONFIG))
        read = time.perf_counter()
    write_canonical(tables, out)
    settings = {"config": str(DEMO_CONFIG), "as_of": DEMO_AS_OF.isoformat()}
    (out / SETTINGS_FILE).write_text(json.dumps(settings), encoding="utf-8")
    return {
        "seconds_generate_export": round(generated - started, 2),
        "seconds_read_export": round(read - generated, 2),
        "rows": {name: frame.height for name, frame in tables.tables.items()},
    }


def settings_for(folder: Path) -> tuple[OrgConfig, dt.datetime]:
    """Return the org config and as-of time the folder's data was made for."""
    path = folder / SETTINGS_FILE
    if not path.is_file():
        return BENCHMARK_CONFIG, AS_OF
    settings = json.loads(path.read_text(encoding="utf-8"))
    as_of = dt.datetime.fromisoformat(settings["as_of"])
    return load_config(Path(settings["config"])), as_of


def run_measure(folder: Path) -> dict[str, Any]:
    """Read the folder and run every metric family, timing each step."""
    import polars as pl

    from connectors.canonical_files import read_canonical
    from metrics import measure as measure_module
    from metrics.handoffs import build_handoffs

    config, as_of = settings_for(folder)
    timings: dict[str, float] = {}
    cpu_timings: dict[str, float] = {}
    cpu_started = _cpu_seconds()
    started = time.perf_counter()

    def timed(name: str, step_started: float, cpu_step_started: float) -> None:
        timings[name] = time.perf_counter() - step_started
        cpu_timings[name] = _cpu_seconds() - cpu_step_started

    tables = read_canonical(folder, config)
    timed("read", started, cpu_started)
    step, cpu_step = time.perf_counter(), _cpu_seconds()
    handoffs = build_handoffs(tables, config, as_of)
    timed("build_handoffs", step, cpu_step)
    context = measure_module.MeasureContext(tables, config, as_of, handoffs)
    metrics = {}
    for family in measure_module.FAMILIES:
        step, cpu_step = time.perf_counter(), _cpu_seconds()
        metrics.update(family.compute(context))
        timed(getattr(family.compute, "__name__", repr(family)), step, cpu_step)
    total = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_started
    values = {key: metric.value for key, metric in sorted(metrics.items())}
    return {
        "seconds_total": round(total, 2),
        "cpu_seconds": round(cpu, 2),
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "cpu_seconds_by_step": {k: round(v, 2) for k, v in cpu_timings.items()},
        "peak_mib": round(_peak_mib()),
        "handoffs": handoffs.height,
        "polars_threads": pl.thread_pool_size(),
        "values": values,
    }


def run_duckdb(folder: Path) -> dict[str, Any]:
    """Compute the handoff metrics in DuckDB SQL over the same Parquet files."""
    from benchmarks.duckdb_handoffs import handoff_metrics_sql

    config, as_of = settings_for(folder)
    cpu_started = _cpu_seconds()
    started = time.perf_counter()
    values = handoff_metrics_sql(folder, config, as_of)
    return {
        "seconds_total": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(_cpu_seconds() - cpu_started, 2),
        "peak_mib": round(_peak_mib()),
        "values": values,
    }


def main() -> None:
    """Parse the command line and run one benchmark step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    gen = steps.add_parser("generate", help="write synthetic canonical Parquet files")
    gen.add_argument("--leads", type=int, default=1_000_000, help="number of leads")
    gen.add_argument("--seed", type=int, default=7, help="random seed")
    gen.add_argument("--out", type=Path, required=True, help="output folder")
    gen.add_argument(
        "--from-demo",
        action="store_true",
        help="generate the demo company and read it through the export reader",
    )
    for name in ("measure", "duckdb"):
        step = steps.add_parser(name, help=f"time the {name} step over a folder")
        step.add_argument("folder", type=Path, help="folder of canonical Parquet files")
    args = parser.parse_args()

    if args.step == "generate" and args.from_demo:
        result = run_generate_demo(args.leads, args.out, args.seed)
    elif args.step == "generate":
        result = run_generate(args.leads, args.out, args.seed)
    elif args.step == "measure":
        result = run_measure(args.folder)
    else:
        result = run_duckdb(args.folder)
    print(json.dumps({"step": args.step, "machine": machine(), **result}, indent=2))


if __name__ == "__main__":
    main()
