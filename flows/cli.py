"""The ``revalign`` command line."""

from __future__ import annotations

import typer

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
