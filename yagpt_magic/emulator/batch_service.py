"""Batch inference in the emulator: what ``model.batch.run_deferred(dataset)`` drives.

:class:`BatchServices` plugs three things into an emulator's gRPC server:

- ``DatasetService`` (:mod:`.dataset_service` over :mod:`.datasets`) and the
  presigned-URL storage it hands out (:mod:`.object_store`, an HTTP server on
  127.0.0.1 only), so ``sdk.datasets`` uploads and reads back;
- ``TextGenerationBatchService/Completion``: starts a task on a READY
  ``TextToTextGenerationRequest`` dataset and returns an operation whose metadata is
  ``BatchCompletionMetadata(task_id)``, as the real service does;
- ``BatchInferenceService`` ``Describe``/``List``/``Cancel``/``Delete``, which the SDK
  polls (``BatchTaskOperation.wait``, ``sdk.batch.get(id)``, ``list_info``).

A task runs on the emulator's side and advances one step per ``Describe`` (a poll):
CREATED -> PENDING -> IN_PROGRESS with ``completed_batches`` 0..n of ``total_batches``
(``rows_per_batch`` rows each) -> COMPLETED, so a client sees progress and a wait
takes a few polls. Each row is answered by the same code the interactive
``Completion`` uses (:func:`~.answers.compute`: :func:`~.replies.reply_for`, queued
``reply_with`` scripts, ``max_tokens``), so a batch answer equals the interactive
answer to the same messages and options. Results go to a new READY
``TextToTextGeneration`` dataset named ``Batch inference <task> result``, labelled
``foundation_models_batch_task_id`` and ``foundation_models_source_dataset`` as the
real one is, served as Parquet files ``0.parquet``, ``1.parquet``... (one per batch,
rows in source order, columns ``request`` and ``response``). The operation in the
emulator's operation store follows the task (metadata ``task_status`` and counts;
``done`` with ``BatchCompletionResponse`` at the end). Tasks and datasets live as long
as the emulator, so a new client (or process) picks a task up by id.

A row over the context window fails alone: it is left out of the results and listed
in ``errors.line_errors`` (its row number, from 1); if every row fails the task is
FAILED with ``errors.status``. Cancel works on an IN_PROGRESS task only (as the SDK's own
example notes of the real service); Delete on a finished one.

Models: every interactive one, and the batch-only ones the SDK's recordings and
examples use (:data:`.catalogue.BATCH_MODEL_NAMES`).

Guessed (no recording): error wordings, 1-based line numbers, counts in the operation
metadata (the recording shows the fields unset), step-per-poll timing. Not emulated:
quotas, per-batch errors, ``data_logging_enabled``, expiry. Writing results needs
pyarrow (without it a task ends FAILED and says so).

Every call is recorded in ``Emulator.requests`` and ``Emulator.fail(method=...)`` can
fault it: ``BatchCompletion``, ``BatchDescribe``, ``BatchList``, ``BatchCancel``,
``BatchDelete``, and ``Dataset`` + the DatasetService method (``DatasetCreate``,
``DatasetGetUploadDraftUrl``, ``DatasetValidate``, ``DatasetGetDownloadUrls``...).
``Emulator.batch`` (this class) holds the state; ``rows_per_batch`` sets the step size.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import status_pb2
from yandex.cloud.ai.batch_inference.v1 import batch_inference_service_pb2 as bis
from yandex.cloud.ai.batch_inference.v1 import batch_inference_service_pb2_grpc as bis_grpc
from yandex.cloud.ai.batch_inference.v1 import batch_inference_task_pb2, inference_options_pb2
from yandex.cloud.ai.dataset.v1 import dataset_pb2
from yandex.cloud.ai.foundation_models.v1 import text_common_pb2 as common
from yandex.cloud.ai.foundation_models.v1.text_generation import (
    text_generation_service_pb2 as tg,
)
from yandex.cloud.ai.foundation_models.v1.text_generation import (
    text_generation_service_pb2_grpc as tg_grpc,
)
from yandex.cloud.operation import operation_pb2

from . import catalogue
from .answers import compute
from .dataset_service import DatasetServicer
from .datasets import REQUEST_TASK, RESULT_TASK, DatasetStore, Row, to_parquet
from .gateway import Gateway
from .object_store import ObjectStore
from .rpc import Abort, make_servicer, pack, timestamp_now
from .state import ServiceState
from .tokenizer import count_tokens

__all__ = ["BatchServices"]

_Task = batch_inference_task_pb2.BatchInferenceTask
_Status = _Task.Status
_RUNNING = (_Status.CREATED, _Status.PENDING, _Status.IN_PROGRESS)
_QUEUED = (_Status.CREATED, _Status.PENDING)
_FINISHED = (_Status.COMPLETED, _Status.FAILED, _Status.CANCELED)
_READY = dataset_pb2.DatasetInfo.Status.READY

#: Rows answered per batch step unless ``BatchServices.rows_per_batch`` says otherwise.
DEFAULT_ROWS_PER_BATCH = 2


@dataclass
class _TaskState:
    """One batch task: its proto, its work and the operation that reports it."""

    task: batch_inference_task_pb2.BatchInferenceTask
    request: tg.BatchCompletionRequest
    rows: list[Row]
    rows_per_batch: int
    completed: int = 0
    results: list[Row] = field(default_factory=list)

    @property
    def total(self) -> int:
        return max(1, math.ceil(len(self.rows) / self.rows_per_batch))


class BatchServices:
    """Datasets, storage and batch tasks of one emulator; survives its stop/start.

    ``rows_per_batch`` sets how many rows one progress step answers.
    """

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.state: ServiceState = gateway.state
        self.rows_per_batch = DEFAULT_ROWS_PER_BATCH
        # Storage always binds loopback, whatever host the gRPC port uses.
        self.objects = ObjectStore("127.0.0.1")
        self.datasets = DatasetStore(self.objects)
        self._lock = threading.Lock()
        self._tasks: dict[str, _TaskState] = {}

    # -- lifecycle -------------------------------------------------------------

    def start(self, server: grpc.Server) -> None:
        """Register the services on ``server`` (not started yet) and serve storage."""
        DatasetServicer(self.datasets, self.gateway).add_to_server(server)
        _BatchServicer(self, self.gateway).add_to_server(server)
        self.objects.start()

    def stop(self) -> None:
        """Stop the storage server and join its threads; data stays for a restart."""
        self.objects.stop()

    # -- tasks -------------------------------------------------------------------

    def create_task(self, request: tg.BatchCompletionRequest) -> operation_pb2.Operation:
        if catalogue.lookup_for_batch(request.model_uri) is None:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, catalogue.INVALID_MODEL_URI)
        source = self.datasets.get(request.source_dataset_id).info
        if source.task_type != REQUEST_TASK or source.status != _READY:
            raise Abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Dataset {source.dataset_id} must be a READY {REQUEST_TASK} dataset, "
                f"not a {dataset_pb2.DatasetInfo.Status.Name(source.status)} {source.task_type}",
            )
        folder_id = request.model_uri.split("://", 1)[1].split("/", 1)[0]
        options = inference_options_pb2.BatchCompletionRequest(
            model_uri=request.model_uri,
            source_dataset_id=request.source_dataset_id,
            json_object=request.json_object,
        )
        _convert(request.completion_options, options.completion_options)
        if request.HasField("json_schema"):
            _convert(request.json_schema, options.json_schema)
        task = _Task(
            task_id=self.datasets.new_id("fbi"),
            operation_id=self.state.next_operation_id(),
            folder_id=folder_id,
            model_uri=request.model_uri,
            source_dataset_id=request.source_dataset_id,
            completion_request=options,
            status=_Status.CREATED,
            created_by="yagpt-magic-emulator",
            created_at=timestamp_now(),
        )
        state = _TaskState(
            task=task,
            request=request,
            rows=list(self.datasets.get(request.source_dataset_id).rows),
            rows_per_batch=max(1, self.rows_per_batch),
        )
        with self._lock:
            self._tasks[task.task_id] = state
        started = operation_pb2.Operation()
        started.CopyFrom(self._publish(state))
        # As recorded: the first answer carries the task id and no status yet.
        started.metadata.CopyFrom(pack(tg.BatchCompletionMetadata(task_id=task.task_id)))
        return started

    def get(self, task_id: str) -> _TaskState:
        with self._lock:
            state = self._tasks.get(task_id)
        if state is None:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"Batch task {task_id} not found")
        return state

    def all(self) -> list[_TaskState]:
        with self._lock:
            return list(self._tasks.values())

    def snapshot(self, state: _TaskState) -> batch_inference_task_pb2.BatchInferenceTask:
        """A copy of the task proto, safe from a concurrent poll."""
        with self._lock:
            copy = _Task()
            copy.CopyFrom(state.task)
            return copy

    def advance(self, state: _TaskState) -> None:
        """One poll's worth of progress: a status step or one batch of rows."""
        with self._lock:
            task = state.task
            if task.status == _Status.CREATED:
                task.status = _Status.PENDING
            elif task.status == _Status.PENDING:
                task.status = _Status.IN_PROGRESS
                task.started_at.CopyFrom(timestamp_now())
            elif task.status == _Status.IN_PROGRESS:
                self._run_batch(state)
                state.completed += 1
                if state.completed >= state.total:
                    self._finish(state)
            else:
                return
        self._publish(state)

    def cancel(self, state: _TaskState) -> None:
        with self._lock:
            task = state.task
            if task.status != _Status.IN_PROGRESS:
                raise Abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Only an IN_PROGRESS task can be cancelled; task {task.task_id} is "
                    f"{_Status.Name(task.status)}",
                )
            task.status = _Status.CANCELED
            task.finished_at.CopyFrom(timestamp_now())
        self._publish(state)

    def delete(self, state: _TaskState) -> None:
        task = state.task
        if task.status not in _FINISHED:
            raise Abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Task {task.task_id} is {_Status.Name(task.status)}; only a finished "
                "task can be deleted (cancel it first)",
            )
        with self._lock:
            self._tasks.pop(task.task_id, None)

    # -- inside a lock -----------------------------------------------------------

    def _run_batch(self, state: _TaskState) -> None:
        start = state.completed * state.rows_per_batch
        for line, row in enumerate(state.rows[start : start + state.rows_per_batch], start + 1):
            messages = [(m["role"], m["text"]) for m in row["request"]]
            tokens = count_tokens(messages)
            if tokens > self.state.context_window:
                state.task.errors.line_errors.add(
                    line_number=line,
                    message=f"The number of input tokens must be no more than "
                    f"{self.state.context_window}, got {tokens}",
                )
                continue
            request = tg.CompletionRequest(
                model_uri=state.request.model_uri,
                completion_options=state.request.completion_options,
                messages=[common.Message(role=r, text=t) for r, t in messages],
                json_object=state.request.json_object,
            )
            if state.request.HasField("json_schema"):
                request.json_schema.CopyFrom(state.request.json_schema)
            model = catalogue.lookup_for_batch(request.model_uri)
            reply = compute(request, self.state.take_script(), model)
            state.results.append({"request": row["request"], "response": reply.text})

    def _finish(self, state: _TaskState) -> None:
        task = state.task
        task.finished_at.CopyFrom(timestamp_now())
        if not state.results:
            task.status = _Status.FAILED
            task.errors.status.CopyFrom(
                status_pb2.Status(
                    code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
                    message="Every line of the source dataset failed; see line_errors",
                )
            )
            return
        try:
            parts = [
                to_parquet(state.results[i : i + state.rows_per_batch])
                for i in range(0, len(state.results), state.rows_per_batch)
            ]
        except ImportError:
            task.status = _Status.FAILED
            task.errors.status.CopyFrom(
                status_pb2.Status(
                    code=grpc.StatusCode.UNIMPLEMENTED.value[0],
                    message="The emulator needs pyarrow to write batch results: "
                    "pip install pyarrow",
                )
            )
            return
        result = self.datasets.create(
            folder_id=task.folder_id,
            task_type=RESULT_TASK,
            name=f"Batch inference {task.task_id} result",
            labels={
                "foundation_models_batch_task_id": task.task_id,
                "foundation_models_source_dataset": task.source_dataset_id,
            },
            status=_READY,
        )
        for number, data in enumerate(parts):
            self.datasets.add_file(result, f"{number}.parquet", data)
        result.rows = list(state.results)
        task.result_dataset_id = result.info.dataset_id
        task.status = _Status.COMPLETED

    def _publish(self, state: _TaskState) -> operation_pb2.Operation:
        """Mirror the task into its operation, as OperationService/Get will show it."""
        with self._lock:
            task = state.task
            status = _Status.Name(task.status)
            running = task.status in _RUNNING
            metadata = tg.BatchCompletionMetadata(
                task_id=task.task_id,
                task_status=status,  # type: ignore[arg-type]
                completed_batches=state.completed,
                total_batches=0 if task.status in _QUEUED else state.total,
            )
            operation = operation_pb2.Operation(
                id=task.operation_id,
                description="Batch completion (offline emulator)",
                created_at=task.created_at,
                modified_at=timestamp_now(),
                created_by="yagpt-magic-emulator",
                done=not running,
                metadata=pack(metadata),
            )
            if task.status == _Status.COMPLETED:
                response = tg.BatchCompletionResponse(
                    task_id=task.task_id,
                    task_status=status,  # type: ignore[arg-type]
                    result_dataset_id=task.result_dataset_id,
                )
                operation.response.CopyFrom(pack(response))
            elif not running:
                error = task.errors.status
                if not error.code:
                    error = status_pb2.Status(code=1, message="The batch task was cancelled")
                operation.error.CopyFrom(error)
        self.state.store_operation(operation)
        return operation


