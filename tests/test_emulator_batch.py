"""Datasets and batch inference in the emulator, through the unmodified SDK (gRPC + HTTP)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from yandex.cloud.ai.foundation_models.v1.text_generation import (
    text_generation_service_pb2 as tg,
)
from yandex.cloud.operation import operation_service_pb2, operation_service_pb2_grpc

from yagpt_magic.emulator import Emulator

from .conftest import TEST_API_KEY

pytest.importorskip("pyarrow")  # the SDK's Dataset.read() parses Parquet with it

SdkFor = Callable[..., Any]

ROWS = [
    [{"role": "user", "text": "What is a monad?"}],
    [
        {"role": "system", "text": "You are terse."},
        {"role": "user", "text": "Name a prime."},
    ],
    [
        {"role": "user", "text": "Hi"},
        {"role": "assistant", "text": "Hello!"},
        {"role": "user", "text": "Tell me a joke\nabout gRPC."},
    ],
    [{"role": "user", "text": "Привет, как дела?"}],
]
REQUEST_TASK = "TextToTextGenerationRequest"
FAST = 0.01  # poll_interval: the emulator advances per poll, not per second


def _jsonl(path: Path, rows: list[list[dict[str, str]]]) -> Path:
    """The batch input file: one TextToTextGenerationRequest per line."""
    path.write_text(
        "".join(json.dumps({"request": r}, ensure_ascii=False) + "\n" for r in rows),
        encoding="utf-8",
    )
    return path


def _upload(sdk: Any, path: Path, **kwargs: Any) -> Any:
    draft = sdk.datasets.draft_from_path(
        path, task_type=REQUEST_TASK, upload_format="jsonlines", name=path.stem
    )
    return draft.upload(poll_interval=FAST, **kwargs)


def _model(sdk: Any, **config: Any) -> Any:
    return sdk.models.completions("yandexgpt", model_version="latest").configure(
        temperature=0.3, **config
    )


def _operation(emu: Emulator, operation_id: str) -> Any:
    """OperationService/Get straight over gRPC: what the SDK's task operation wraps."""
    with grpc.insecure_channel(emu.address) as channel:
        stub = operation_service_pb2_grpc.OperationServiceStub(channel)
        return stub.Get(
            operation_service_pb2.GetOperationRequest(operation_id=operation_id),
            metadata=[("authorization", f"Api-Key {TEST_API_KEY}")],
        )


# -- the whole flow ------------------------------------------------------------------


def test_batch_answers_equal_interactive_answers_in_row_order(
    emulator: Emulator, sdk_for: SdkFor, tmp_path: Path
) -> None:
    sdk = sdk_for(emulator)
    dataset = _upload(sdk, _jsonl(tmp_path / "prompts.jsonl", ROWS))
    assert (dataset.status.name, dataset.rows, dataset.task_type) == ("READY", 4, REQUEST_TASK)

    model = _model(sdk, max_tokens=40)
    task = model.batch.run_deferred(dataset)

    # Progress comes one step per poll: queued, then batches of 2 rows, then done.
    seen = []
    for _ in range(4):
        info = task.get_task_info()
        metadata = tg.BatchCompletionMetadata()
        _operation(emulator, info.operation_id).metadata.Unpack(metadata)
        seen.append((info.status.name, metadata.completed_batches, metadata.total_batches))
    assert seen == [
        ("PENDING", 0, 0),
        ("IN_PROGRESS", 0, 2),
        ("IN_PROGRESS", 1, 2),
        ("COMPLETED", 2, 2),
    ]
    done = _operation(emulator, info.operation_id)
    response = tg.BatchCompletionResponse()
    done.response.Unpack(response)
    assert done.done and response.result_dataset_id == info.result_dataset_id

    result = task.wait(poll_interval=FAST)
    assert result.id == info.result_dataset_id
    assert result.task_type == "TextToTextGeneration"
    assert result.name == f"Batch inference {task.id} result"
    assert result.labels == {
        "foundation_models_batch_task_id": task.id,
        "foundation_models_source_dataset": dataset.id,
    }
    records = list(result.read())
    assert [r["request"] for r in records] == ROWS
    for record, row in zip(records, ROWS, strict=True):
        assert record["response"] == model.run(row).alternatives[0].text
    assert sum(1 for r in emulator.requests if r.method == "Completion") == len(ROWS)


