"""Start a real Jupyter server and drive JupyterLab 4 / Notebook 7 through Playwright.

Both front ends are built from the same lab components, so one set of selectors
(`.jp-Notebook .jp-Cell`, `.jp-Cell-outputArea`, `.cm-content`) and one set of
keyboard shortcuts works for both; only the URL that opens a notebook differs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from playwright.sync_api import Locator, Page, expect

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
KINDS = ("lab", "notebook")
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

# Inherited variables that could point a kernel at the real cloud with real credentials.
_SCRUBBED_ENV_PREFIXES = ("YC_", "YAGPT_")

# Read by both front ends from JUPYTER_CONFIG_DIR: no calls home, no toasts over the
# cells, and every cell kept in the DOM so `nth(index)` always finds it.
_USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
_PAGE_CONFIG = {
    "disabledExtensions": {
        "@jupyterlab/apputils-extension:announcements": True,
        "@jupyterlab/extensionmanager-extension:plugin": True,
    }
}
_APP_CONFIG = {"expose_app_in_browser": True}
_SERVER_CONFIG = {
    "ServerApp": {"terminals_enabled": False},
    "LabApp": {
        **_APP_CONFIG,
        "news_url": None,
        "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
        "extension_manager": "readonly",
    },
    "JupyterNotebookApp": _APP_CONFIG,
}


@dataclass
class JupyterServer:
    """A running `jupyter lab` or `jupyter notebook` process on 127.0.0.1."""

    kind: str
    port: int
    token: str
    root_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str) -> str:
        """The address that opens notebook `name` in this server's front end."""
        path = quote(name)
        if self.kind == "lab":
            # `reset` drops the saved workspace, so tabs from earlier tests do not reopen.
            return f"{self.url}/lab/tree/{path}?reset&token={self.token}"
        return f"{self.url}/notebooks/{path}?token={self.token}"

    def api(self, method: str, path: str, body: object | None = None) -> object:
        """Call the server's REST API (`path` like "/api/contents/x.ipynb") and decode JSON."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for failure messages."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10) -> None:
        """Shut down kernels and the server: REST shutdown, then SIGTERM, then SIGKILL."""
        if self.process.poll() is not None:
            return
        # URLError is an OSError; a server already going away may refuse the request.
        with contextlib.suppress(OSError):
            self.api("POST", "/api/shutdown")
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
                return
            except subprocess.TimeoutExpired:
                continue


# What the `jupyter_server_factory` fixture returns: `factory(kind, env=None)`.
ServerFactory = Callable[..., JupyterServer]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_config(config_dir: Path) -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(_SERVER_CONFIG))
    (config_dir / "labconfig").mkdir(exist_ok=True)
    (config_dir / "labconfig" / "page_config.json").write_text(json.dumps(_PAGE_CONFIG))
    for relative, settings in _USER_SETTINGS.items():
        path = config_dir / "lab" / "user-settings" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))


def server_env(home: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment, which every kernel it starts inherits.

    User-level Jupyter/IPython directories move under `home`; the venv's own
    `share/jupyter` (kernelspec, ipywidgets lab extension) is still found via
    sys.prefix. The repo root goes on PYTHONPATH so kernels import this checkout.
    """
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_SCRUBBED_ENV_PREFIXES)
    }
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), base.get("PYTHONPATH")]))
    base.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
        PYTHONPATH=pythonpath,
        PYTHONUNBUFFERED="1",
    )
    # Kernels are launched as "python -m ipykernel_launcher"; jupyter_client swaps
    # "python" for the server's sys.executable, and PATH covers anything else.
    base["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "")])
    base.update(env or {})
    return base


def start_server(
    kind: str, workdir: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> JupyterServer:
    """Start `jupyter lab` or `jupyter notebook` under `workdir` and wait until it answers."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    root_dir = workdir / "root"
    home = workdir / "home"
    root_dir.mkdir(parents=True, exist_ok=True)
    _write_config(home / "config")
    port = free_port()
    token = secrets.token_hex(16)
    log_path = workdir / "server.log"
    command = [
        sys.executable,
        "-m",
        "jupyter",
        kind,
        "--allow-root",
        "--no-browser",
        f"--IdentityProvider.token={token}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.terminals_enabled=False",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=root_dir,
            env=server_env(home, env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = JupyterServer(kind, port, token, root_dir, log_path, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"jupyter {kind} exited with {process.returncode}:\n{server.log_tail()}"
            )
        try:
            server.api("GET", "/api/status")
            return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise TimeoutError(f"jupyter {kind} did not answer in {timeout} s:\n{server.log_tail()}")


def create_notebook(server: JupyterServer, name: str, cells: list[str]) -> str:
    """Write notebook `name` with these code cells into the server's root; return its name.

    The kernelspec metadata is set so neither front end asks "Select Kernel".
    """
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": KERNELSPEC,
            "language_info": {"name": "python"},
        },
        "cells": [
            {
                "cell_type": "code",
                "id": f"cell-{index}",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": source,
            }
            for index, source in enumerate(cells)
        ],
    }
    server.api(
        "PUT",
        f"/api/contents/{quote(name)}",
        {"type": "notebook", "format": "json", "content": notebook},
    )
    return name


# Runs inside the page: find the notebook's panel in the shell of either front end and
# make one execute round-trip through the very kernel connection its cells will use.
_KERNEL_ROUND_TRIP = """
async ({path, marker, timeoutMs}) => {
  const app = window.jupyterapp;
  if (!app) return 'window.jupyterapp is missing (expose_app_in_browser)';
  let panel = null;
  for (const widget of app.shell.widgets('main')) {
    if (widget.context && widget.context.path === path) { panel = widget; break; }
  }
  if (!panel) return 'no panel for ' + path;
  await panel.context.ready;
  await panel.sessionContext.ready;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel) return 'no kernel yet';
  if (kernel.connectionStatus !== 'connected') return 'kernel ' + kernel.connectionStatus;
  let out = '';
  const future = kernel.requestExecute(
    {code: 'print(' + JSON.stringify(marker) + ')', silent: false, store_history: false}
  );
  future.onIOPub = (msg) => {
    if (msg.header.msg_type === 'stream') out += msg.content.text;
  };
  const timer = new Promise((resolve) => setTimeout(() => resolve('timeout'), timeoutMs));
  const result = await Promise.race([future.done.then(() => 'done'), timer]);
  if (result !== 'done') { future.dispose(); return 'no reply in ' + timeoutMs + ' ms'; }
  return out.includes(marker) ? 'ready' : 'unexpected output: ' + out;
}
"""


def open_notebook(page: Page, server: JupyterServer, name: str, timeout: float = 60) -> None:
    """Open notebook `name` and return once its kernel has answered an execute request.

    Checking the status indicator is not enough: a cell run while the kernel is still
    connecting can be lost, so this makes a real round-trip (without adding a cell).
    """
    page.goto(server.notebook_url(name))
    notebook_locator(page).wait_for(timeout=timeout * 1000)
    dismiss_dialogs(page)
    deadline = time.monotonic() + timeout
    marker = f"kernel-ready-{secrets.token_hex(4)}"
    status = "not tried"
    while time.monotonic() < deadline:
        status = page.evaluate(
            _KERNEL_ROUND_TRIP, {"path": name, "marker": marker, "timeoutMs": 10_000}
        )
        if status == "ready":
            return
        dismiss_dialogs(page)
        time.sleep(0.25)
    raise TimeoutError(f"kernel for {name} not ready in {timeout} s: {status}\n{server.log_tail()}")


def dismiss_dialogs(page: Page) -> None:
    """Close any modal dialog (e.g. "Select Kernel") by accepting its default button."""
    dialogs = page.locator(".jp-Dialog")
    while dialogs.count():
        accept = dialogs.first.locator(".jp-Dialog-button.jp-mod-accept")
        if accept.count():
            accept.first.click()
        else:
            page.keyboard.press("Escape")
        dialogs.first.wait_for(state="detached", timeout=5_000)


def notebook_locator(page: Page) -> Locator:
    """The visible notebook (hidden tabs in Lab are skipped)."""
    return page.locator(".jp-Notebook").filter(visible=True).first


def cell_locator(page: Page, index: int) -> Locator:
    """Cell `index` (0-based, code and markdown alike) of the visible notebook."""
    return notebook_locator(page).locator(".jp-Cell").nth(index)


def cell_output_locator(page: Page, index: int) -> Locator:
    """The output area of cell `index`."""
    return cell_locator(page, index).locator(".jp-Cell-outputArea")


def cell_count(page: Page) -> int:
    """How many cells the visible notebook has."""
    return notebook_locator(page).locator(".jp-Cell").count()


def select_cell(page: Page, index: int) -> None:
    """Make cell `index` the active cell, in command mode."""
    cell = cell_locator(page, index)
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputPrompt").click()
    expect(cell).to_have_class(re.compile(r"\bjp-mod-active\b"))


def run_cell(page: Page, index: int) -> None:
    """Run cell `index` with Ctrl+Enter: unlike Shift+Enter it never appends a new cell."""
    select_cell(page, index)
    page.keyboard.press("Control+Enter")


def set_cell_source(page: Page, index: int, text: str) -> None:
    """Replace the source of cell `index` with `text`, verbatim (no auto-indent)."""
    editor = cell_locator(page, index).locator(".jp-InputArea-editor .cm-content")
    editor.click()
    page.keyboard.press("ControlOrMeta+a")
    if text:
        page.keyboard.insert_text(text)
    else:
        page.keyboard.press("Delete")
    page.keyboard.press("Escape")


def append_cell(page: Page, text: str = "") -> int:
    """Add a code cell holding `text` at the end of the notebook and return its index."""
    count = cell_count(page)
    if count:
        select_cell(page, count - 1)
        page.keyboard.press("b")
    else:
        notebook_locator(page).click()
    expect(notebook_locator(page).locator(".jp-Cell")).to_have_count(count + 1)
    set_cell_source(page, count, text)
    return count


def append_and_run(page: Page, code: str) -> int:
    """Add a code cell holding `code` at the end, run it, and return its index."""
    index = append_cell(page, code)
    run_cell(page, index)
    return index


def wait_for_output(page: Page, index: int, text: str, timeout: float = 30) -> Locator:
    """Wait until the output of cell `index` contains `text`; fail with what it shows instead."""
    output = cell_output_locator(page, index)
    try:
        expect(output).to_contain_text(text, timeout=timeout * 1000)
    except AssertionError as err:
        shown = output.inner_text() if output.count() else "<no output area>"
        raise AssertionError(
            f"cell {index} output has no {text!r} after {timeout} s; it shows:\n{shown}"
        ) from err
    return output


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG as test-artifacts/<name>.png at the repo root; return the path."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    path = ARTIFACTS_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=path, full_page=True)
    return path


def is_loopback(url: str) -> bool:
    """True for requests that stay on this machine's 127.0.0.1, or never hit a network."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.hostname == "127.0.0.1"


def assert_only_loopback(urls: list[str]) -> None:
    """Fail listing every URL that went (or tried to go) anywhere but 127.0.0.1."""
    outside = [url for url in urls if not is_loopback(url)]
    assert not outside, f"requests left 127.0.0.1: {outside}"