def _convert(source: Any, target: Any) -> None:
    """Copy between the twin foundation_models and batch_inference messages by field name."""
    json_format.ParseDict(
        json_format.MessageToDict(source, preserving_proto_field_name=True),
        target,
        ignore_unknown_fields=True,
    )


class _BatchServicer:
    """``TextGenerationBatchService`` and ``BatchInferenceService`` over BatchServices."""

    def __init__(self, services: BatchServices, gateway: Gateway) -> None:
        self.services = services
        self.gateway = gateway

    def add_to_server(self, server: grpc.Server) -> None:
        names = ("task_id", "model_uri", "source_dataset_id")
        completion = make_servicer(
            tg_grpc.TextGenerationBatchServiceServicer,
            Completion=self.gateway.handler("BatchCompletion", self.completion, names),
        )
        tg_grpc.add_TextGenerationBatchServiceServicer_to_server(completion, server)
        tasks = make_servicer(
            bis_grpc.BatchInferenceServiceServicer,
            Describe=self.gateway.handler("BatchDescribe", self.describe, names),
            List=self.gateway.handler("BatchList", self.list, names),
            Cancel=self.gateway.handler("BatchCancel", self.cancel, names),
            Delete=self.gateway.handler("BatchDelete", self.delete, names),
        )
        bis_grpc.add_BatchInferenceServiceServicer_to_server(tasks, server)

    def completion(self, request: tg.BatchCompletionRequest) -> operation_pb2.Operation:
        return self.services.create_task(request)

    def describe(self, request: bis.DescribeBatchInferenceRequest) -> Any:
        state = self.services.get(request.task_id)
        self.services.advance(state)
        return bis.DescribeBatchInferenceResponse(task=self.services.snapshot(state))

    def list(self, request: bis.ListBatchInferencesRequest) -> Any:
        tasks = [
            task
            for task in map(self.services.snapshot, self.services.all())
            if task.folder_id == request.folder_id
            and (not request.status or task.status == request.status)
        ]
        tasks.sort(key=lambda t: (t.created_at.seconds, t.created_at.nanos), reverse=True)
        start = int(request.page_token) if request.page_token.isdigit() else 0
        size = request.page_size or 100
        page = tasks[start : start + size]
        token = str(start + size) if start + size < len(tasks) else ""
        return bis.ListBatchInferencesResponse(tasks=page, next_page_token=token)

    def cancel(self, request: bis.CancelBatchInferenceRequest) -> Any:
        self.services.cancel(self.services.get(request.task_id))
        return bis.CancelBatchInferenceResponse(task_id=request.task_id)

    def delete(self, request: bis.DeleteBatchInferenceRequest) -> Any:
        self.services.delete(self.services.get(request.task_id))
        return bis.DeleteBatchInferenceResponse(task_id=request.task_id)
