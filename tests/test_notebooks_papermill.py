"""Issue 25: every bundled notebook runs as a newcomer runs it — papermill (and so Run
All) on a machine with no credentials — goes offline by itself and says so, and leaves
nothing behind that git would show as untracked."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import nbformat
import pytest

papermill = pytest.importorskip("papermill")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: Parameters a notebook's "parameters" cell takes, so the suite runs it smaller.
SMALLER = {"many_prompts.ipynb": {"N": 40}}


def outputs_text(nb: Any) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append("".join(output.get("text", "")))
            parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_bundled_notebook_runs_under_papermill_without_credentials(
    notebook: Path, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "notebooks"
    work.mkdir()
    shutil.copy(notebook, work / notebook.name)
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(work / notebook.name), str(out), cwd=str(work),
                               kernel_name="python3", progress_bar=False,
                               parameters=SMALLER.get(notebook.name, {}))
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    text = outputs_text(nb)
    assert "No credentials found" in text and "offline emulator" in text  # it says so
    # What the notebook wrote beside itself, git ignores (a user runs it in notebooks/).
    left = sorted(p.name + ("/" if p.is_dir() else "") for p in work.iterdir()
                  if p.name != notebook.name)
    shown = [name for name in left if subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "-q", "--no-index", f"notebooks/{name}"],
        check=False).returncode != 0]
    assert shown == [], f"{notebook.name} leaves untracked files: {shown}"


def test_papermill_shows_the_cause_of_a_failed_cell(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "no-key.ipynb"
    cells = [nbformat.v4.new_code_cell("%load_ext yagpt_magic"),
             nbformat.v4.new_code_cell("%%chat\nHello")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}),
        path)
    with pytest.raises(papermill.PapermillExecutionError) as failed:
        papermill.execute_notebook(str(path), str(tmp_path / "out.ipynb"), cwd=str(tmp_path),
                                   kernel_name="python3", progress_bar=False)
    message = str(failed.value)
    assert "UsageError: No YandexGPT credential found" in message, message
    assert "Traceback" not in message
    saved = json.loads((tmp_path / "out.ipynb").read_text())
    error = [o for c in saved["cells"] for o in c.get("outputs", [])
             if o["output_type"] == "error"]
    assert [e["traceback"] for e in error] == [[
        "UsageError: " + error[0]["evalue"]]]  # one line in the saved notebook too
