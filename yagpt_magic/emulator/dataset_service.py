"""The emulator's ``DatasetService``: what ``sdk.datasets`` uploads and reads back.

The SDK's ``draft_from_path(...).upload()`` calls ``Create`` (a DRAFT), then
``GetUploadDraftUrl`` and a ``PUT`` to that presigned URL (or, for big files,
``StartMultipartUploadDraft``, one ``PUT`` per part and
``FinishMultipartUploadDraft`` with the parts' ETags), then ``Validate`` and polls the
returned operation with ``OperationService/Get``, then ``Describe``. Reading a dataset
back is ``GetDownloadUrls`` and a ``GET`` per file, each file Parquet, which the SDK's
``Dataset.read()`` parses with pyarrow. ``List``, ``Update``, ``Delete``,
``ListUploadFormats`` and ``ListUploadSchemas`` (a JSON Schema of a row, what
validation checks, for the two task types the emulator holds) work too.

Emulated faithfully where the public recordings show it (yandex-cloud-ml-sdk
``tests/batch/cassettes``, ``tests/datasets/cassettes``): DRAFT -> READY statuses,
``ValidateDatasetMetadata`` row counts and ``ValidateDatasetResponse``, the
``jsonlines`` upload format, Parquet downloads with a ``request`` column (a list of
``{role, text}``) and, for ``TextToTextGeneration``, a ``response`` string column.

Guessed (no recording): the wording of validation errors and that their
``row_numbers`` count lines from 1; the validation operation is done at its first
poll; ``size_bytes`` is the size of the uploaded JSON Lines; the upload schemas' text
(nothing records ``ListUploadSchemas``: ours is what validation checks, written without
``true``/``false``/``null`` since the SDK parses it with ``ast.literal_eval``). Not
emulated: ``GetPreview``, ``ListTypes``, other task types and formats, data logging,
quotas.
"""

from __future__ import annotations

import json

import grpc
from yandex.cloud.ai.dataset.v1 import dataset_pb2, dataset_service_pb2_grpc
from yandex.cloud.ai.dataset.v1 import dataset_service_pb2 as ds
from yandex.cloud.operation import operation_pb2

from .datasets import (
    FORMATS,
    TASK_TYPES,
    DatasetRecord,
    DatasetStore,
    parse_rows,
    to_parquet,
    upload_schema,
)
from .gateway import Gateway
from .object_store import etag_of
from .rpc import Abort, make_servicer, pack, timestamp_now
from .state import ServiceState

__all__ = ["DatasetServicer"]

_Status = dataset_pb2.DatasetInfo.Status


class DatasetServicer:
    """``yandex.cloud.ai.dataset.v1.DatasetService`` over a DatasetStore."""

    def __init__(self, store: DatasetStore, gateway: Gateway) -> None:
        self.store = store
        self.gateway = gateway
        self.state: ServiceState = gateway.state

    def add_to_server(self, server: grpc.Server) -> None:
        names = (
            "Create", "Describe", "List", "Update", "Delete", "Validate",
            "GetUploadDraftUrl", "StartMultipartUploadDraft", "FinishMultipartUploadDraft",
            "GetDownloadUrls", "ListUploadFormats", "ListUploadSchemas",
        )  # fmt: skip
        servicer = make_servicer(
            dataset_service_pb2_grpc.DatasetServiceServicer,
            **{
                name: self.gateway.handler(
                    f"Dataset{name}", getattr(self, name.lower()), ("dataset_id",)
                )
                for name in names
            },
        )
        dataset_service_pb2_grpc.add_DatasetServiceServicer_to_server(servicer, server)

    # -- the calls ---------------------------------------------------------------

    def create(self, request: ds.CreateDatasetRequest) -> ds.CreateDatasetResponse:
        if not request.folder_id:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "folder_id is required")
        if request.task_type not in TASK_TYPES:
            raise Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Unknown task type {request.task_type!r}; the emulator knows "
                f"{', '.join(TASK_TYPES)}",
            )
        if request.upload_format not in FORMATS:
            raise Abort(
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
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"Cannot update {path!r}")
        info.updated_at.CopyFrom(timestamp_now())
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
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "parts must be at least 1")
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
            raise Abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Expected parts 1..{record.parts}, got {numbers}",
            )
        chunks: list[bytes] = []
        for part in sorted(request.uploaded_parts, key=lambda p: p.part_num):
            data = self.store.objects.get(f"{record.draft_key}.part{part.part_num}")
            if data is None or etag_of(data) != part.etag:
                raise Abort(
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
            raise Abort(
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
        info.updated_at.CopyFrom(timestamp_now())
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
            raise Abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Dataset {request.dataset_id} is not READY",
            )
        if not record.files and record.rows:
            try:
                data = to_parquet(record.rows)
            except ImportError as err:
                raise Abort(
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
            formats=FORMATS if request.task_type in TASK_TYPES else ()
        )

    def listuploadschemas(
        self, request: ds.ListUploadSchemasRequest
    ) -> ds.ListUploadSchemasResponse:
        """One schema a format for a task type the emulator's datasets hold, else none."""
        if request.task_type not in TASK_TYPES:
            return ds.ListUploadSchemasResponse()
        schema = json.dumps(upload_schema(request.task_type))
        return ds.ListUploadSchemasResponse(
            schemas=[
                dataset_pb2.DatasetUploadSchema(
                    task_type=request.task_type, upload_format=upload_format, schema=schema
                )
                for upload_format in FORMATS
            ]
        )

    # -- helpers -------------------------------------------------------------------

    def _draft(self, dataset_id: str) -> DatasetRecord:
        record = self.store.get(dataset_id)
        if record.info.status != _Status.DRAFT:
            raise Abort(
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
            id=self.state.next_operation_id(),
            description="Validate dataset (offline emulator)",
            created_at=timestamp_now(),
            modified_at=timestamp_now(),
            created_by="yagpt-magic-emulator",
        )
        finished = operation_pb2.Operation()
        finished.CopyFrom(started)
        finished.done = True
        finished.metadata.CopyFrom(pack(metadata))
        finished.response.CopyFrom(pack(response))
        self.state.store_operation(finished)
        return started
