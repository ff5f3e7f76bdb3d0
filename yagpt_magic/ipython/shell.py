"""What the views need from IPython's shell: the running cell's id, and where a reply goes.

``%%chat`` and the ``%chat`` commands that answer with a reply (``explain``) share these,
so a reply looks and updates the same whichever of them asked.
"""

from __future__ import annotations

import sys
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.session import ChatSession
    from ..core.settings import Settings
    from ..display.reply import ReplyDisplay, Show


def cell_id(shell: Any) -> str | None:
    """The front end's id of the running cell (JupyterLab, Notebook 7), if it sent one."""
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return None
    try:
        parent = kernel.get_parent("shell")
    except TypeError:
        parent = kernel.get_parent()
    cell = ((parent or {}).get("metadata") or {}).get("cellId")
    return cell if isinstance(cell, str) else None


def publisher(shell: Any) -> Show:
    """One output for a reply, created once and then updated in place.

    The bundle is already known, so it goes straight to the display publisher;
    ``display()`` would first ask every formatter (~0.3 ms a turn) for nothing.
    """
    display_id = uuid.uuid4().hex
    shown = False

    def show(data: dict[str, str], metadata: dict[str, Any]) -> None:
        nonlocal shown
        shell.display_pub.publish(data=data, metadata=metadata,
                                  transient={"display_id": display_id}, update=shown)
        shown = True

    return show


def _echo(text: str) -> None:
    """Write a piece of a reply to a terminal at once."""
    sys.stdout.write(text)
    sys.stdout.flush()


def reply_display(shell: Any, thread: str, settings: Settings) -> ReplyDisplay:
    """A ``ReplyDisplay`` for this shell: an output updated in place, or, in a terminal
    (no kernel, so no output to update), the reply printed as it grows."""
    from ..display.reply import ReplyDisplay

    terminal = not hasattr(shell, "kernel")
    return ReplyDisplay(publisher(shell), thread=thread, settings=settings,
                        echo=_echo if terminal else None, renew=lambda: publisher(shell))


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
