"""The emulator's datasets: their records, rows and files, and the row format checks.

:class:`DatasetStore` keeps every folder's datasets for the emulator's lifetime (so a
new client picks one up by id); :mod:`.dataset_service` serves it as
``DatasetService``, :mod:`.batch_service` reads its inputs from it and writes results
to it. Rows are JSON Lines checked by :func:`parse_rows` and served back as Parquet
(:func:`to_parquet`, the shape the real service serves: a ``request`` column of
``{role, text}`` lists and, for ``TextToTextGeneration``, a ``response`` string).
"""

from __future__ import annotations

import io
import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import grpc
from yandex.cloud.ai.dataset.v1 import dataset_pb2

from .object_store import ObjectStore
from .rpc import Abort, timestamp_now

__all__ = [
    "FORMATS",
    "REQUEST_TASK",
    "RESULT_TASK",
    "TASK_TYPES",
    "DatasetRecord",
    "DatasetStore",
    "Row",
    "parse_rows",
    "to_parquet",
    "upload_schema",
]

#: The batch input format: ``{"request": [{"role": ..., "text": ...}, ...]}`` a line.
REQUEST_TASK = "TextToTextGenerationRequest"
#: A batch result and a tuning dataset: the same plus ``"response": "..."``.
RESULT_TASK = "TextToTextGeneration"
#: The task types the emulator's datasets can hold.
TASK_TYPES = (REQUEST_TASK, RESULT_TASK)
#: The upload formats it accepts.
FORMATS = ("jsonlines",)
_ROLES = ("system", "user", "assistant")
_Status = dataset_pb2.DatasetInfo.Status

Row = dict[str, Any]


def parse_rows(task_type: str, data: bytes) -> tuple[list[Row], list[dataset_pb2.ValidationError]]:
    """Check JSON Lines against the task type: the rows, and errors grouped by kind."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        error = dataset_pb2.ValidationError(
            error="Invalid encoding", error_description=f"The file is not UTF-8: {err}"
        )
        return [], [error]
    rows: list[Row] = []
    problems: dict[tuple[str, str], list[int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            problems.setdefault(("Invalid JSON", f"Not a JSON value: {err.msg}"), []).append(number)
            continue
        problem = _row_problem(task_type, row)
        if problem is None:
            rows.append(row)
        else:
            problems.setdefault(("Invalid row", problem), []).append(number)
    errors = [
        dataset_pb2.ValidationError(error=kind, error_description=detail, row_numbers=numbers)
        for (kind, detail), numbers in problems.items()
    ]
    return rows, errors


def _row_problem(task_type: str, row: object) -> str | None:
    if not isinstance(row, dict):
        return "A row must be a JSON object"
    request = row.get("request")
    if not isinstance(request, list) or not request:
        return 'A row needs "request": a non-empty list of messages'
    for message in request:
        if not isinstance(message, dict) or not isinstance(message.get("text"), str):
            return 'Every message needs "role" and "text" strings'
        if message.get("role") not in _ROLES:
            return f"A message role must be one of {', '.join(_ROLES)}, not {message.get('role')!r}"
    if task_type == RESULT_TASK and not isinstance(row.get("response"), str):
        return 'A row needs "response": a string'
    return None


def upload_schema(task_type: str) -> dict[str, Any]:
    """The JSON Schema of one JSON Lines row of ``task_type``: what :func:`parse_rows` checks.

    Free of ``true``/``false``/``null``: the SDK reads a schema with ``ast.literal_eval``.
    """
    message = {
        "type": "object",
        "properties": {
            "role": {"type": "string", "enum": list(_ROLES)},
            "text": {"type": "string"},
        },
        "required": ["role", "text"],
    }
    properties: dict[str, Any] = {
        "request": {"type": "array", "items": message, "minItems": 1},
    }
    if task_type == RESULT_TASK:
        properties["response"] = {"type": "string"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": task_type,
        "type": "object",
        "properties": properties,
        "required": list(properties),
    }


def to_parquet(rows: list[Row]) -> bytes:
    """Rows as one Parquet file, the shape the real service serves (pyarrow needed)."""
    import pyarrow as pa  # type: ignore[import-untyped]  # optional: only reads need it
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    message = pa.struct([("role", pa.string()), ("text", pa.string())])
    columns: dict[str, Any] = {
        "request": pa.array(
            [[{"role": m["role"], "text": m["text"]} for m in r["request"]] for r in rows],
            type=pa.list_(message),
        )
    }
    if rows and all("response" in r for r in rows):
        columns["response"] = pa.array([r["response"] for r in rows], type=pa.string())
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


@dataclass
class DatasetRecord:
    """One dataset: its DatasetInfo plus where its bytes live in the object store."""

    info: dataset_pb2.DatasetInfo
    draft_key: str
    #: Parts announced by StartMultipartUploadDraft (0: a single PUT).
    parts: int = 0
    rows: list[Row] = field(default_factory=list)
    #: Download keys (file names) in order, each mapped to its object key.
    files: dict[str, str] = field(default_factory=dict)


class DatasetStore:
    """Datasets of every folder, kept for the emulator's lifetime (across clients)."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        self._lock = threading.Lock()
        self._datasets: dict[str, DatasetRecord] = {}
        self._ids = itertools.count(1)

    def new_id(self, prefix: str) -> str:
        """Ids shaped like the real ones (3 letters + 17), unique per emulator."""
        return f"{prefix}emu{next(self._ids):014d}"

    def create(
        self,
        *,
        folder_id: str,
        task_type: str,
        name: str = "",
        labels: dict[str, str] | None = None,
        status: int = _Status.DRAFT,
    ) -> DatasetRecord:
        dataset_id = self.new_id("fds")
        stamp = timestamp_now()
        info = dataset_pb2.DatasetInfo(
            dataset_id=dataset_id,
            folder_id=folder_id,
            name=name,
            status=status,  # type: ignore[arg-type]
            task_type=task_type,
            created_at=stamp,
            updated_at=stamp,
            created_by_id="yagpt-magic-emulator",
            created_by="yagpt-magic-emulator",
            labels=labels or {},
        )
        record = DatasetRecord(info=info, draft_key=f"ai-fomo-drafts/{folder_id}/{dataset_id}")
        with self._lock:
            self._datasets[dataset_id] = record
        return record

    def get(self, dataset_id: str) -> DatasetRecord:
        with self._lock:
            record = self._datasets.get(dataset_id)
        if record is None:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"Dataset {dataset_id} not found")
        return record

    def all(self) -> list[DatasetRecord]:
        with self._lock:
            return list(self._datasets.values())

    def remove(self, dataset_id: str) -> None:
        record = self.get(dataset_id)
        with self._lock:
            self._datasets.pop(dataset_id, None)
        self.objects.delete(record.draft_key)
        self.objects.delete(f"ai-fomo-datasets/{record.info.folder_id}/{dataset_id}/")

    def add_file(self, record: DatasetRecord, name: str, data: bytes) -> None:
        """Store one downloadable file of a dataset (a result part, say)."""
        key = f"ai-fomo-datasets/{record.info.folder_id}/{record.info.dataset_id}/{name}"
        self.objects.put(key, data)
        with self._lock:
            record.files[name] = key
            record.info.size_bytes += len(data)
