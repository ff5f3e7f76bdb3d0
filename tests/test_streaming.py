"""Streaming (SPEC 3) in a real kernel: throttled streaming, and interrupting a streamed reply."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from yagpt_magic.display.reply import TerminalText
from yagpt_magic.emulator import Emulator

from .conftest import emulator_env
from .kernel import Kernel

TURN_COUNT = (
    "m = get_ipython()._yagpt_magic\n"
    "print('turns:', [t.user for t in m.session.thread().turns])"
)


def test_a_long_stream_updates_one_display_a_few_times(emulator: Emulator) -> None:
    reply = " ".join(f"w{i}" for i in range(4000))
    emulator.reply_with(reply, chunks=2000)
    emulator.chunk_delay = 0.0005
    with Kernel(emulator_env(emulator)) as kernel:
        assert kernel.run("%load_ext yagpt_magic").ok
        run = kernel.run("%%chat --max-tokens 20000\nWrite a long answer", timeout=120)
    assert run.ok, run.error
    shown = run.of_type("display_data")
    updates = run.of_type("update_display_data")
    assert len(shown) == 1
    # The output appears as soon as the request goes out, before the first words.
    assert shown[0]["content"]["data"]["text/plain"] == "Waiting for yandexgpt…"
    display_id = shown[0]["content"]["transient"]["display_id"]
    assert all(u["content"]["transient"]["display_id"] == display_id for u in updates)
    # Far fewer updates than the 2,000 chunks, and the last one is the whole reply.
    print(f"2,000 chunks -> {len(updates) + 1} display messages")
    assert len(updates) + 1 < 200
    final = updates[-1]["content"]
    assert final["data"]["text/plain"] == reply
    assert final["metadata"]["yagpt_magic"]["status"] == "final"


def test_interrupt_cancels_the_stream_and_commits_nothing(emulator: Emulator) -> None:
    with Kernel(emulator_env(emulator)) as kernel:
        assert kernel.run("%load_ext yagpt_magic").ok
        assert kernel.run("%%chat\nfirst question").ok
        emulator.reply_with("slow words " * 200, chunks=200)
        emulator.chunk_delay = 0.05
        msg_id = kernel.send("%%chat\nsecond question, slowly")
        # Wait until the reply is visibly streaming, then interrupt as Jupyter does.
        deadline = time.monotonic() + 30
        while len(emulator.completions) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)
        interrupted_at = time.monotonic()
        kernel.manager.interrupt_kernel()
        run = kernel.collect(msg_id)
        while emulator.cancelled < 1 and time.monotonic() - interrupted_at < 5:
            time.sleep(0.01)
        cancelled_after = time.monotonic() - interrupted_at
        turns = kernel.run(TURN_COUNT)
        again = kernel.run("%%chat\nthird question")
        after = kernel.run(TURN_COUNT)

    assert not run.ok and "Interrupted" in run.error
    assert emulator.cancelled == 1 and cancelled_after < 1.0
    assert "turns: ['first question']" in turns.text
    last = (run.of_type("update_display_data") or run.of_type("display_data"))[-1]
    assert "slow words" in last["content"]["data"]["text/plain"]
    assert "Interrupted" in last["content"]["data"]["text/html"]
    assert again.ok, again.error
    assert "turns: ['first question', 'third question']" in after.text


def test_a_request_that_fails_replaces_its_waiting_line(emulator: Emulator) -> None:
    import grpc

    with Kernel(emulator_env(emulator)) as kernel:
        assert kernel.run("%load_ext yagpt_magic").ok
        emulator.delay = 0.3
        emulator.fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down")
        run = kernel.run("%%chat\nhello")
        turns = kernel.run(TURN_COUNT)
    assert not run.ok and "quota or rate limit" in run.error.lower()
    last = run.of_type("update_display_data")[-1]["content"]["data"]["text/plain"]
    assert last == "\n[Failed: nothing was added to the thread.]"
    assert "turns: []" in turns.text


def test_terminal_ipython_shows_the_reply_as_it_streams(emulator: Emulator) -> None:
    """In a terminal there is no output to update: the reply is written as it grows."""

    emulator.chunk_delay = 0.05
    proc = subprocess.Popen(
        [sys.executable, "-m", "IPython", "--simple-prompt", "--no-banner", "--colors=NoColor",
         "--HistoryManager.enabled=False", "--TerminalInteractiveShell.confirm_exit=False"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **emulator_env(emulator)}, bufsize=0,
    )
    seen: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1):
            seen.append((time.monotonic(), chunk))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert proc.stdin is not None
    # Two empty lines end a cell at the terminal's simple prompt.
    proc.stdin.write("%load_ext yagpt_magic\n%%chat\nWhat is a monad?\n\n\nexit\n")
    proc.stdin.flush()
    proc.wait(timeout=60)
    reader.join(timeout=5)
    text = "".join(c for _, c in seen)
    # As a terminal prints it: plain text, not Markdown (issue 25).
    reply = TerminalText().feed(emulator_reply(emulator), final=True)
    assert reply in text and "*(offline" not in text
    start = text.index(reply[:20])
    times = [t for t, _ in seen]
    # The first words were on screen well before the last ones arrived.
    assert times[start + len(reply) - 1] - times[start] > 10 * emulator.chunk_delay


def emulator_reply(emulator: Emulator) -> str:
    from yagpt_magic.emulator import reply_for

    request = emulator.completions[-1]
    return reply_for(request.model_uri, request.messages)
