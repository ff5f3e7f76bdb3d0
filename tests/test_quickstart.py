"""The quickstart conversation end to end in a real kernel, and loading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from yagpt_magic.emulator import Emulator

from .conftest import emulator_env

ROOT = Path(__file__).resolve().parent.parent


def run_notebook(path: Path, env: dict[str, str], tmp_path: Path) -> nbformat.NotebookNode:
    """Execute a notebook with nbclient in a fresh python3 kernel with ``env``."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={
        "metadata": {"path": str(tmp_path)}})
    old = dict(os.environ)
    os.environ.update(env)
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def test_quickstart_sends_the_whole_conversation(emulator: Emulator, tmp_path: Path) -> None:
    nb = run_notebook(ROOT / "notebooks" / "quickstart.ipynb", emulator_env(emulator), tmp_path)

    assert len(emulator.completions) == 3
    third = emulator.completions[2]
    assert [role for role, _ in third.messages] == [
        "system", "user", "assistant", "user", "assistant", "user"]
    texts = [text for _, text in third.messages]
    assert texts[0] == "You are a smart assistant"
    assert texts[1] == "Hi! What fields of science did Albert Einstein study?"
    assert texts[3] == "What important discoveries did he make?"
    assert texts[5] == "Make it shorter"
    # The replies carried as context are exactly what the first two requests returned.
    replies = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if "yagpt_magic" in o.get("metadata", {})]
    assert [r["data"]["text/plain"] for r in replies[:2]] == [texts[2], texts[4]]

    # The key reaches the service as the auth header and nowhere in the saved notebook.
    assert all(r.metadata["authorization"] == f"Api-Key {emulator.api_key}"
               for r in emulator.completions)
    assert emulator.api_key not in json.dumps(nb)


def test_load_ext_imports_neither_grpc_nor_the_sdk() -> None:
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "shell.run_line_magic('load_ext', 'yagpt_magic')\n"
        "assert 'chat' in shell.magics_manager.magics['cell']\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('grpc', 'yandex_cloud_ml_sdk', 'yandex_ai_studio_sdk', 'yandex', 'google'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_quickstart_command_runs_offline_without_credentials(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("YC_API_KEY", "YC_IAM_TOKEN", "YC_OAUTH_TOKEN", "API_KEY", "IAM_TOKEN")}
    out = subprocess.run(
        [sys.executable, "-m", "yagpt_magic", str(ROOT / "notebooks" / "quickstart.ipynb")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "offline emulator" in out.stdout
    # The third reply saw the system prompt and both earlier turns.
    assert "Reply to message 6: “Make it shorter”" in out.stdout
    assert "Thread 'default': 3 turns" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    # The SDK's deprecation warning and its TRACE logging never reach the user.
    assert "deprecated" not in out.stdout + out.stderr
    assert "TRACE" not in out.stdout + out.stderr


def test_the_readmes_30_second_example_runs_without_credentials(clean_env: Any) -> None:
    """A new user pastes the README's cells into a fresh shell with no key set."""
    import re

    from IPython.core.interactiveshell import InteractiveShell

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## 30 seconds", 1)[1].split("\n## ", 1)[0]
    cells = re.findall(r"```(?:python)?\n(.*?)```", section, re.S)
    assert len(cells) == 4 and cells[0].startswith("%load_ext yagpt_magic")
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    try:
        for cell in cells:
            shell.run_cell(cell).raise_error()
        thread = shell.magics_manager.registry["ChatMagics"].session.thread()
        assert len(thread.turns) == 3 and thread.system_prompt == "You are a smart assistant"
        assert "offline emulator" in thread.turns[-1].reply
    finally:
        shell.run_line_magic("unload_ext", "yagpt_magic")
        shell.__dict__.pop("_yagpt_magic_threads", None)
        InteractiveShell.clear_instance()