def test_a_fresh_client_picks_the_task_up_by_id_even_after_a_restart(
    emulator: Emulator, sdk_for: SdkFor, tmp_path: Path
) -> None:
    first = sdk_for(emulator)
    dataset = _upload(first, _jsonl(tmp_path / "rows.jsonl", ROWS[:3]))
    task_id = _model(first).batch.run_deferred(dataset).id
    del first

    emulator.stop()  # like a kernel restart, but harder: the service itself restarts
    emulator.start()

    fresh = sdk_for(emulator)
    task = fresh.batch.get(task_id)
    assert task.get_task_info().source_dataset_id == dataset.id
    result = task.wait(poll_interval=FAST)
    texts = [r["response"] for r in result.read()]
    assert texts == [_model(fresh).run(row).alternatives[0].text for row in ROWS[:3]]


def test_another_process_fetches_the_results_by_task_id(
    emulator: Emulator, sdk_for: SdkFor, tmp_path: Path
) -> None:
    """What ``%chat batch fetch ID`` will do after a kernel restart: only the id survives."""
    sdk = sdk_for(emulator)
    task = _model(sdk).batch.run_deferred(_upload(sdk, _jsonl(tmp_path / "p.jsonl", ROWS[:2])))
    script = f"""
import json, warnings
warnings.simplefilter("ignore")
from yandex_cloud_ml_sdk import YCloudML
sdk = YCloudML(folder_id="b1gtest", auth={TEST_API_KEY!r}, endpoint={emulator.address!r},
               verify=False)
result = sdk.batch.get({task.id!r}).wait(poll_interval={FAST})
print(json.dumps([r["response"] for r in result.read()]))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    expected = [_model(sdk).run(row).alternatives[0].text for row in ROWS[:2]]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected


def test_the_async_sdk_runs_the_same_flow(
    emulator: Emulator, sdk_for: SdkFor, tmp_path: Path
) -> None:
    """``%%chat --map`` runs on the SDK's async API; the batch path must too."""
    from yandex_cloud_ml_sdk import AsyncYCloudML

    sdk = sdk_for(emulator)
    path = _jsonl(tmp_path / "a.jsonl", ROWS[:3])

    async def run() -> list[dict[str, Any]]:
        client = AsyncYCloudML(
            folder_id="b1gtest", auth=TEST_API_KEY, endpoint=emulator.address, verify=False
        )
        draft = client.datasets.draft_from_path(
            path, task_type=REQUEST_TASK, upload_format="jsonlines"
        )
        dataset = await draft.upload(poll_interval=FAST)
        model = client.models.completions("yandexgpt").configure(temperature=0.3)
        task = await model.batch.run_deferred(dataset)
        result = await task.wait(poll_interval=FAST)
        return [record async for record in result.read()]

    # Its own thread, as a notebook's would be: the main thread may already run a loop
    # (Playwright's sync API does, when the browser tests ran first).
    with ThreadPoolExecutor(1) as pool:
        records = pool.submit(asyncio.run, run()).result()
    assert [r["response"] for r in records] == [
        _model(sdk).run(row).alternatives[0].text for row in ROWS[:3]
    ]


def test_listing_tasks_and_datasets(emulator: Emulator, sdk_for: SdkFor, tmp_path: Path) -> None:
    sdk = sdk_for(emulator)
    dataset = _upload(sdk, _jsonl(tmp_path / "listed.jsonl", ROWS[:1]))
    done = _model(sdk).batch.run_deferred(dataset)
    done.wait(poll_interval=FAST)
    running = _model(sdk).batch.run_deferred(dataset)

    infos = {i.task_id: i for i in sdk.batch.list_info()}
    assert infos[done.id].status.name == "COMPLETED"
    assert infos[running.id].status.name == "CREATED"
    assert [t.id for t in sdk.batch.list_operations(status="created")] == [running.id]
    assert [t.task_id for t in sdk.batch.list_info(page_size=1)] == [running.id, done.id]

    names = {d.name for d in sdk.datasets.list(status="READY")}
    assert names == {"listed", f"Batch inference {done.id} result"}
    assert [d.id for d in sdk.datasets.list(task_type=REQUEST_TASK)] == [dataset.id]
    assert [d.id for d in sdk.datasets.list(name_pattern="list")] == [dataset.id]


# -- failures ---------------------------------------------------------------------------


def test_invalid_rows_fail_validation_with_their_line_numbers(
    emulator: Emulator, sdk_for: SdkFor, tmp_path: Path
) -> None:
    from yandex_cloud_ml_sdk.exceptions import DatasetValidationError

    sdk = sdk_for(emulator)
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps({"request": ROWS[0]})
        + "\n{not json\n"
        + json.dumps({"request": [{"role": "robot", "text": "hi"}]})
        + "\n"
        + json.dumps({"request": []})
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DatasetValidationError) as failure:
        _upload(sdk, path)
    errors = sorted((e.rows, e.error) for e in failure.value.errors)
    assert errors == [((2,), "Invalid JSON"), ((3,), "Invalid row"), ((4,), "Invalid row")]
    assert "role must be one of system, user, assistant" in failure.value.errors[1].description

    dataset = _upload(sdk, path, raise_on_validation_failure=False)
    assert dataset.status.name == "INVALID"
    assert {e.rows for e in dataset.validation_errors} == {(2,), (3,), (4,)}
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        _model(sdk).batch.run_deferred(dataset)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "must be a READY TextToTextGenerationRequest dataset" in refused.value.details()


