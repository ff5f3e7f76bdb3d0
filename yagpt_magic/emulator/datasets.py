"""The emulator's ``DatasetService``: what ``sdk.datasets`` uploads and reads back.

The SDK's ``draft_from_path(...).upload()`` calls ``Create`` (a DRAFT), then
``GetUploadDraftUrl`` and a ``PUT`` to that presigned URL (or, for big files,
``StartMultipartUploadDraft``, one ``PUT`` per part and
``FinishMultipartUploadDraft`` with the parts' ETags), then ``Validate`` and polls the
returned operation with ``OperationService/Get``, then ``Describe``. Reading a dataset
back is ``GetDownloadUrls`` and a ``GET`` per file, each file Parquet, which the SDK's
``Dataset.read()`` parses with pyarrow. ``List``, ``Update``, ``Delete`` and
``ListUploadFormats`` work too.

Emulated faithfully where the public recordings show it (yandex-cloud-ml-sdk
``tests/batch/cassettes``, ``tests/datasets/cassettes``): DRAFT -> READY statuses,
``ValidateDatasetMetadata`` row counts and ``ValidateDatasetResponse``, the
``jsonlines`` upload format, Parquet downloads with a ``request`` column (a list of
``{role, text}``) and, for ``TextToTextGeneration``, a ``response`` string column.

Guessed (no recording): the wording of validation errors and that their
``row_numbers`` count lines from 1; the validation operation is done at its first
poll; ``size_bytes`` is the size of the uploaded JSON Lines. Not emulated:
``ListUploadSchemas``, ``GetPreview``, ``ListTypes``, other task types and formats,
data logging, quotas.
"""

from __future__ import annotations

import io
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import any_pb2, timestamp_pb2
from yandex.cloud.ai.dataset.v1 import dataset_pb2, dataset_service_pb2_grpc
from yandex.cloud.ai.dataset.v1 import dataset_service_pb2 as ds
from yandex.cloud.operation import operation_pb2

from .files import ObjectStore, etag_of
from .server import _Abort, _Call, _make

if TYPE_CHECKING:
    from .server import Emulator, _Servicers

__all__ = ["REQUEST_TASK", "RESULT_TASK", "DatasetRecord", "DatasetStore", "parse_rows"]

#: The batch input format: ``{"request": [{"role": ..., "text": ...}, ...]}`` a line.
REQUEST_TASK = "TextToTextGenerationRequest"
#: A batch result and a tuning dataset: the same plus ``"response": "..."``.
RESULT_TASK = "TextToTextGeneration"
_TASK_TYPES = (REQUEST_TASK, RESULT_TASK)
_FORMATS = ("jsonlines",)
_ROLES = ("system", "user", "assistant")
_Status = dataset_pb2.DatasetInfo.Status

Row = dict[str, Any]


def now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


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

    def __init__(self, emu: Emulator, objects: ObjectStore) -> None:
        self.emu = emu
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
        stamp = now()
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
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Dataset {dataset_id} not found")
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


