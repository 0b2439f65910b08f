"""The ``revalign`` command line.

Exit status: 0 scored; 1 unexpected error; 2 invalid input (config, survey, files,
options); 3 the data-quality gate found a critical problem; 4 a source could not
be reached (retry later).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from connectors.errors import RevalignError
from flows.entry import exit_cleanly_on_sigterm

app = typer.Typer(
    name="revalign",
    help="Score how well sales and marketing work together, from CRM data and a survey.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
check_app = typer.Typer(help="Check a connection, a mapping or the data before scoring.")
survey_app = typer.Typer(help="Work with the self-assessment survey.")
app.add_typer(check_app, name="check")
app.add_typer(survey_app, name="survey")

class _ScorecardConsole(Console):
    """A console that ends quietly with status 0 when its reader closes the pipe.

    rich exits with status 1 then, which the CLI reserves for unexpected errors,
    while a reader such as `head` stopping early is not one.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0)


console = _ScorecardConsole()
errors = Console(stderr=True)


def fail(error: RevalignError) -> typer.Exit:
    """Print ``error`` on standard error and return the exit to raise."""
    errors.print(f"[bold red]error:[/] {error}", highlight=False, markup=True, soft_wrap=True)
    if getattr(error, "retryable", False):
        errors.print("This may succeed if you run the command again later.")
    return typer.Exit(code=getattr(error, "exit_code", 2))


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log each step and API call.")
    ] = False,
) -> None:
    """Score how well sales and marketing work together."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # great_expectations logs every function it registers at INFO; keep -v readable.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


@app.command()
def score(
    demo: Annotated[
        bool, typer.Option("--demo", help="Score the built-in demo company.")
    ] = False,
    source: Annotated[
        str | None,
        typer.Option(
            help="Where the data comes from: salesforce-export (default), salesforce, "
            "hubspot or canonical."
        ),
    ] = None,
    path: Annotated[
        Path | None,
        typer.Option(
            help="Folder to read: a Salesforce export (salesforce-export) or "
            "canonical files (canonical)."
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Org config YAML (see config/example-org.yaml).")
    ] = None,
    survey: Annotated[
        Path | None, typer.Option(help="Survey answers, CSV or YAML (see `revalign survey template`).")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="When the data was extracted, ISO 8601; default: the API "
            "extraction time, or for a folder its newest timestamp."
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Folder for scorecard.json, report.md and handoffs.csv.")
    ] = Path("revalign-out"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the scorecard JSON instead of the table.")
    ] = False,
    state_dir: Annotated[
        Path | None, typer.Option(help="Folder for incremental API state and raw extracts.")
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option(help="Ignore stored watermarks and pull everything again.")
    ] = False,
    history: Annotated[
        Path | None,
        typer.Option(help="History file (DuckDB) to store the run in; default: the config's."),
    ] = None,
) -> None:
    """Score one org and write its scorecard (the main job)."""
    exit_cleanly_on_sigterm()
    from flows.pipeline import (
        GateFailed,
        build_request,
        check_output_folder,
        document_json,
        run_score,
        write_outputs,
    )
    from flows.history_cli import store_failed, store_scored
    from flows.render import render_scorecard

    request = None
    try:
        request = build_request(
            demo=demo, source=source, path=path, config=config, survey=survey,
            as_of=as_of, out=out, state_dir=state_dir, full_refresh=full_refresh,
        )  # fmt: skip
        check_output_folder(out)
        scoring_request = dataclasses.replace(request, out=None)
        if not as_json:
            with console.status("Scoring…"):
                result = run_score(scoring_request)
        else:
            result = run_score(scoring_request)
    except GateFailed as error:
        if error.report is not None:
            errors.print(error.report.render_table())
            _save_gate_failure(error, request, out, as_json=as_json)
        store_failed(request, error, history)
        raise fail(error) from None
    except RevalignError as error:
        if request is not None:
            store_failed(request, error, history)
        raise fail(error) from None
    stored: list[Any] = []
    try:
        result.files = write_outputs(
            result,
            out,
            before_publish=lambda: stored.append(store_scored(result, request, history)),
        )
    except RevalignError as error:
        raise fail(error) from None

    try:
        if as_json:
            typer.echo(document_json(result.document))
            return
        render_scorecard(result.document, console)
        console.print(f"\nWrote {', '.join(str(f) for f in result.files)}", highlight=False)
        if stored and stored[0] is not None:
            console.print(f"Stored the run in {stored[0]}", highlight=False)
    except BrokenPipeError:
        # A reader such as `head` closed the pipe early; the files are written, so
        # the run succeeded. Standard output is pointed at /dev/null so Python's
        # final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _save_gate_failure(
    error: Any, request: Any, out: Path, *, as_json: bool
) -> None:
    """Write the stopped run's gate report into ``out`` and print its path.

    With ``--json`` the same record is also printed on standard output. A failure
    to write the file is printed as a warning, so the gate's error stays the one
    reported.
    """
    from flows.pipeline import write_gate_failure

    try:
        path = write_gate_failure(error, out, source=request.source_name)
    except RevalignError as exc:
        errors.print(f"warning: {exc}", highlight=False, markup=False)
        return
    if as_json:
        typer.echo(path.read_text(encoding="utf-8"), nl=False)
    if (out / "scorecard.json").is_file():
        scorecard_state = "the previous scorecard there was kept"
    else:
        scorecard_state = "there is no earlier scorecard"
    errors.print(
        f"Saved the gate report to {path}; {scorecard_state}.",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


from flows.check_data_cli import check_data_command  # noqa: E402

check_app.command("data")(check_data_command)

from flows.check_salesforce_cli import check_salesforce_command  # noqa: E402

check_app.command("salesforce")(check_salesforce_command)

from flows.check_hubspot_cli import check_hubspot_command  # noqa: E402

check_app.command("hubspot")(check_hubspot_command)

from flows.survey_cli import survey_template_command  # noqa: E402

survey_app.command("template")(survey_template_command)

from flows.audit_cli import audit_command  # noqa: E402

app.command("audit")(audit_command)

from flows.history_cli import history_command  # noqa: E402

app.command("history")(history_command)

from flows.serve_cli import serve_command  # noqa: E402

app.command("serve")(serve_command)

from flows.demo_cli import demo_command  # noqa: E402

app.command("demo")(demo_command)