def test_a_row_over_the_context_window_fails_alone(
    emulator: Emulator, sdk_for: SdkFor, tmp_path: Path
) -> None:
    emulator.context_window = 50
    sdk = sdk_for(emulator)
    rows = [ROWS[0], [{"role": "user", "text": "word " * 100}], ROWS[1]]
    task = _model(sdk).batch.run_deferred(_upload(sdk, _jsonl(tmp_path / "long.jsonl", rows)))
    result = task.wait(poll_interval=FAST)

    assert [r["request"] for r in result.read()] == [ROWS[0], ROWS[1]]
    (error,) = task.get_task_info().errors.line_errors
    assert error.line_number == 2
    assert "input tokens must be no more than 50" in error.message


def test_every_row_failing_fails_the_task(
    emulator: Emulator, sdk_for: SdkFor, tmp_path: Path
) -> None:
    emulator.context_window = 5
    sdk = sdk_for(emulator)
    task = _model(sdk).batch.run_deferred(_upload(sdk, _jsonl(tmp_path / "x.jsonl", ROWS[:2])))
    for _ in range(5):
        info = task.get_task_info()
    assert info.status.name == "FAILED" and info.result_dataset_id in ("", None)
    assert len(info.errors.line_errors) == 2
    assert task.get_status().is_failed


def test_run_deferred_rejects_unknown_and_result_datasets_and_injected_faults(
    emulator: Emulator, sdk_for: SdkFor, tmp_path: Path
) -> None:
    sdk = sdk_for(emulator)
    model = _model(sdk)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        model.batch.run_deferred("fdsnosuchdataset0000")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    result = model.batch.run_deferred(_upload(sdk, _jsonl(tmp_path / "r.jsonl", ROWS[:1])))
    result_dataset = result.wait(poll_interval=FAST)
    with pytest.raises(grpc.aio.AioRpcError) as wrong_type:
        model.batch.run_deferred(result_dataset)
    assert wrong_type.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    emulator.fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "Quota exceeded", method="BatchCompletion")
    with pytest.raises(grpc.aio.AioRpcError) as quota:
        model.batch.run_deferred(result_dataset)
    assert quota.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_cancel_only_in_progress_then_delete(
    emulator: Emulator, sdk_for: SdkFor, tmp_path: Path
) -> None:
    sdk = sdk_for(emulator)
    task = _model(sdk).batch.run_deferred(_upload(sdk, _jsonl(tmp_path / "c.jsonl", ROWS)))

    with pytest.raises(grpc.aio.AioRpcError) as early:
        task.cancel()
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "Only an IN_PROGRESS task can be cancelled" in early.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as running:
        task.delete()
    assert running.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    while task.get_task_info().status.name != "IN_PROGRESS":
        pass
    task.cancel()
    info = task.get_task_info()
    assert info.status.name == "CANCELED" and not info.result_dataset_id
    assert task.get_status().is_failed
    operation = _operation(emulator, info.operation_id)
    assert operation.done and operation.error.code

    task.delete()
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        sdk.batch.get(task.id)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


# -- uploads and the storage server ---------------------------------------------------


def test_multipart_upload_and_read_back(
    emulator: Emulator, sdk_for: SdkFor, tmp_path: Path
) -> None:
    """Files over the chunk size go up in parts with ETags, as the SDK does for S3."""
    sdk = sdk_for(emulator)
    rows = [[{"role": "user", "text": f"{i} " + "x" * 2_000_000}] for i in range(6)]
    path = _jsonl(tmp_path / "big.jsonl", rows)
    assert path.stat().st_size > 2 * 5 * 1024**2
    dataset = _upload(sdk, path, chunk_size=5 * 1024**2)
    assert (dataset.status.name, dataset.rows) == ("READY", 6)
    methods = [r.method for r in emulator.requests if r.method.startswith("Dataset")]
    assert "DatasetStartMultipartUploadDraft" in methods
    assert "DatasetGetUploadDraftUrl" not in methods
    assert [r["request"] for r in dataset.read()] == rows


