"""Fixtures for browser tests: one Jupyter server per front end, one headless Chromium.

A test asks `jupyter_server_factory(kind, env)` for a server ("lab" or "notebook");
servers are shared for the whole session per (kind, env), and `env` reaches every
kernel because kernels inherit the server's environment.
"""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, Request, Route, sync_playwright

from yagpt_magic.emulator import Emulator

from ..conftest import TEST_API_KEY, emulator_env
from .jupyter import JupyterServer, ServerFactory, is_loopback, screenshot, start_server

CHROMIUM = os.environ.get("YAGPT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item so `page` can tell that its test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def jupyter_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerFactory]:
    """`factory(kind, env=None)` -> a running server, started once per (kind, env)."""
    servers: dict[tuple[str, frozenset[tuple[str, str]]], JupyterServer] = {}

    def factory(kind: str, env: dict[str, str] | None = None) -> JupyterServer:
        key = (kind, frozenset((env or {}).items()))
        if key not in servers:
            servers[key] = start_server(kind, tmp_path_factory.mktemp(f"jupyter-{kind}"), env)
        return servers[key]

    yield factory
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's headless Chromium (`playwright install` cannot download here)."""
    if not Path(CHROMIUM).exists():
        # Never a silent skip: a missing browser would hide the SPEC 10 checks.
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `apt-get install chromium` (bash .ci/run does), "
            "set YAGPT_CHROMIUM, or deselect with -m 'not browser'"
        )
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def page_requests() -> list[str]:
    """Every URL the test's page requested (HTTP and WebSocket), in order."""
    return []


@pytest.fixture
def blocked_requests() -> list[str]:
    """URLs the page tried to reach outside 127.0.0.1; they were aborted."""
    return []


@pytest.fixture
def page_errors() -> list[str]:
    """Uncaught JavaScript errors of the test's page.

    Notebook 7.6 itself throws "Cannot read properties of undefined (reading 'schema')"
    from its shortcuts plugin on every load, so filter before asserting this is empty.
    """
    return []


@pytest.fixture
def page(
    browser: Browser,
    request: pytest.FixtureRequest,
    page_requests: list[str],
    blocked_requests: list[str],
    page_errors: list[str],
) -> Iterator[Page]:
    """A fresh page whose traffic may only reach 127.0.0.1; a failure leaves a screenshot."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    context.set_default_timeout(30_000)

    def guard(route: Route, req: Request) -> None:
        if is_loopback(req.url):
            route.continue_()
        else:
            blocked_requests.append(req.url)
            route.abort("blockedbyclient")

    context.route("**/*", guard)
    page = context.new_page()
    page.on("request", lambda req: page_requests.append(req.url))
    page.on("websocket", lambda ws: page_requests.append(ws.url))
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        path = screenshot(page, f"FAILED-{request.node.name}")
        print(f"screenshot: {path}")
        if page_errors:
            print("page errors:", *page_errors, sep="\n  ")
    context.close()


@pytest.fixture(scope="session")
def chat_emulator() -> Iterator[Emulator]:
    """One emulator for the session, in this process, so tests script its replies."""
    emu = Emulator(api_key=TEST_API_KEY).start()
    yield emu
    emu.stop()


@pytest.fixture
def emu(chat_emulator: Emulator) -> Emulator:
    """The session's emulator, with scripts, delays and recordings of earlier tests gone."""
    chat_emulator.reset()
    return chat_emulator


@pytest.fixture(scope="session")
def chat_env(chat_emulator: Emulator) -> dict[str, str]:
    """Server env whose kernels talk to `chat_emulator`; one env, so servers are shared."""
    return emulator_env(chat_emulator)


@dataclass
class Attacker:
    """A loopback HTTP server that counts what the page asks of it."""

    port: int
    paths: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hits(self, tag: str) -> list[str]:
        """Requests that carry `tag`, i.e. came from the reply rendered under that tag."""
        return [path for path in self.paths if f"tag={tag}" in path]


@pytest.fixture(scope="session")
def attacker() -> Iterator[Attacker]:
    """The attacker's server; it answers every GET with a 1x1 GIF and remembers the path."""
    paths: list[str] = []
    gif = bytes.fromhex(
        "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", str(len(gif)))
            self.end_headers()
            self.wfile.write(gif)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Attacker(server.server_address[1], paths)
    server.shutdown()
    server.server_close()