class DatasetServicer:
    """``yandex.cloud.ai.dataset.v1.DatasetService`` over a DatasetStore."""

    def __init__(self, store: DatasetStore, rpc: _Servicers) -> None:
        self.store = store
        self.rpc = rpc

    def add_to_server(self, server: grpc.Server) -> None:
        names = (
            "Create", "Describe", "List", "Update", "Delete", "Validate",
            "GetUploadDraftUrl", "StartMultipartUploadDraft", "FinishMultipartUploadDraft",
            "GetDownloadUrls", "ListUploadFormats",
        )  # fmt: skip
        servicer = _make(
            dataset_service_pb2_grpc.DatasetServiceServicer,
            **{name: self._handler(name, getattr(self, name.lower())) for name in names},
        )
        dataset_service_pb2_grpc.add_DatasetServiceServicer_to_server(servicer, server)

    def _handler(self, name: str, fn: Callable[[Any], Any]) -> Callable[..., Any]:
        """Wrap ``fn(request)`` with the emulator's recording, auth and faults."""

        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            def run(call: _Call) -> Any:
                options = {"dataset_id": getattr(request, "dataset_id", "")}
                self.rpc._begin(f"Dataset{name}", call, delayed=False, options=options)
                return fn(request)

            return self.rpc._unary(context, run)

        return handle

    # -- the calls ---------------------------------------------------------------

    def create(self, request: ds.CreateDatasetRequest) -> ds.CreateDatasetResponse:
        if not request.folder_id:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "folder_id is required")
        if request.task_type not in _TASK_TYPES:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Unknown task type {request.task_type!r}; the emulator knows "
                f"{', '.join(_TASK_TYPES)}",
            )
        if request.upload_format not in _FORMATS:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Unknown upload format {request.upload_format!r}; use jsonlines",
            )
        record = self.store.create(
            folder_id=request.folder_id,
            task_type=request.task_type,
            name=request.name,
            labels=dict(request.labels),
        )
        info = record.info
        info.description, info.metadata = request.description, request.metadata
        info.allow_data_log = request.allow_data_log
        return ds.CreateDatasetResponse(dataset_id=info.dataset_id, dataset=info)

    def describe(self, request: ds.DescribeDatasetRequest) -> ds.DescribeDatasetResponse:
        return ds.DescribeDatasetResponse(dataset=self.store.get(request.dataset_id).info)

    def list(self, request: ds.ListDatasetsRequest) -> ds.ListDatasetsResponse:
        found = [
            r.info
            for r in self.store.all()
            if r.info.folder_id == request.folder_id
            and (not request.status or r.info.status in request.status)
            and request.dataset_name_pattern in r.info.name
            and (not request.task_type_filter or r.info.task_type in request.task_type_filter)
            and (not request.dataset_ids or r.info.dataset_id in request.dataset_ids)
        ]
        return ds.ListDatasetsResponse(datasets=found)

    def update(self, request: ds.UpdateDatasetRequest) -> ds.UpdateDatasetResponse:
        info = self.store.get(request.dataset_id).info
        for path in request.update_mask.paths:
            if path == "name":
                info.name = request.name
            elif path == "description":
                info.description = request.description
            elif path == "labels":
                info.labels.clear()
                info.labels.update(request.labels)
            else:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"Cannot update {path!r}")
        info.updated_at.CopyFrom(now())
        return ds.UpdateDatasetResponse(dataset=info)

    def delete(self, request: ds.DeleteDatasetRequest) -> ds.DeleteDatasetResponse:
        self.store.remove(request.dataset_id)
        return ds.DeleteDatasetResponse()

    def getuploaddrafturl(
        self, request: ds.GetUploadDraftUrlRequest
    ) -> ds.GetUploadDraftUrlResponse:
        record = self._draft(request.dataset_id)
        record.parts = 0
        url = self.store.objects.presign("PUT", record.draft_key, size=request.size_bytes)
        return ds.GetUploadDraftUrlResponse(dataset_id=request.dataset_id, upload_url=url)

    def startmultipartuploaddraft(
        self, request: ds.StartMultipartUploadDraftRequest
    ) -> ds.StartMultipartUploadDraftResponse:
        record = self._draft(request.dataset_id)
        if request.parts < 1:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "parts must be at least 1")
        record.parts = request.parts
        urls = [
            self.store.objects.presign("PUT", f"{record.draft_key}.part{n}")
            for n in range(1, request.parts + 1)
        ]
        return ds.StartMultipartUploadDraftResponse(
            dataset_id=request.dataset_id, multipart_upload_urls=urls
        )

    def finishmultipartuploaddraft(
        self, request: ds.FinishMultipartUploadDraftRequest
    ) -> ds.FinishMultipartUploadDraftResponse:
        record = self._draft(request.dataset_id)
        numbers = sorted(p.part_num for p in request.uploaded_parts)
        if not record.parts or numbers != list(range(1, record.parts + 1)):
            raise _Abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Expected parts 1..{record.parts}, got {numbers}",
            )
        chunks: list[bytes] = []
        for part in sorted(request.uploaded_parts, key=lambda p: p.part_num):
            data = self.store.objects.get(f"{record.draft_key}.part{part.part_num}")
            if data is None or etag_of(data) != part.etag:
                raise _Abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Part {part.part_num} is missing or its ETag does not match",
                )
            chunks.append(data)
        self.store.objects.put(record.draft_key, b"".join(chunks))
        for n in numbers:
            self.store.objects.delete(f"{record.draft_key}.part{n}")
        return ds.FinishMultipartUploadDraftResponse(dataset_id=request.dataset_id)

    def validate(self, request: ds.ValidateDatasetRequest) -> operation_pb2.Operation:
        record = self._draft(request.dataset_id)
        data = self.store.objects.get(record.draft_key)
        if data is None:
            raise _Abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Dataset {request.dataset_id} has no uploaded data",
            )
        info = record.info
        rows, errors = parse_rows(info.task_type, data)
        if not rows and not errors:
            errors = [dataset_pb2.ValidationError(error="Empty", error_description="No rows")]
        record.rows = [] if errors else rows
        info.status = _Status.INVALID if errors else _Status.READY
        info.rows = len(rows) if not errors else 0
        info.size_bytes = len(data)
        info.validation_error.extend(errors)
        info.updated_at.CopyFrom(now())
        total = len(rows) + sum(len(e.row_numbers) for e in errors)
        metadata = ds.ValidateDatasetMetadata(
            dataset_id=info.dataset_id, valid_rows=len(rows), processed_rows=total, total_rows=total
        )
        response = ds.ValidateDatasetResponse(
            dataset_id=info.dataset_id, is_valid=not errors, errors=errors
        )
        return self._finished_operation(metadata, response)

    def getdownloadurls(self, request: ds.GetDownloadUrlsRequest) -> ds.GetDownloadUrlsResponse:
        record = self.store.get(request.dataset_id)
        if record.info.status != _Status.READY:
            raise _Abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Dataset {request.dataset_id} is not READY",
            )
        if not record.files and record.rows:
            try:
                data = to_parquet(record.rows)
            except ImportError as err:
                raise _Abort(
                    grpc.StatusCode.UNIMPLEMENTED,
                    "The emulator needs pyarrow to serve dataset files: pip install pyarrow",
                ) from err
            size = record.info.size_bytes
            self.store.add_file(record, "0.parquet", data)
            record.info.size_bytes = size
        urls = [
            dataset_pb2.DatasetFileDownloadUrl(key=name, url=self.store.objects.presign("GET", key))
            for name, key in record.files.items()
        ]
        return ds.GetDownloadUrlsResponse(dataset_id=request.dataset_id, download_urls=urls)

    def listuploadformats(
        self, request: ds.ListUploadFormatsRequest
    ) -> ds.ListUploadFormatsResponse:
        return ds.ListUploadFormatsResponse(
            formats=_FORMATS if request.task_type in _TASK_TYPES else ()
        )

    # -- helpers -------------------------------------------------------------------

    def _draft(self, dataset_id: str) -> DatasetRecord:
        record = self.store.get(dataset_id)
        if record.info.status != _Status.DRAFT:
            raise _Abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Dataset {dataset_id} is not a draft (status {_Status.Name(record.info.status)})",
            )
        return record

    def _finished_operation(
        self, metadata: ds.ValidateDatasetMetadata, response: ds.ValidateDatasetResponse
    ) -> operation_pb2.Operation:
        """Register a finished operation for OperationService/Get; return it as started.

        Done at the first poll (the real one took one more): the SDK's ``upload()``
        sleeps ``poll_interval`` (60 s by default) between polls.
        """
        started = operation_pb2.Operation(
            id=self.store.emu._next_operation_id(),
            description="Validate dataset (offline emulator)",
            created_at=now(),
            modified_at=now(),
            created_by="yagpt-magic-emulator",
        )
        finished = operation_pb2.Operation()
        finished.CopyFrom(started)
        finished.done = True
        finished.metadata.CopyFrom(_pack(metadata))
        finished.response.CopyFrom(_pack(response))
        store_operation(self.store.emu, finished)
        return started


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def store_operation(emu: Emulator, operation: operation_pb2.Operation) -> None:
    """Put (or replace) an operation where ``OperationService/Get`` finds it."""
    with emu._lock:
        emu._operations[operation.id] = operation
