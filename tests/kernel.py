"""Drive a real ipykernel the way JupyterLab does, for tests that need a kernel."""

from __future__ import annotations

import os
import queue
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.manager import KernelManager


@dataclass
class Execution:
    """What one execute request produced on iopub, and its reply."""

    reply: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    #: The prompts of the input requests the cell made (``input()``), in order.
    prompts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reply["content"]["status"] == "ok"

    @property
    def error(self) -> str:
        content = self.reply["content"]
        return f"{content.get('ename')}: {content.get('evalue')}" if not self.ok else ""

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] in types]

    @property
    def text(self) -> str:
        """Everything printed or displayed as text/plain, in order."""
        parts = []
        for msg in self.messages:
            content = msg["content"]
            if msg["msg_type"] == "stream":
                parts.append(content["text"])
            elif "data" in content:
                parts.append(content["data"].get("text/plain", ""))
            elif msg["msg_type"] == "error":
                parts.append("\n".join(content["traceback"]))
        return "\n".join(parts)


class Kernel:
    """A python3 kernel from this interpreter, with an environment of the test's choosing."""

    def __init__(self, env: dict[str, str] | None = None, stderr: Any = None) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.kernel_spec.argv[0] = sys.executable
        self.env = {**os.environ, **(env or {})}
        self.stderr = stderr
        self.client: Any = None

    def start(self) -> Kernel:
        self.manager.start_kernel(env=self.env, stderr=self.stderr, stdout=self.stderr)
        self._connect()
        return self

    def _connect(self) -> None:
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def restart(self) -> None:
        self.client.stop_channels()
        self.manager.restart_kernel(now=True, env=self.env)
        self._connect()

    def stop(self) -> None:
        if self.client is not None:
            self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    def send(self, code: str, cell_id: str | None = None, *, allow_stdin: bool = False) -> str:
        """Send an execute request (with JupyterLab's cellId metadata) without waiting."""
        msg = self.client.session.msg(
            "execute_request",
            {"code": code, "silent": False, "store_history": True, "user_expressions": {},
             "allow_stdin": allow_stdin, "stop_on_error": True},
            metadata={"cellId": cell_id} if cell_id else {},
        )
        self.client.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def collect(self, msg_id: str, timeout: float = 60,
                answers: list[str] | None = None) -> Execution:
        """Gather iopub messages of one request until the kernel is idle, then its reply.

        With ``answers``, each input request on the stdin channel gets the next one, as
        a front end's input box would send it.
        """
        deadline = time.monotonic() + timeout
        messages: list[dict[str, Any]] = []
        prompts: list[str] = []
        pending = list(answers or [])
        while True:
            if answers is not None:
                self._answer_input(prompts, pending)
            try:
                wait = 0.05 if answers is not None else max(0.01, deadline - time.monotonic())
                msg = self.client.get_iopub_msg(timeout=wait)
            except queue.Empty:
                if time.monotonic() < deadline:
                    continue
                raise TimeoutError(f"no idle for {msg_id} within {timeout}s") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            messages.append(msg)
        while True:
            reply = self.client.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                return Execution(reply, messages, prompts)

    def _answer_input(self, prompts: list[str], pending: list[str]) -> None:
        try:
            request = self.client.get_stdin_msg(timeout=0)
        except queue.Empty:
            return
        if request["msg_type"] == "input_request":
            prompts.append(request["content"]["prompt"])
            self.client.input(pending.pop(0) if pending else "")

    def run(self, code: str, cell_id: str | None = None, timeout: float = 60,
            answers: list[str] | None = None) -> Execution:
        """Run a cell; ``answers`` allows stdin and answers its input requests in order."""
        msg_id = self.send(code, cell_id, allow_stdin=answers is not None)
        return self.collect(msg_id, timeout, answers)

    def __enter__(self) -> Kernel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