def test_storage_listens_on_loopback_only_checks_signatures_and_stops_cleanly() -> None:
    before = set(threading.enumerate())
    emu = Emulator(api_key=TEST_API_KEY).start()
    try:
        store = emu.batch.objects
        assert store.serving and store.port
        assert store._server is not None
        assert store._server.server_address[0] == "127.0.0.1"

        put = store.presign("PUT", "bucket/key", size=3)
        assert put.startswith(f"http://127.0.0.1:{store.port}/bucket/key?")
        with urllib.request.urlopen(urllib.request.Request(put, b"abc", method="PUT")) as r:
            assert r.status == 200 and r.headers["ETag"] == '"900150983cd24fb0d6963f7d28e17f72"'
        with urllib.request.urlopen(store.presign("GET", "bucket/key")) as r:
            assert r.read() == b"abc"

        for request in (
            urllib.request.Request(put, b"abcd", method="PUT"),  # not the signed size
            urllib.request.Request(put.replace("/key?", "/other?"), b"abc", method="PUT"),
            urllib.request.Request(put),  # a PUT grant does not allow GET
            urllib.request.Request(put.split("?")[0] + "?X-Amz-Signature=forged"),
        ):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request)
            assert refused.value.code == 403
            refused.value.close()
        port = store.port
    finally:
        emu.stop()

    assert not store.serving
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    assert set(threading.enumerate()) == before


# -- batch-only models and upload schemas (as the SDK's own examples use them) ----------


@pytest.mark.parametrize("name", ["qwen2.5-32b-instruct", "gemma-3-12b-it"])
def test_batch_runs_the_batch_only_models_the_sdk_examples_use(
    emulator: Emulator, sdk_for: SdkFor, tmp_path: Path, name: str
) -> None:
    sdk = sdk_for(emulator)
    dataset = _upload(sdk, _jsonl(tmp_path / "p.jsonl", ROWS[:2]))
    model = sdk.models.completions(name)  # as examples/sync/completions/batch.py does
    records = list(model.batch.run_deferred(dataset).wait(poll_interval=FAST).read())
    assert [r["request"] for r in records] == ROWS[:2]
    assert all(r["response"] for r in records)
    with pytest.raises(grpc.aio.AioRpcError) as interactive:
        model.run("hello")  # batch only: the synchronous API does not serve it
    assert (interactive.value.code(), interactive.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid model_uri",
    )


def test_batch_refuses_a_model_it_does_not_run(
    emulator: Emulator, sdk_for: SdkFor, tmp_path: Path
) -> None:
    sdk = sdk_for(emulator)
    dataset = _upload(sdk, _jsonl(tmp_path / "p.jsonl", ROWS[:1]))
    for model in (
        sdk.models.completions("no-such-model"),
        sdk.models.completions("qwen2.5-32b-instruct", model_version="rc"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            model.batch.run_deferred(dataset)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_upload_schemas_describe_what_validation_accepts(
    emulator: Emulator, sdk_for: SdkFor, tmp_path: Path
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    sdk = sdk_for(emulator)
    # The task types examples/sync/datasets/upload_schemas.py asks about.
    asked = (
        "TextToTextGeneration", "TextToTextGenerationRequest",
        "ImageTextToTextGenerationRequest", "TextEmbeddingsPair", "TextEmbeddingsTriplet",
        "TextClassificationMultilabel", "TextClassificationMulticlass",
    )  # fmt: skip
    schemas = {task_type: sdk.datasets.list_upload_schemas(task_type) for task_type in asked}
    served = {t: s for t, s in schemas.items() if s}
    assert set(served) == {"TextToTextGeneration", "TextToTextGenerationRequest"}
    for task_type, (schema,) in served.items():
        assert (schema.task_type, schema.upload_format) == (task_type, "jsonlines")
    request_schema = served["TextToTextGenerationRequest"][0].json  # the SDK parses it
    result_schema = served["TextToTextGeneration"][0].json
    good = {"request": ROWS[1]}
    jsonschema.validate(good, request_schema)
    jsonschema.validate({**good, "response": "2"}, result_schema)
    bad_rows = [{"request": []}, {"request": [{"role": "robot", "text": "x"}]}, {"text": "x"}]
    for bad in bad_rows:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, request_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(good, result_schema)  # a result row needs its response
    # ... and validation agrees: each row the schema refuses, the upload refuses.
    from yandex_cloud_ml_sdk.exceptions import DatasetValidationError

    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [good, *bad_rows]), encoding="utf-8")
    with pytest.raises(DatasetValidationError) as failure:
        _upload(sdk, path)
    assert sorted(row for e in failure.value.errors for row in e.rows) == [2, 3, 4]
