"""Measure what the data-quality gate adds to a run.

Run it as ``python -m expectations.benchmark [--leads N] [--repeat N]``.

Each scenario runs in a fresh interpreter, so great_expectations is imported
cold, as in a real ``revalign`` run, and the time is the whole process's, from
start to exit, as a user waits for it:

- ``no-gate``: the run without the gate, the baseline;
- ``worker``: the gate as ``revalign score`` runs it: the validation worker is
  started first (:func:`expectations.worker.prestart`), then the command-line
  app is imported and the run starts;
- ``in-process``: the gate in the scoring process, imported after extraction.

Without ``--leads`` the run is the demo run, ``run_score(ScoreRequest(demo=True))``.
With ``--leads N`` a demo export of N leads is written once beforehand and the
run reads it and gates it, without measuring or scoring.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.models import OrgConfig

SCENARIOS = ("no-gate", "worker", "in-process")


def run_scenario(scenario: str, folder: Path | None, as_of: dt.datetime | None) -> None:
    """Run one scenario in this process and print its step timings as JSON.

    Every scenario imports the command-line app first, as ``revalign`` does.
    """
    if scenario == "worker":
        from expectations.worker import prestart

        prestart()
    import flows.cli  # noqa: F401
    from expectations.gate import run_gate, start_validator

    timings: dict[str, float] = {}
    if folder is None:
        from flows.pipeline import ScoreRequest, run_score

        request = ScoreRequest(demo=True, run_gate=scenario == "worker")
        result = run_score(request)
        timings.update(result.timings)
        if scenario == "in-process":
            started = time.perf_counter()
            config = _demo_config()
            run_gate(result.tables, config, as_of=_document_as_of(result.document))
            timings["gate"] = time.perf_counter() - started
    else:
        from connectors.salesforce_export import read_export

        config = _demo_config()
        with (
            start_validator()
            if scenario == "worker"
            else contextlib.nullcontext() as validator
        ):
            started = time.perf_counter()
            tables = read_export(folder, config)
            timings["extract"] = time.perf_counter() - started
            if scenario != "no-gate":
                started = time.perf_counter()
                run_gate(tables, config, as_of=as_of, validator=validator)
                timings["gate"] = time.perf_counter() - started
    print(json.dumps({key: round(value, 3) for key, value in timings.items()}))


def main() -> None:
    """Run every scenario ``--repeat`` times in fresh interpreters; print the timings.

    Each scenario's line gives the median and fastest whole-process time, and
    what the gate added to the ``no-gate`` baseline by each. On a shared machine
    the fastest runs are the better estimate.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--as-of", type=dt.datetime.fromisoformat, help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.scenario:
        run_scenario(args.scenario, args.folder, args.as_of)
        return

    with tempfile.TemporaryDirectory() as parent:
        extra: list[str] = []
        if args.leads is not None:
            from connectors.demo import generate_demo

            demo = generate_demo(Path(parent) / "demo-export", leads=args.leads)
            extra = ["--folder", str(demo.folder), "--as-of", demo.as_of.isoformat()]
            print(f"demo export of {args.leads} leads, read and gated")
        else:
            print("demo run: revalign score --demo without printing")
        # Interleave the scenarios so that a change in the machine's load
        # affects each of them alike.
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in SCENARIOS}
        for _ in range(args.repeat):
            for name in SCENARIOS:
                runs[name].append(_run(name, extra))
    base = [r["wall"] for r in runs["no-gate"]]
    for name, results in runs.items():
        walls = [r["wall"] for r in results]
        steps = {k: statistics.median(r[k] for r in results) for k in results[0]}
        detail = ", ".join(f"{k} {v:.2f}" for k, v in steps.items() if k != "wall")
        print(
            f"{name:>10}: wall median {statistics.median(walls):.2f} s, "
            f"fastest {min(walls):.2f} s; added median "
            f"{statistics.median(walls) - statistics.median(base):.2f} s, fastest "
            f"{min(walls) - min(base):.2f} s; steps (median) {detail}"
        )


def _run(scenario: str, extra: list[str]) -> dict[str, float]:
    command = [sys.executable, "-m", "expectations.benchmark", "--scenario", scenario]
    started = time.perf_counter()
    output = subprocess.run(
        [*command, *extra], check=True, capture_output=True, text=True
    ).stdout
    wall = time.perf_counter() - started
    return {"wall": wall, **json.loads(output.splitlines()[-1])}


def _demo_config() -> OrgConfig:
    from config.models import load_config
    from flows.pipeline import DEMO_CONFIG

    return load_config(DEMO_CONFIG)


def _document_as_of(document: dict[str, object]) -> dt.datetime:
    return dt.datetime.fromisoformat(str(document["as_of"]))


if __name__ == "__main__":
    main()
