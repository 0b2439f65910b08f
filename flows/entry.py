"""The ``revalign`` console command.

For ``revalign score`` and ``revalign check data`` it starts the data-quality
gate's validation worker before importing the command-line app, which takes
about 0.4 s: the worker's import of great_expectations then overlaps with that
too. Other commands start no worker.
"""

from __future__ import annotations

import signal
import sys
import threading

GATED_COMMANDS = (("score",), ("check", "data"))


def main() -> None:
    """Run the revalign command line, with the gate's worker started first if needed."""
    _replace_unencodable_output()
    if _runs_gate(sys.argv[1:]):
        from expectations.worker import prestart

        exit_cleanly_on_sigterm()
        prestart()
    from flows.cli import app

    app()


def _runs_gate(arguments: list[str]) -> bool:
    """Return whether the arguments name a command that runs the gate.

    Options before the command (such as ``-v``) are skipped; ``--help`` anywhere
    means no run.
    """
    if "--help" in arguments:
        return False
    words = [word for word in arguments if not word.startswith("-")]
    return any(tuple(words[: len(command)]) == command for command in GATED_COMMANDS)


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into a normal exit with status 143, so cleanup code runs.

    Python's default SIGTERM action ends the process at once, which would leave
    the run's temporary folder behind and the validation worker running until it
    notices. Outside the main thread signal handlers cannot be set; nothing
    changes there.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_exit)


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _replace_unencodable_output() -> None:
    """Print ``?`` for characters the terminal's encoding lacks instead of failing.

    The scorecard uses characters such as "·" and box-drawing lines. Under an
    ASCII locale or ``PYTHONIOENCODING=ascii`` printing them would raise after
    the files were written, and the run would end with status 1.
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
