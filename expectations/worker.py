"""Validate in a child process that imports great_expectations while extraction runs.

Importing great_expectations costs about 1.5 s of CPU. In the scoring process
that import would compete with extraction for the interpreter lock, and the
interpreter would then spend about 0.6 s tearing the imported modules down at
exit. :class:`ValidationWorker` starts ``python -m expectations.worker`` before
extraction, so the import runs on another core. When the tables are ready, the
gate sends them to the child's standard input in Arrow IPC format, a columnar
format that polars writes and pyarrow reads quickly. The child turns them into
pandas frames as polars would, validates them, pickles the results to its standard
output and exits without the teardown.

The child hides sqlalchemy from great_expectations, which treats it as an
optional extra: the gate validates pandas frames only, and skipping the import
saves about 0.2 s. The child's standard output is kept for the reply; anything
else it prints goes to its standard error.

Start the worker only in a process that has not imported great_expectations:
:func:`expectations.gate.start_validator` makes that choice, and takes the
worker :func:`prestart` started, if any.
"""

from __future__ import annotations

import atexit
import dataclasses
import importlib.abc
import importlib.machinery
import io
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import ModuleType, TracebackType
from typing import Any

from expectations.exchange import CheckResult, GateError, SuiteInput

logger = logging.getLogger(__name__)

HIDDEN_PACKAGES = ("sqlalchemy",)
PARENT_OPTION = "--exit-with-parent"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

_prestarted: ValidationWorker | None = None


class ValidationWorker:
    """A child process that imports great_expectations and validates one request.

    Use it as a context manager, or call :meth:`close`: a worker that never got
    a request is stopped there.
    """

    def __init__(self) -> None:
        # -P keeps the working directory off the child's sys.path, so a folder
        # named "expectations" there cannot shadow this package.
        command = [sys.executable, "-P", "-m", "expectations.worker"]
        if threading.current_thread() is threading.main_thread():
            command += [PARENT_OPTION, str(os.getpid())]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def validate(self, suites: list[SuiteInput]) -> tuple[list[CheckResult], float]:
        """Send ``suites`` to the child and return its results.

        Also returns how long the call waited for the child's import to finish,
        in seconds. A worker takes one request; it has exited when this returns.

        Raises:
            GateError: the child stopped without results or could not evaluate
                a check.
        """
        encoded = [
            dataclasses.replace(suite, frame=_arrow_bytes(suite.frame))
            for suite in suites
        ]
        payload = pickle.dumps(encoded, protocol=pickle.HIGHEST_PROTOCOL)
        sent = time.time()
        output, errors = self._process.communicate(payload)
        if self._process.returncode != 0 or not output:
            raise GateError(_stopped_message(self._process.returncode, errors))
        status, value, ready = pickle.loads(output)
        if status == "error":
            raise GateError(value)
        return value, max(0.0, ready - sent)

    @property
    def returncode(self) -> int | None:
        """The child's exit status, or ``None`` while it runs."""
        return self._process.poll()

    def close(self) -> None:
        """Stop the child if it is still running and release its pipes."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.communicate()

    def __enter__(self) -> ValidationWorker:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def prestart() -> None:
    """Start a worker now for the next :func:`take_prestarted` in this process.

    The ``revalign`` command calls it before importing the rest of revalign, so
    the child's import also overlaps with the parent's. A worker that is never
    taken is stopped when the process exits. Calling it again does nothing.
    """
    global _prestarted
    if _prestarted is not None:
        return
    try:
        _prestarted = ValidationWorker()
    except OSError as error:
        logger.warning("no validation worker started early: %s", error)
        return
    atexit.register(_stop_prestarted)


def take_prestarted() -> ValidationWorker | None:
    """Return the worker :func:`prestart` started, once; ``None`` if there is none."""
    global _prestarted
    worker, _prestarted = _prestarted, None
    return worker


def _stop_prestarted() -> None:
    if _prestarted is not None:
        _prestarted.close()


def _arrow_bytes(frame: Any) -> bytes:
    """Write a polars frame as Arrow IPC with the types polars gives pandas."""
    import polars as pl

    buffer = io.BytesIO()
    frame.write_ipc(buffer, compat_level=pl.CompatLevel.oldest())
    return buffer.getvalue()


def _pandas_frame(data: bytes) -> Any:
    """Read Arrow IPC bytes into pandas as ``polars.DataFrame.to_pandas`` does."""
    import pyarrow as pa
    import pyarrow.ipc

    table = pyarrow.ipc.open_file(pa.BufferReader(data)).read_all()
    return table.to_pandas(date_as_object=False)


def _stopped_message(returncode: int, errors: bytes) -> str:
    """Describe a child that exited without a reply, with its last error line."""
    from connectors.values import redact

    if returncode < 0:
        return (
            f"the great_expectations validation process was stopped by signal "
            f"{-returncode} before returning results; if the machine ran out of "
            f"memory, free some and run again"
        )
    lines = errors.decode("utf-8", "replace").strip().splitlines()
    last = redact(lines[-1]) if lines else "no error output"
    return (
        f"the great_expectations validation process failed with status "
        f"{returncode} before returning results ({last}). To see the whole error, "
        f"run: {sys.executable} -P -m expectations.worker < /dev/null. Settings "
        f"such as PYTHONWARNINGS=error or PYTHONOPTIMIZE=2 stop great_expectations "
        f"from loading; otherwise report the bug"
    )


def _exit_with_parent(arguments: list[str]) -> None:
    """On Linux, have the kernel kill this process as soon as its parent dies.

    Without it, a parent killed by a signal leaves the child importing until it
    reads the end of its input, a second or more later. The parent passes its
    process id only when it started the child from its main thread, because the
    kernel sends the signal when the starting thread ends.
    """
    if sys.platform != "linux" or arguments[:1] != [PARENT_OPTION]:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(arguments[1]):
        os._exit(0)


class _HidingFinder(importlib.abc.MetaPathFinder):
    """Make the packages in :data:`HIDDEN_PACKAGES` fail to import, as if absent."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".", 1)[0] in HIDDEN_PACKAGES:
            msg = f"No module named {fullname!r}"
            raise ModuleNotFoundError(msg, name=fullname)
        return None


def main() -> None:
    """Run as the child: import, read one request, validate, reply, exit.

    The reply is ``(status, value, ready)``: ``("ok", results, t)`` or
    ``("error", message, t)``, where ``t`` is the wall-clock time at which the
    import had finished. A closed standard input without a request means the
    parent no longer needs the child, which then exits quietly.
    """
    _exit_with_parent(sys.argv[1:])
    # A raw descriptor, not a file object, so an import failure leaves no
    # unclosed file to warn about after the real error.
    reply_fd = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.meta_path.insert(0, _HidingFinder())

    from expectations import suites

    ready = time.time()
    try:
        request = pickle.load(sys.stdin.buffer)
    except EOFError:
        os._exit(0)
    decoded = [
        dataclasses.replace(suite, frame=_pandas_frame(suite.frame))
        for suite in request
    ]
    try:
        reply = ("ok", suites.validate(decoded), ready)
    except GateError as error:
        reply = ("error", str(error), ready)
    with os.fdopen(reply_fd, "wb") as reply_channel:
        pickle.dump(reply, reply_channel, protocol=pickle.HIGHEST_PROTOCOL)
    sys.stderr.flush()
    # Skip the interpreter's teardown of the imported modules; nothing is left
    # to flush.
    os._exit(0)


if __name__ == "__main__":
    main()
