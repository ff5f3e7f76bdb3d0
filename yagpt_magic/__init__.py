"""Chat with YandexGPT from IPython and Jupyter.

``%load_ext yagpt_magic`` registers ``%%chat`` and ``%chat``. It imports neither the
SDK nor gRPC: those load on the first request, so loading stays instant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core.session import ChatSession

__version__ = "0.1.0"
__all__ = ["ChatMagics", "ChatSession", "ChatWidget", "current_session",
           "load_ipython_extension", "map", "unload_ipython_extension"]

#: Attribute on the shell that keeps threads across %unload_ext / %reload_ext.
_KEPT = "_yagpt_magic_threads"


def load_ipython_extension(shell: Any) -> None:
    """Build one ``ChatMagics`` and register it; threads kept by an unload come back."""
    from .ipython.magics import ChatMagics

    magics = ChatMagics(shell)
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
    if magics._session is not None:
        setattr(shell, _KEPT, magics._session.threads)
        magics._session.close()
    for kind in ("line", "cell"):
        registry = shell.magics_manager.magics[kind]
        if getattr(registry.get("chat"), "__self__", None) is magics:
            del registry["chat"]
    shell.magics_manager.registry.pop(type(magics).__name__, None)
    shell.configurables = [c for c in shell.configurables if c is not magics]
    del shell._yagpt_magic


def current_session(shell: Any = None) -> ChatSession:
    """The running shell's chat session, loading the extension if it is not loaded yet."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            raise RuntimeError("yagpt_magic needs a running IPython; or pass a ChatSession.")
    if getattr(shell, "_yagpt_magic", None) is None:
        shell.extension_manager.load_extension("yagpt_magic")
    session: ChatSession = shell._yagpt_magic.session
    return session


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
    raise AttributeError(name)
