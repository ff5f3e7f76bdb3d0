"""``notebooks/many_prompts.ipynb`` runs offline in a real kernel, with fewer reviews."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
N = 40

pytest.importorskip("pandas")
pytest.importorskip("pyarrow")


def test_the_notebook_classifies_reviews_with_a_bar_and_resumes_from_the_cache(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    nb = nbformat.read(ROOT / "notebooks" / "many_prompts.ipynb", as_version=4)
    size = next(c for c in nb.cells if c.source.startswith("N = 500"))
    size.source = size.source.replace("N = 500", f"N = {N}", 1)
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    def text(cell: nbformat.NotebookNode) -> str:
        parts = []
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
        return "\n".join(parts)

    code = [c for c in nb.cells if c.cell_type == "code"]
    first, again = (c for c in code if c.source.startswith("%%chat --map reviews"))
    assert f"{N} of {N} rows answered" in text(first)
    assert f"{N} from the cache" in text(again)
    # The progress bar is the notebook's own (tqdm's ipywidgets bar).
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               for o in first.outputs)
    assert "offline emulator" in text(next(c for c in code if "head()" in c.source
                                           and "label" in c.source))
    assert (tmp_path / "many_prompts_cache").is_dir()
    batch = next(c for c in code if "--batch" in c.source)
    assert "20 of 20 rows answered" in text(batch)
    assert text(code[-1]).strip() == "True"
