"""What every figure shares: the result row, interleaved timing, and the things measured.

The emulator always runs in a subprocess, so neither its CPU nor its threads (which
would contend for the GIL) land on the client being measured.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

#: The API key every benchmark emulator requires.
KEY = "bench-key-0000"
FOLDER = "b1gbench"
TEMPERATURE = 0.6
MAX_TOKENS = 2000
WINDOW = 32768

T = TypeVar("T")


@dataclass
class Row:
    """One figure of the table: a baseline and ours measured in the same run."""

    figure: str
    baseline: float
    ours: float
    unit: str
    target: str
    passed: bool
    details: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("inf")


def median(values: list[float]) -> float:
    return statistics.median(values)


def interleave(
    baseline: Callable[[], T], ours: Callable[[], T], *, reps: int, warmup: int = 3
) -> tuple[list[T], list[T]]:
    """Run baseline and ours alternately (ABAB) so drift hits both; each returns its own time.

    The callables time themselves, so setup that is not part of a figure (an undo
    after a turn) stays out of it. Warm-up runs of both are discarded.
    """
    for _ in range(warmup):
        baseline()
        ours()
    base: list[T] = []
    mine: list[T] = []
    for i in range(reps):
        # Alternate which goes first too, so neither always runs on a "cold" step.
        if i % 2:
            mine.append(ours())
            base.append(baseline())
        else:
            base.append(baseline())
            mine.append(ours())
    return base, mine


# -- the emulator, out of process ----------------------------------------------------


@dataclass
class EmulatorProcess:
    """A running emulator subprocess and the address it listens on."""

    process: subprocess.Popen[str]
    address: str
    #: The OpenAI-compatible HTTP API's base URL (``http://127.0.0.1:PORT/v1/``).
    chat_url: str = ""

    def env(self) -> dict[str, str]:
        """The environment that points the extension at this emulator (both APIs)."""
        return {
            "YC_API_KEY": KEY,
            "YC_FOLDER_ID": FOLDER,
            "YC_API_ENDPOINT": self.address,
            "YAGPT_CHAT_ENDPOINT": self.chat_url,
            "YAGPT_INSECURE": "1",
        }


@contextmanager
def emulator_process(
    *extra: str, module: str = "yagpt_magic.emulator"
) -> Iterator[EmulatorProcess]:
    """Start ``python -m MODULE --port 0 --api-key KEY ...`` and read its address."""
    args = [sys.executable, "-m", module, "--api-key", KEY, *extra]
    if module == "yagpt_magic.emulator":
        args += ["--port", "0"]
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if "listening on " not in line:
                process.wait(timeout=10)
                errors.seek(0)
                raise RuntimeError(f"the emulator did not start: {errors.read()[-2000:]}")
            # The next line is the HTTP API's base URL (``emulator.cli.serve``).
            chat = process.stdout.readline().rsplit(" at ", 1)[-1].strip()
            yield EmulatorProcess(process, line.rsplit("listening on ", 1)[1].strip(), chat)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- the baseline: the SDK called by hand ----------------------------------------------


def sdk_model(address: str, *, max_tokens: int = MAX_TOKENS) -> Any:
    """``YCloudML(...).models.completions("yandexgpt").configure(...)``, as a user writes it.

    Same settings the extension sends: one attempt, no server-side data logging.
    """
    from yagpt_magic.service.sdk_loop import import_sdk

    sdk = import_sdk()
    from yandex_cloud_ml_sdk.retry import RetryPolicy

    client = sdk.YCloudML(
        folder_id=FOLDER,
        auth=KEY,
        endpoint=address,
        verify=False,
        retry_policy=RetryPolicy(max_attempts=1),
        enable_server_data_logging=False,
    )
    return client.models.completions("yandexgpt").configure(
        temperature=TEMPERATURE, max_tokens=max_tokens
    )


def sdk_chat_model(emu: EmulatorProcess, name: str, *, max_tokens: int = MAX_TOKENS) -> Any:
    """``YCloudML(..., service_map=...).chat.completions(NAME).configure(...)`` by hand:
    the OpenAI-compatible API's baseline, with the settings the extension sends."""
    from yagpt_magic.service.sdk_loop import import_sdk

    sdk = import_sdk()
    from yandex_cloud_ml_sdk.retry import RetryPolicy

    client = sdk.YCloudML(
        folder_id=FOLDER,
        auth=KEY,
        endpoint=emu.address,
        verify=False,
        service_map={"http_completions": emu.chat_url},
        retry_policy=RetryPolicy(max_attempts=1),
        enable_server_data_logging=False,
    )
    return client.chat.completions(name).configure(temperature=TEMPERATURE, max_tokens=max_tokens)


