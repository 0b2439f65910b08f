"""Per-run cache of frames shared by metric families, and sorted-group helpers."""

from __future__ import annotations

import datetime as dt
import gc

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from metrics import shared
from metrics.sorted_groups import next_in_group, position_in_group
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


GROUPED = pl.DataFrame(
    {
        "key": [None, None, "a", "a", "a", "b", "c", "c"],
        "value": [1, 2, 3, 4, 5, 6, 7, 8],
    }
)


def test_position_in_group_counts_from_zero():
    positions = GROUPED.select(position=position_in_group("key"))["position"]
    assert positions.to_list() == [0, 1, 0, 1, 2, 0, 0, 1]
    assert positions.dtype == pl.UInt32


def test_next_in_group_null_keys():
    following = GROUPED.select(following=next_in_group("value", "key"))["following"]
    assert following.to_list() == [2, None, 4, 5, None, None, 8, None]


def test_position_in_group_empty_frame():
    empty = GROUPED.clear().select(position=position_in_group("key"))
    assert empty.height == 0


@settings(max_examples=60, deadline=None)
@given(keys=st.lists(st.sampled_from(["a", "b", "c", None]), max_size=30))
def test_sorted_group_helpers_match_window_functions(keys):
    frame = pl.DataFrame({"key": keys, "value": range(len(keys))}, strict=False)
    frame = frame.with_columns(pl.col("key").cast(pl.String)).sort("key")
    fast = frame.select(
        position=position_in_group("key") + 1, following=next_in_group("value", "key")
    )
    window = frame.select(
        position=pl.col("value").cum_count().over("key"),
        following=pl.col("value").shift(-1).over("key"),
    )
    assert_frame_equal(fast, window, check_dtypes=False)
