"""The chat widget: the same threads as ``%%chat``, in standard ipywidgets.

``ChatWidget`` is a view over ``ChatSession``, like the magics: it asks through
``session.ask`` and redraws from ``session.subscribe`` events, so a turn made by a
``%%chat`` cell, another widget, ``%chat reset``/``undo``/``load`` or a cell re-run
shows up here as it happens, and a widget turn is context for the next ``%%chat``.

Why it is built the way it is:

- Requests run on a worker thread. A widget callback runs on the kernel's main
  thread; blocking it for a reply would freeze every other cell and widget. The
  worker streams into a "live" Output (throttled by ``view.Throttle``), Stop sets
  the request's cancel event, and errors land in the status line.
- One request at a time per widget. A second Send while a reply is being written is
  refused, not queued: the queued message would go out with a context that lacks
  the reply still being written, so the model would answer a conversation the user
  never saw. (The session refuses a second concurrent ask on a thread for the same
  reason.)
- A new turn costs the same comm traffic however long the history is. Appending to
  a Box's ``children`` resends every child's id, so the history is a chain: the
  last child of the history is an empty "tail" box, and a new turn is added with
  ``tail.children = (turn, new_tail)``. A full rebuild (reset, load) lays the turns
  out flat again. Re-running a cell updates that turn's Outputs only.
- A reply streams through ``view.ReplyDisplay``, the same object ``%%chat`` uses, into
  the pending turn's Output. Replies are HTML that ``render.reply_html`` rendered and
  sanitized (through ``ReplyView``), so raw HTML, script links and remote images in a
  reply stay inert whichever front end shows them (SPEC 10); user messages are plain text.
- The widget knows only the session: it reads ``session.settings`` and calls
  ``session.ask``; it never reaches the magics.

Key controls carry CSS classes (``yagpt-chat``, ``yagpt-history``, ``yagpt-turn``,
``yagpt-user``, ``yagpt-reply``, ``yagpt-live``, ``yagpt-stale``, ``yagpt-input``,
``yagpt-send``, ``yagpt-stop``, ``yagpt-clear``, ``yagpt-model``,
``yagpt-temperature``, ``yagpt-usage``, ``yagpt-status``) so browser tests and user
CSS can find them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from .errors import ChatError
from .session import EventKind, ThreadEvent
from .tool_widget import ToolPanel
from .view import ReplyDisplay, ReplyView, ask_and_show

if TYPE_CHECKING:
    from .backend import RequestOptions
    from .conversation import Turn
    from .session import ChatSession
    from .structured import Schema

__all__ = ["ChatWidget"]


MODELS = ("yandexgpt", "yandexgpt-lite")
BUSY = (
    "busy: a reply is still being written; wait for it or press Stop "
    "(a queued message would be sent without that reply as context)."
)

Outputs = tuple[dict[str, Any], ...]


def _plain(text: str) -> Outputs:
    return ({"output_type": "display_data", "data": {"text/plain": text}, "metadata": {}},)


def _bundle(data: dict[str, str]) -> Outputs:
    return ({"output_type": "display_data", "data": data, "metadata": {}},)


@dataclass
class _TurnView:
    """The widgets showing one turn, and the box that holds it in the history."""

    box: widgets.VBox
    user: widgets.Output
    reply: widgets.Output
    holder: widgets.Box | None = None
    note: widgets.Label | None = None
    worker: threading.Thread | None = field(default=None, repr=False)

    def close(self) -> None:
        for widget in (self.note, self.user, self.reply, self.box):
            if widget is not None:
                widget.close()


class ChatWidget(widgets.VBox):
    """A chat box on one thread, shared live with ``%%chat`` and other widgets.

    ``ChatWidget(schema=Fact)`` asks every reply for JSON that fits ``Fact``, as
    ``%%chat --schema`` does; ``widget.value`` holds the last validated object.
    """

    def __init__(
        self, thread: str = "default", session: ChatSession | None = None, *,
        schema: Any = None, **kwargs: Any
    ) -> None:
        if session is None:
            from . import current_session

            session = current_session()
        self.session = session
        self.schema: Schema | None = None
        if schema is not None:
            from .structured import schema_of

            self.schema = schema_of(schema)
        self.value: Any = None
        self.thread_name = thread
        session.thread(thread)
        settings = session.settings
        self._lock = threading.RLock()
        self._turns: list[_TurnView] = []
        self._links: list[widgets.VBox] = []
        self._pending: _TurnView | None = None
        self._worker: threading.Thread | None = None
        self._cancel: threading.Event | None = None
        self._unsubscribe: Callable[[], None] | None = None

        # One Layout model each, shared by every turn: a new turn opens no Layout comms.
        self._layouts = {
            "box": widgets.Layout(margin="0 0 8px 0"),
            "user": widgets.Layout(border_left="3px solid #9e9e9e", padding="0 0 0 6px"),
            "reply": widgets.Layout(padding="0 0 0 9px"),
            "link": widgets.Layout(),
        }
        self.history = self._box("yagpt-history", layout=widgets.Layout(width="100%"))
        self._tail = self._new_link()
        self.message_box = widgets.Textarea(
            placeholder="Message YandexGPT, then press Send",
            layout=widgets.Layout(width="100%", height="5em"),
        )
        self.send_button = widgets.Button(description="Send", button_style="primary",
                                          tooltip="Send the message (one at a time)")
        self.stop_button = widgets.Button(description="Stop", disabled=True,
                                          tooltip="Cancel the reply being written")
        self.clear_button = widgets.Button(description="Clear",
                                           tooltip="Empty this thread (same as %chat reset)")
        models = dict.fromkeys((*MODELS, settings.model))
        self.model_box = widgets.Combobox(
            value=settings.model, options=tuple(models), ensure_option=False,
            description="model", layout=widgets.Layout(width="16em"),
            style={"description_width": "initial"},
        )
        self.temperature_slider = widgets.FloatSlider(
            value=settings.temperature, min=0.0, max=1.0, step=0.05,
            description="temperature", readout_format=".2f",
            style={"description_width": "initial"},
        )
        self.usage_line = widgets.Label()
        self.status_line = widgets.Label("idle")
        self.tool_panel = ToolPanel()  # SPEC 12: calls as they happen, Run / Don't run
        for widget, name in (
            (self.message_box, "yagpt-input"),
            (self.send_button, "yagpt-send"),
            (self.stop_button, "yagpt-stop"),
            (self.clear_button, "yagpt-clear"),
            (self.model_box, "yagpt-model"),
            (self.temperature_slider, "yagpt-temperature"),
            (self.usage_line, "yagpt-usage"),
            (self.status_line, "yagpt-status"),
        ):
            widget.add_class(name)
        self.send_button.on_click(self._on_send)
        self.stop_button.on_click(self._on_stop)
        self.clear_button.on_click(self._on_clear)
        controls = widgets.HBox(
            [self.send_button, self.stop_button, self.clear_button, self.model_box,
             self.temperature_slider],
            layout=widgets.Layout(flex_flow="row wrap"),
        )
        super().__init__(
            [self.history, self.tool_panel, self.message_box, controls, self.usage_line,
             self.status_line],
            **kwargs,
        )
        self.add_class("yagpt-chat")
        with self._lock:
            self._rebuild()
        self._unsubscribe = session.subscribe(self._on_event)
        self._ready = True

    # -- public ----------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while a reply is being requested or streamed."""
        return self._worker is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the request in flight ends (for scripts and tests); False on timeout."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            return not worker.is_alive()
        return True

    def close(self) -> None:
        """Stop listening to the session, cancel a request in flight, close every part."""
        if getattr(self, "_ready", False):  # also called by __del__, even after a failed init
            self._ready = False
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            if self._cancel is not None:
                self._cancel.set()
            with self._lock:
                self._clear_history()
                if self._pending is not None:
                    self._pending.close()
                    self._pending = None
                self._tail.close()
                for layout in self._layouts.values():
                    layout.close()
                for child in self._descendants(self):
                    child.close()
        super().close()

    # -- building blocks ---------------------------------------------------------------
    @staticmethod
    def _descendants(box: widgets.Box) -> list[widgets.Widget]:
        found: list[widgets.Widget] = []
        for child in box.children:
            if isinstance(child, widgets.Box):
                found.extend(ChatWidget._descendants(child))
            found.append(child)
            layout = getattr(child, "layout", None)
            if layout is not None:
                found.append(layout)
        return found

    def _box(self, css: str, **kwargs: Any) -> widgets.VBox:
        box = widgets.VBox(**kwargs)
        box.add_class(css)
        return box

    def _new_link(self) -> widgets.VBox:
        link = widgets.VBox(layout=self._layouts["link"])
        self._links.append(link)
        return link

    def _reply_outputs(self, text: str, status: str = "") -> Outputs:
        settings = self.session.settings
        view = ReplyView(thread=self.thread_name, text=text, status=status,
                         allow_html=settings.allow_html, image_hosts=settings.image_hosts)
        return _bundle(view._repr_mimebundle_()[0])

    def _turn_view(self, user: str, reply: Outputs, *, live: bool = False) -> _TurnView:
        user_out = widgets.Output(outputs=_plain(user), layout=self._layouts["user"],
                                  _dom_classes=("yagpt-user",))
        classes = ("yagpt-reply", "yagpt-live") if live else ("yagpt-reply",)
        reply_out = widgets.Output(outputs=reply, layout=self._layouts["reply"],
                                   _dom_classes=classes)
        box = widgets.VBox((user_out, reply_out), layout=self._layouts["box"],
                           _dom_classes=("yagpt-turn",))
        return _TurnView(box, user_out, reply_out)

    def _view_of(self, turn: Turn) -> _TurnView:
        view = self._turn_view(turn.user, self._reply_outputs(turn.reply, turn.status))
        if turn.stale:
            self._mark_stale(view, True)
        return view

    def _attach(self, view: _TurnView) -> None:
        """Add a turn at the end: only the tail's children change, whatever came before."""
        link, self._tail = self._tail, self._new_link()
        link.children = (view.box, self._tail)
        view.holder = link

    def _detach(self, view: _TurnView) -> None:
        if view.holder is not None:
            view.holder.children = tuple(c for c in view.holder.children if c is not view.box)
            view.holder = None

    def _mark_stale(self, view: _TurnView, stale: bool) -> None:
        if stale and view.note is None:
            view.note = widgets.Label(
                "⚠ stale: an earlier turn was re-run after this reply was written",
                _dom_classes=("yagpt-stale-note",),
            )
            view.box.add_class("yagpt-stale")
            view.box.children = (view.user, view.reply, view.note)
        elif not stale and view.note is not None:
            view.box.remove_class("yagpt-stale")
            view.box.children = (view.user, view.reply)
            view.note.close()
            view.note = None

    def _clear_history(self) -> None:
        for view in self._turns:
            view.close()
        self._turns = []
        for link in self._links:
            link.close()
        self._links = []

    def _rebuild(self) -> None:
        """Redraw the history from the thread: flat turns, then a fresh tail."""
        thread = self.session.thread(self.thread_name)
        self._clear_history()
        self._turns = [self._view_of(turn) for turn in thread.turns]
        self._tail = self._new_link()
        self.history.children = (*(v.box for v in self._turns), self._tail)
        for view in self._turns:
            view.holder = self.history
        if self._pending is not None:
            self._attach(self._pending)
        self._update_usage()

    def _update_usage(self) -> None:
        thread = self.session.thread(self.thread_name)
        if not thread.turns:
            self.usage_line.value = f"thread {self.thread_name!r}: no turns yet"
            return
        last, total = thread.turns[-1].usage, thread.usage
        self.usage_line.value = (
            f"last turn: {last.total_tokens} tokens ({last.input_tokens} in, "
            f"{last.completion_tokens} out) · thread {self.thread_name!r}: "
            f"{total.total_tokens} tokens in {len(thread.turns)} "
            f"turn{'' if len(thread.turns) == 1 else 's'}"
        )

    def _set_busy(self, busy: bool) -> None:
        self.send_button.disabled = busy
        self.clear_button.disabled = busy
        self.stop_button.disabled = not busy

    # -- session events (any thread) ---------------------------------------------------
    def _on_event(self, event: ThreadEvent) -> None:
        if event.thread != self.thread_name:
            return
        with self._lock:
            if event.kind is EventKind.COMMIT and event.index is not None:
                self._on_commit(event.index)
            elif (event.kind is EventKind.UNDO and event.index is not None
                  and len(self._turns) == event.index + 1):
                self._detach(self._turns[-1])
                self._turns.pop().close()
                self._update_usage()
            elif event.kind in (EventKind.RESET, EventKind.LOAD, EventKind.UNDO):
                self._rebuild()

    def _on_commit(self, index: int) -> None:
        thread = self.session.thread(self.thread_name)
        turn = thread.turns[index]
        pending = self._pending
        if index == len(self._turns):
            if pending is not None and pending.worker is threading.current_thread():
                # Our own request finished: the live turn becomes the committed one (its
                # final output comes from the ReplyDisplay that streamed it).
                pending.reply.remove_class("yagpt-live")
                self._pending = None
                self._turns.append(pending)
            else:
                view = self._view_of(turn)
                self._turns.append(view)
                self._attach(view)
        elif index < len(self._turns):
            # A cell re-run replaced this turn: update it alone, flag the later ones.
            view = self._turns[index]
            view.user.outputs = _plain(turn.user)
            view.reply.outputs = self._reply_outputs(turn.reply, turn.status)
            self._mark_stale(view, turn.stale)
            for later, shown in zip(thread.turns[index + 1 :], self._turns[index + 1 :]):
                self._mark_stale(shown, later.stale)
        else:
            self._rebuild()
            return
        self._update_usage()

    # -- buttons (the kernel's main thread: never block here) --------------------------
    def _on_send(self, _button: Any = None) -> None:
        text = self.message_box.value
        with self._lock:
            if self._worker is not None:
                self.status_line.value = BUSY
                return
            if not text.strip():
                self.status_line.value = "error: the message is empty; type it above Send."
                return
            options = self.session.options(
                model=self.model_box.value.strip() or None,
                temperature=self.temperature_slider.value,
            )
            cancel = threading.Event()
            pending = self._turn_view(text, (), live=True)
            worker = threading.Thread(
                target=self._run, args=(text, options, cancel, pending),
                name=f"yagpt-widget-{self.thread_name}", daemon=True,
            )
            pending.worker = worker
            self._pending, self._worker, self._cancel = pending, worker, cancel
            self._attach(pending)
            self.message_box.value = ""
            self._set_busy(True)
            self.status_line.value = "sending…"
        worker.start()

    def _on_stop(self, _button: Any = None) -> None:
        cancel = self._cancel
        if cancel is None:
            self.status_line.value = "idle: nothing to stop."
            return
        cancel.set()
        self.status_line.value = "stopping…"

    def _on_clear(self, _button: Any = None) -> None:
        if self._worker is not None:
            self.status_line.value = BUSY
            return
        self.session.reset(self.thread_name)
        self.status_line.value = "idle: thread cleared."

    # -- the worker thread -------------------------------------------------------------
    def _run(
        self, text: str, options: RequestOptions, cancel: threading.Event, pending: _TurnView
    ) -> None:
        streaming = False

        def show(data: dict[str, str], metadata: dict[str, Any]) -> None:
            nonlocal streaming
            with self._lock:
                if cancel.is_set() and not display.view.interrupted:
                    return  # stopping: the interrupted partial is shown by interrupt()
                pending.reply.outputs = _bundle(data)
                if not streaming and display.view.text:
                    streaming = True
                    self.status_line.value = "streaming…"

        display = ReplyDisplay(show, thread=self.thread_name, settings=self.session.settings)
        status = "idle"
        self.tool_panel.start(cancel)
        try:
            answer = ask_and_show(self.session, display, self.thread_name, text,
                                  options=options, cancel=cancel, schema=self.schema,
                                  approve=self.tool_panel.approve,
                                  on_tool=self.tool_panel.show)
            if self.schema is not None:
                self.value = answer.value
        except ChatError as err:
            status = (
                "stopped: the partial reply was not added to the thread."
                if cancel.is_set()
                else f"error: {err}"
            )
        except Exception as err:  # noqa: BLE001 - a worker must report, never die silently
            status = f"error: {type(err).__name__}: {err}"
        finally:
            with self._lock:
                if self._pending is pending:  # not committed: take the turn back out
                    self._pending = None
                    self._detach(pending)
                    pending.close()
                    if not self.message_box.value:
                        self.message_box.value = text
                if self._worker is threading.current_thread():
                    self._worker = None
                    self._cancel = None
                self._set_busy(False)
                self.status_line.value = status
