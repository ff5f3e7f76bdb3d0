"""Errors (SPEC 8): every failure is one line that says what to do (the cause the service
gave, not its session ids), and history never changes."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from typing import Any

import grpc
import pytest

from yagpt_magic.core.errors import sentence
from yagpt_magic.emulator import Emulator
from yagpt_magic.service.failures import service_cause

from ..conftest import fails, magics_of

EXPECTED = {
    "UNAUTHENTICATED": "authentication failed",
    "PERMISSION_DENIED": "permission denied",
    "RESOURCE_EXHAUSTED": "quota or rate limit",
    "INVALID_ARGUMENT": "rejected the request as invalid",
    "UNAVAILABLE": "is unreachable",
    "DEADLINE_EXCEEDED": "no answer from",
    "INTERNAL": "the service failed (INTERNAL)",
}


def snapshot(shell: Any) -> str:
    session = magics_of(shell).session
    return json.dumps({n: dataclasses.asdict(t) for n, t in session.threads.items()},
                      sort_keys=True)


@pytest.mark.parametrize("after_chunks", [0, 3])
@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_fault_matrix(shell: Any, emulator: Emulator, code: str, after_chunks: int) -> None:
    shell.run_cell("%%chat\nfirst turn").raise_error()
    before = snapshot(shell)
    emulator.reply_with("word " * 60, chunks=10)
    emulator.fail(getattr(grpc.StatusCode, code), f"injected {code}", after_chunks=after_chunks)
    message = fails(shell, "%%chat\nsecond turn")
    assert EXPECTED[code].lower() in message.lower()
    assert snapshot(shell) == before
    assert "Traceback" not in message


def test_content_filter_commits_nothing(shell: Any, emulator: Emulator) -> None:
    shell.run_cell("%%chat\nfirst").raise_error()
    before = snapshot(shell)
    emulator.reply_with("", status="CONTENT_FILTER")
    assert "content filter" in fails(shell, "%%chat\nsomething the filter blocks")
    assert snapshot(shell) == before


def test_truncated_reply_is_kept_with_a_notice(shell: Any, emulator: Emulator,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_cell("%%chat --max-tokens 5\nTell me everything").raise_error()
    turn = magics_of(shell).session.thread().turns[-1]
    assert turn.status == "truncated" and turn.usage.completion_tokens == 5
    assert "cut at max_tokens" in capsys.readouterr().out


def test_verbose_errors_show_the_traceback_without_the_key(
    shell: Any, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell("%config ChatMagics.verbose_errors = True").raise_error()
    emulator.fail(grpc.StatusCode.PERMISSION_DENIED, "denied for {authorization}")
    result = shell.run_cell("%%chat\nhello")
    assert result.error_in_exec is not None
    shell.showtraceback((type(result.error_in_exec), result.error_in_exec,
                         result.error_in_exec.__traceback__))
    captured = capsys.readouterr()
    assert "Traceback" in captured.out + captured.err
    assert "denied for Api-Key ***" in captured.out + captured.err
    assert emulator.api_key not in captured.out + captured.err


def test_a_closed_port_fails_fast_naming_the_endpoint(
    bare_shell: Any, clean_env: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clean_env.setenv("YC_API_KEY", "k")
    clean_env.setenv("YC_FOLDER_ID", "f")
    clean_env.setenv("YC_API_ENDPOINT", f"127.0.0.1:{port}")
    clean_env.setenv("YAGPT_INSECURE", "1")
    started = time.monotonic()
    message = fails(bare_shell, "%%chat\nhello")
    assert f"127.0.0.1:{port}" in message and "unreachable" in message
    assert time.monotonic() - started < 10


def test_a_silent_server_fails_within_the_timeout(
    bare_shell: Any, clean_env: pytest.MonkeyPatch
) -> None:
    """A server that accepts the connection and never answers: the `timeout` setting wins."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    address = f"127.0.0.1:{server.getsockname()[1]}"
    for name, value in (("YC_API_KEY", "k"), ("YC_FOLDER_ID", "f"),
                        ("YC_API_ENDPOINT", address), ("YAGPT_INSECURE", "1")):
        clean_env.setenv(name, value)
    bare_shell.run_cell("%config ChatMagics.timeout = 1.5").raise_error()
    try:
        started = time.monotonic()
        message = fails(bare_shell, "%%chat\nhello")
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        acceptor.join()
        for conn in held:
            conn.close()
        server.close()
    assert address in message and "1.5 s" in message
    assert elapsed < 6


# -- issue 14: the cause survives, the advice matches it ---------------------------------

