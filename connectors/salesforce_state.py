"""Stored state of incremental Salesforce extraction.

A state folder contains ``state.json`` (per object: the fields read, the watermark
field and its value) and one snapshot folder of Parquet files, one per object,
with the merged raw rows. A new snapshot is written beside the old one and
``state.json`` is then replaced in one ``os.replace``, so a run that fails at
any point leaves the previous state readable and unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from connectors.errors import RevalignError

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
STATE_VERSION = 1


class SalesforceStateError(RevalignError):
    """Raised when the stored extraction state cannot be read."""


@dataclass(frozen=True)
class ObjectState:
    """Stored state of one object: its fields and how far it has been read."""

    fields: tuple[str, ...]
    watermark_field: str
    watermark: dt.datetime | None
    rows: int


@dataclass
class StoredState:
    """The state of the last successful extraction; empty before the first one."""

    snapshot: str | None = None
    extracted_at: dt.datetime | None = None
    objects: dict[str, ObjectState] = field(default_factory=dict)


class StateStore:
    """Reads and atomically replaces the state in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def load(self) -> StoredState:
        """Return the stored state, or an empty one when there is none."""
        path = self.folder / STATE_FILE
        if not path.is_file():
            return StoredState()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return _state_from_json(data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            msg = (
                f"stored Salesforce state {str(path)!r} is unreadable ({exc}). Run "
                f"again with a full refresh to rebuild it"
            )
            raise SalesforceStateError(msg) from None

    def read_frame(self, state: StoredState, obj: str) -> pl.DataFrame | None:
        """Return the stored raw rows of ``obj``, or ``None`` when there are none."""
        if state.snapshot is None or obj not in state.objects:
            return None
        path = self.folder / state.snapshot / f"{obj}.parquet"
        try:
            return pl.read_parquet(path)
        except (OSError, pl.exceptions.ComputeError) as exc:
            msg = (
                f"stored rows {str(path)!r} are unreadable ({exc}); run a full refresh"
            )
            raise SalesforceStateError(msg) from None

    def save(
        self,
        objects: dict[str, ObjectState],
        frames: dict[str, pl.DataFrame],
        extracted_at: dt.datetime,
    ) -> None:
        """Write a new snapshot, point ``state.json`` at it and remove older ones."""
        self.folder.mkdir(parents=True, exist_ok=True)
        snapshot = f"snapshot-{extracted_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        staging = self.folder / f"{snapshot}.partial"
        staging.mkdir()
        for obj, frame in frames.items():
            frame.write_parquet(staging / f"{obj}.parquet")
        staging.rename(self.folder / snapshot)

        state = StoredState(snapshot, extracted_at, objects)
        partial = self.folder / f"{STATE_FILE}.partial"
        partial.write_text(
            json.dumps(_state_to_json(state), indent=2), encoding="utf-8"
        )
        os.replace(partial, self.folder / STATE_FILE)
        self._remove_other_snapshots(snapshot)
        logger.info("stored Salesforce state %s in %s", snapshot, self.folder)

    def _remove_other_snapshots(self, keep: str) -> None:
        for path in self.folder.glob("snapshot-*"):
            if path.is_dir() and path.name != keep:
                shutil.rmtree(path, ignore_errors=True)


def _state_to_json(state: StoredState) -> dict:
    return {
        "version": STATE_VERSION,
        "snapshot": state.snapshot,
        "extracted_at": state.extracted_at.isoformat() if state.extracted_at else None,
        "objects": {
            name: {
                "fields": list(item.fields),
                "watermark_field": item.watermark_field,
                "watermark": item.watermark.isoformat() if item.watermark else None,
                "rows": item.rows,
            }
            for name, item in state.objects.items()
        },
    }


def _state_from_json(data: dict) -> StoredState:
    if data.get("version") != STATE_VERSION:
        raise ValueError(
            f"state version {data.get('version')!r}, expected {STATE_VERSION}"
        )
    objects = {
        name: ObjectState(
            fields=tuple(item["fields"]),
            watermark_field=item["watermark_field"],
            watermark=_when(item["watermark"]),
            rows=int(item["rows"]),
        )
        for name, item in data["objects"].items()
    }
    return StoredState(data["snapshot"], _when(data["extracted_at"]), objects)


def _when(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None
