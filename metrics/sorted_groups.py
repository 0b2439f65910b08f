"""Expressions over a frame sorted by a group key, in place of window functions.

Window functions are slow when there are many small groups: on the 1M-lead
benchmark (``benchmarks/bench_metrics.py``, 774,589 handoffs, polars 2.1 on 2
cores) :func:`metrics.handoffs.handoff_windows` took 1.4 s with
``cum_count().over("lead_id")`` and ``shift(-1).over("lead_id")``, and 0.3 s
with the two helpers below. On a frame already sorted by the key, comparing each
row's key with its neighbour's gives the same values. Null keys form one group,
as they do under ``over``.
"""

from __future__ import annotations

import polars as pl


def next_in_group(column: str, key: str) -> pl.Expr:
    """Return the next row's ``column`` when it has the same ``key``, else null.

    The frame must be sorted by ``key``. This is ``shift(-1).over(key)``.
    """
    same_group = pl.col(key).shift(-1).eq_missing(pl.col(key))
    return pl.when(same_group).then(pl.col(column).shift(-1))


def position_in_group(key: str) -> pl.Expr:
    """Return each row's 0-based position among the rows with its ``key``, as UInt32.

    The frame must be sorted by ``key``. The position is the row number minus
    the row number of the group's first row.
    """
    row = pl.int_range(pl.len(), dtype=pl.UInt32)
    group_starts = (row == 0) | pl.col(key).ne_missing(pl.col(key).shift(1))
    return row - pl.when(group_starts).then(row).forward_fill()