# -- ours: an InteractiveShell with the extension ---------------------------------------


class FrontEnd:
    """Stands in for ipykernel's kernel object: the magic reads only the cell id from it.

    A notebook front end sends a fresh ``cellId`` for every new cell, so the turns
    measured here go the same way (``slot_for`` scans the thread for it).
    """

    def __init__(self) -> None:
        self.cell_id: str | None = None

    def get_parent(self, channel: str = "shell") -> dict[str, Any]:
        return {"metadata": {"cellId": self.cell_id}} if self.cell_id else {}


def sink_publisher(shell: Any) -> Any:
    """A DisplayPublisher that counts and keeps the last output instead of printing it.

    It stands in for the front end: ``display()`` still formats every output (our
    Markdown rendering is measured), only the terminal write or the kernel's iopub
    send is left out.
    """
    from IPython.core.displaypub import DisplayPublisher

    class Sink(DisplayPublisher):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.count = 0
            self.last: dict[str, Any] = {}

        def publish(self, data: dict[str, Any], metadata: Any = None, *args: Any,
                    **kwargs: Any) -> None:
            self.count += 1
            self.last = data

    return Sink(shell=shell)


@contextmanager
def chat_shell(emu: EmulatorProcess, *, front_end: bool = True) -> Iterator[Any]:
    """A fresh InteractiveShell with yagpt_magic loaded and aimed at ``emu``."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    saved = {name: os.environ.get(name) for name in emu.env()}
    os.environ.update(emu.env())
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance(config=config)
    shell.display_pub = sink_publisher(shell)
    if front_end:
        shell.kernel = FrontEnd()
    shell.run_line_magic("load_ext", "yagpt_magic")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "yagpt_magic")
        InteractiveShell.clear_instance()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_cell(shell: Any, cell: str) -> float:
    """Run one cell the way the kernel does; its wall time in seconds. Errors fail loudly."""
    start = time.perf_counter()
    result = shell.run_cell(cell, store_history=False)
    elapsed = time.perf_counter() - start
    result.raise_error()
    return elapsed


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


# -- a real ipykernel, driven the way a front end drives it ------------------------------


@dataclass
class Execution:
    """One execute request: its reply and the iopub messages it caused."""

    reply: dict[str, Any]
    messages: list[dict[str, Any]]

    def expression(self, name: str) -> Any:
        """A user expression's value (its text/plain repr, evaluated back)."""
        import ast

        found = self.reply["content"]["user_expressions"][name]
        if found["status"] != "ok":
            raise RuntimeError(f"{name}: {found.get('ename')}: {found.get('evalue')}")
        return ast.literal_eval(found["data"]["text/plain"])

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] in types]


class Kernel:
    """A python3 ipykernel from this interpreter, in its own process."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        from jupyter_client.manager import KernelManager

        self.manager = KernelManager(kernel_name="python3")
        self.manager.kernel_spec.argv[0] = sys.executable
        self.env = {**os.environ, **(env or {})}
        self.client: Any = None

    def __enter__(self) -> Kernel:
        # The kernel's stderr is only its TCP-without-encryption warning; errors come
        # back in execute replies.
        self.manager.start_kernel(env=self.env, stderr=subprocess.DEVNULL)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    def execute(
        self, code: str, *, expressions: dict[str, str] | None = None, timeout: float = 300
    ) -> Execution:
        """Run code, wait for the kernel to go idle, and fail loudly on an error."""
        msg_id = self.client.execute(
            code, store_history=False, user_expressions=expressions or {}
        )
        messages: list[dict[str, Any]] = []
        while True:
            msg = self.client.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            messages.append(msg)
        while True:
            reply = self.client.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        content = reply["content"]
        if content["status"] != "ok":
            raise RuntimeError(f"{content.get('ename')}: {content.get('evalue')}\n{code[:200]}")
        return Execution(reply, messages)
