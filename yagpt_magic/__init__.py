"""Chat with YandexGPT from IPython and Jupyter.

``%load_ext yagpt_magic`` registers ``%%chat`` and ``%chat``. It imports neither the
SDK nor gRPC: those load on the first request, so loading stays instant.

This root is the composition root: the one module that knows every layer. It gives
the magic (``ipython/``) the ``%chat`` commands that live in the layers below it
(``widget/``, ``bulk/``, ``transcript/``) and the ``--map`` runner (``bulk/``), by
name, so that each loads only when it is used.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .core import __version__ as __version__

if TYPE_CHECKING:
    from .core.session import ChatSession
    from .ipython.commands import CommandTable

__all__ = ["ChatMagics", "ChatSession", "ChatWidget", "current_session",
           "load_ipython_extension", "map", "unload_ipython_extension"]

#: Attribute on the shell that keeps threads across %unload_ext / %reload_ext.
_KEPT = "_yagpt_magic_threads"

_IPYTHON = "yagpt_magic.ipython.commands"
_TRANSCRIPT = "yagpt_magic.transcript.commands"
#: Every ``%chat`` command, in the order ``%chat help`` lists them, and the module that
#: runs it: in the layer it belongs to.
COMMANDS: dict[str, str] = {
    "help": f"{_IPYTHON}.help", "history": f"{_IPYTHON}.history",
    "threads": f"{_IPYTHON}.threads", "system": f"{_IPYTHON}.system",
    "undo": f"{_IPYTHON}.undo", "reset": f"{_IPYTHON}.reset", "usage": f"{_IPYTHON}.usage",
    "config": f"{_IPYTHON}.config", "models": f"{_IPYTHON}.models",
    "login": f"{_IPYTHON}.login", "offline": f"{_IPYTHON}.offline",
    "save": f"{_TRANSCRIPT}.save", "load": f"{_TRANSCRIPT}.load",
    "record": f"{_TRANSCRIPT}.record", "replay": f"{_TRANSCRIPT}.replay",
    "live": f"{_TRANSCRIPT}.live", "restore": f"{_TRANSCRIPT}.restore",
    "widget": "yagpt_magic.widget.command",
    "code": f"{_IPYTHON}.code", "explain": f"{_IPYTHON}.explain",
    "batch": "yagpt_magic.bulk.commands.batch", "cache": "yagpt_magic.bulk.commands.cache",
}


def command_table() -> CommandTable:
    """Every ``%chat`` command, for the magic (and for tests of the commands alone)."""
    from .ipython.commands import CommandTable

    return CommandTable(COMMANDS)


def run_map_cell(session: ChatSession, ns: dict[str, Any], args: argparse.Namespace,
                 cell: str) -> Any:
    """``%%chat --map``: ``bulk/`` loads on the first such cell, not at ``%load_ext``."""
    from .bulk.cell import run_map_cell as run

    return run(session, ns, args, cell)


def load_ipython_extension(shell: Any) -> None:
    """Build one ``ChatMagics`` and register it; threads kept by an unload come back."""
    from .ipython.magics import ChatMagics

    magics = ChatMagics(shell, commands=command_table(), run_map=run_map_cell)
    kept = getattr(shell, _KEPT, None)
    if kept:
        magics.session.threads.update(kept)
    shell.register_magics(magics)
    magics.cells.register()  # the code cells run from now on, for --cells
    shell._yagpt_magic = magics


def unload_ipython_extension(shell: Any) -> None:
    """Undo exactly what loading did, keeping the threads on the shell for a reload."""
    magics = getattr(shell, "_yagpt_magic", None)
    if magics is None:
        return
    magics.cells.unregister()
    threads = magics.close()
    if threads:
        setattr(shell, _KEPT, threads)
    for kind in ("line", "cell"):
        registry = shell.magics_manager.magics[kind]
        if getattr(registry.get("chat"), "__self__", None) is magics:
            del registry["chat"]
    shell.magics_manager.registry.pop(type(magics).__name__, None)
    shell.configurables = [c for c in shell.configurables if c is not magics]
    del shell._yagpt_magic


def map(  # noqa: A001 - the public name the spec gives: yagpt_magic.map(template, data)
    template: str,
    data: Any,
    *,
    column: str = "reply",
    system: str | None = None,
    concurrency: int | None = None,
    parse: Callable[[str], Any] | None = None,
    model: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    progress: bool = True,
    fresh: bool = False,
    session: ChatSession | None = None,
) -> Any:
    """``%%chat --map`` as a function: one independent request per row, in row order.

    ``template`` has ``{column}`` fields (``{item}`` for a list of strings). Returns a
    list, or for a DataFrame a copy with the new ``column`` (one column per field when
    ``parse`` returns dicts; a field never replaces an input column). A failed row
    holds its error object. Answered rows are cached on disk, so calling again after an
    interrupt sends only the rest; ``fresh=True`` sends every row again. Interrupted,
    it raises ``Interrupted`` whose ``result`` holds the rows answered so far.
    """
    from .bulk.mapping import run_map, shaped
    from .core.errors import Interrupted
    from .ipython.shell import current_session

    session = session if session is not None else current_session()
    options = session.options(model=model, temperature=temperature, max_tokens=max_tokens,
                              stream=False)
    try:
        values, _ = run_map(session, template, data, column=column, system=system,
                            concurrency=concurrency, parse=parse, options=options,
                            progress=progress, fresh=fresh)
    except Interrupted as stopped:
        partial = getattr(stopped, "values", None)
        if partial is not None:
            stopped.result = shaped(data, column, partial)  # type: ignore[attr-defined]
        raise
    return shaped(data, column, values)


def __getattr__(name: str) -> Any:
    # Public names load on first use so that importing the package stays cheap.
    if name == "ChatMagics":
        from .ipython.magics import ChatMagics

        return ChatMagics
    if name == "ChatSession":
        from .core.session import ChatSession

        return ChatSession
    if name == "ChatWidget":
        from .widget.chat import ChatWidget

        return ChatWidget
    if name == "current_session":
        from .ipython.shell import current_session

        return current_session
    raise AttributeError(name)
