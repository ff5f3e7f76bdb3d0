"""Structured output and ``%chat code`` in a real front end (SPEC 11, 14).

The reply of ``%%chat --schema`` must show as highlighted JSON, and ``%chat code`` must
make the front end create a new cell below holding the reply's code, not run.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from yagpt_magic.emulator import Emulator

from .jupyter import (
    KINDS,
    ServerFactory,
    assert_only_loopback,
    cell_locator,
    cell_output_locator,
    create_notebook,
    notebook_locator,
    open_notebook,
    run_cell,
    screenshot,
    wait_for_output,
)

pytestmark = pytest.mark.browser

SETUP = ("%load_ext yagpt_magic\nimport pydantic\n\n"
         "class Fact(pydantic.BaseModel):\n    name: str\n    year: int")
CODE_REPLY = "Try this:\n\n```python\nprint('from the reply')\n```\n"


@pytest.mark.parametrize("kind", KINDS)
def test_schema_reply_is_highlighted_json_and_code_lands_in_a_new_cell(
    kind: str,
    jupyter_server_factory: ServerFactory,
    chat_env: dict[str, str],
    emu: Emulator,
    page: Page,
    page_requests: list[str],
    blocked_requests: list[str],
) -> None:
    server = jupyter_server_factory(kind, chat_env)
    name = create_notebook(server, f"structured-{kind}.ipynb", [
        SETUP,
        '%%chat --schema Fact -o fact\nEinstein published "special relativity" in 1905.',
        "print(type(fact).__name__, fact.year)",
        "%%chat\nShow me some code",
        "%chat code",
    ])
    open_notebook(page, server, name)
    run_cell(page, 0)

    run_cell(page, 1)
    output = wait_for_output(page, 1, '"year": 1905')
    code = output.locator("pre").filter(has_text='"special relativity"')
    expect(code).to_have_count(1, timeout=10_000)
    assert code.locator("span").count() > 0, "the JSON is not syntax-highlighted"
    run_cell(page, 2)
    wait_for_output(page, 2, "Fact 1905")

    emu.reply_with(CODE_REPLY)
    run_cell(page, 3)
    wait_for_output(page, 3, "Try this")
    run_cell(page, 4)
    wait_for_output(page, 4, "went into a new cell below (not run)")
    expect(notebook_locator(page).locator(".jp-Cell")).to_have_count(6, timeout=10_000)
    new = cell_locator(page, 5)
    expect(new.locator(".jp-InputArea-editor")).to_contain_text("print('from the reply')")
    expect(cell_output_locator(page, 5)).not_to_contain_text("from the reply")

    screenshot(page, f"structured-{kind}")
    assert blocked_requests == []
    assert_only_loopback(page_requests)