SESSION = ("Error in session internal_id=9c2f41d3-5b8e17aa-0f6c2e91-77d1b0c4"
           "&request_id=2b0e6a4f-91c2-4d7e-8f3a-5c6b7d8e9f01"
           "&client_request_id=0d4a6c1e-2f3b-4a5c-9d8e-7f6a5b4c3d2e&folder_id=b1gtest: ")


def test_a_too_long_conversation_shows_the_cause_and_what_to_do(
    shell: Any, emulator: Emulator
) -> None:
    emulator.fail(grpc.StatusCode.INVALID_ARGUMENT,
                  SESSION + "number of input tokens must be no more than 32768, got 59830")
    message = fails(shell, "%%chat\nhello")
    assert "number of input tokens must be no more than 32768, got 59830" in message
    assert "internal_id" not in message and "request_id" not in message
    assert "too long" in message and "%chat reset" in message
    assert "context_window = 32768" in message
    assert "Check the model name" not in message
    assert message[0].isupper()


def test_an_unknown_model_says_check_the_model(shell: Any, emulator: Emulator) -> None:
    emulator.fail(grpc.StatusCode.INVALID_ARGUMENT, SESSION + "invalid model_uri")
    message = fails(shell, "%%chat -m yandexgpt-nosuch\nhello")
    assert "invalid model_uri" in message and "-m" in message
    assert "internal_id" not in message


def test_a_message_too_large_to_send_is_not_a_quota_problem(
    shell: Any, emulator: Emulator
) -> None:
    emulator.fail(grpc.StatusCode.RESOURCE_EXHAUSTED,
                  "Received message larger than max (5242880 vs. 4194304)")
    message = fails(shell, "%%chat\nhello")
    assert "too large to send" in message
    assert "5,242,880 bytes" in message and "4,194,304 bytes" in message
    assert "quota" not in message.lower()


def test_a_quota_error_keeps_its_cause(shell: Any, emulator: Emulator) -> None:
    emulator.fail(grpc.StatusCode.RESOURCE_EXHAUSTED,
                  SESSION + "Too many requests: rate limit 10 per second exceeded")
    message = fails(shell, "%%chat\nhello")
    assert "quota or rate limit" in message.lower()
    assert "rate limit 10 per second exceeded" in message and "internal_id" not in message


def test_a_very_long_cause_is_cut_on_a_word(shell: Any, emulator: Emulator) -> None:
    cause = " ".join(f"word{i}" for i in range(200))
    emulator.fail(grpc.StatusCode.INTERNAL, SESSION + cause)
    message = fails(shell, "%%chat\nhello")
    assert "word0 word1" in message and "…" in message and "internal_id" not in message
    shown = message.split("(INTERNAL): ", 1)[1].split("…", 1)[0]
    assert all(w.startswith("word") and w[4:].isdigit() for w in shown.split())


def test_file_names_keep_what_the_user_typed(shell: Any, tmp_path: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "garbage.json").write_text("not json at all")
    for line in ("%chat load garbage.json", "%chat load rec.ipynb"):
        message = fails(shell, line)
        name = line.split()[-1]
        assert name in message and name.capitalize() not in message, message


@pytest.mark.parametrize(("details", "cause"), [
    (SESSION + "invalid message role 'some_role'", "invalid message role 'some_role'"),
    ("Error in session internal_id=x: No RIFF found\nmore detail", "No RIFF found"),
    ("deadline passed (request_id=2b0e-77&folder_id=b1g)", "deadline passed"),
    ("request_id=2b0e-77: model is overloaded.", "model is overloaded"),
    ("", ""),
])
def test_the_cause_without_session_ids(details: str, cause: str) -> None:
    assert service_cause(details) == cause


def test_a_long_cause_is_cut_on_a_word_boundary() -> None:
    cause = service_cause(SESSION + "lorem ipsum dolor " * 40)
    assert cause.endswith("…") and len(cause) <= 241
    assert cause[:-1].split()[-1] in ("lorem", "ipsum", "dolor")


@pytest.mark.parametrize(("message", "shown"), [
    ("unrecognized arguments: --x", "Unrecognized arguments: --x"),
    ("argument -t/--thread: expected one argument", "Argument -t/--thread: expected one argument"),
    ("garbage.json is not a transcript", "garbage.json is not a transcript"),
    ("rec.ipynb: no cells", "rec.ipynb: no cells"),
    ("-m needs a model name", "-m needs a model name"),
    ("%chat load: no such file", "%chat load: no such file"),
])
def test_sentence_capitalises_words_only(message: str, shown: str) -> None:
    assert sentence(message) == shown
