"""Per-run cache of frames shared by metric families."""

from __future__ import annotations

import datetime as dt
import gc

from metrics import shared
from tests.canonical import at, context, events, tables


def _context(as_of=dt.datetime(2024, 12, 31, tzinfo=dt.UTC)):
    data = tables(stage_events=events(("L1", "mql", at(2024, 1, 1))))
    return context(data, as_of=as_of)


def test_spans_cached_per_run():
    run = _context()
    assert shared.spans(run) is shared.spans(run)


def test_spans_follow_as_of():
    run = _context()
    later = type(run)(run.tables, run.config, at(2025, 6, 1), run.handoffs)
    assert shared.spans(run)["window_end"].to_list() == [at(2024, 12, 31)]
    assert shared.spans(later)["window_end"].to_list() == [at(2025, 6, 1)]


def test_cache_dropped_with_frame():
    run = _context()
    shared.spans(run)
    before = len(shared._CACHE)
    del run
    gc.collect()
    assert len(shared._CACHE) == before - 1
