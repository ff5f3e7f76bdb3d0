"""The browser harness itself: a widget renders and a cell prints in both front ends."""

from __future__ import annotations

import sys

import pytest
from playwright.sync_api import Page, expect

from .jupyter import (
    KINDS,
    ServerFactory,
    append_and_run,
    assert_only_loopback,
    cell_output_locator,
    create_notebook,
    open_notebook,
    run_cell,
    screenshot,
    wait_for_output,
)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("kind", KINDS)
def test_widget_and_print(
    kind: str,
    jupyter_server_factory: ServerFactory,
    page: Page,
    page_requests: list[str],
    blocked_requests: list[str],
) -> None:
    server = jupyter_server_factory(kind, {"YAGPT_SMOKE": "env-reaches-kernel"})
    name = create_notebook(
        server,
        f"smoke-{kind}.ipynb",
        [
            "import os, sys; print(sys.prefix, os.environ['YAGPT_SMOKE'])",
            'import ipywidgets as w; w.Button(description="smoke-button")',
        ],
    )
    open_notebook(page, server, name)

    run_cell(page, 0)
    # The kernel must be this venv's python, and must see the env given to the server.
    wait_for_output(page, 0, f"{sys.prefix} env-reaches-kernel")

    run_cell(page, 1)
    button = cell_output_locator(page, 1).locator("button.widget-button")
    expect(button).to_have_text("smoke-button", timeout=30_000)
    expect(button).to_be_visible()

    index = append_and_run(page, "print(2+2)")
    wait_for_output(page, index, "4")

    screenshot(page, f"smoke-{kind}")
    assert page_requests, "the request log is empty: the page fixture is not recording"
    assert blocked_requests == []
    assert_only_loopback(page_requests)


def test_outside_requests_are_blocked(page: Page, blocked_requests: list[str]) -> None:
    page.evaluate("fetch('https://example.com/ping').catch(() => null)")
    assert blocked_requests == ["https://example.com/ping"]
    with pytest.raises(AssertionError, match="example.com"):
        assert_only_loopback(blocked_requests)
