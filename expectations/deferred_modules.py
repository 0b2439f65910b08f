"""Load chosen modules lazily: imported on first attribute access, not at import.

great_expectations imports ``scipy.stats`` and ``altair`` at module level, for its
distribution tests and KL-divergence charts, which the gate never runs. Loading
both takes about 0.9 s of the 2.5 s that ``import great_expectations`` costs on
the 2-core development machine. :func:`defer` registers a finder that hands those
modules to :class:`importlib.util.LazyLoader`, so the import binds a placeholder
that loads the real module the first time one of its attributes is read.

The finder stays installed for the life of the process: removing an entry from
``sys.meta_path`` while another thread walks it during an import could make that
thread skip a finder. A later ``import altair`` elsewhere gets the real module,
loaded then.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Iterable, Sequence
from types import ModuleType

_lock = threading.Lock()


class _DeferringFinder(importlib.abc.MetaPathFinder):
    """Find the named modules with the other finders, then make their loading lazy."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        for finder in list(sys.meta_path):
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


_finder = _DeferringFinder()


def defer(names: Iterable[str]) -> None:
    """Make the first import of each module in ``names`` lazy.

    A module that is already imported stays as it is. Calling it again adds names.
    """
    with _lock:
        _finder.names.update(names)
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
