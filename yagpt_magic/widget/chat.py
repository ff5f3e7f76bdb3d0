"""The chat widget: the same threads as ``%%chat``, in standard ipywidgets.

``ChatWidget`` is a view over ``ChatSession``, like the magics: it asks through
``session.ask`` and redraws from ``session.subscribe`` events, so a turn made by a
``%%chat`` cell, another widget, ``%chat reset``/``undo``/``load`` or a cell re-run
shows up here as it happens, and a widget turn is context for the next ``%%chat``.

Why it is built the way it is:

- Requests run on a worker thread. A widget callback runs on the kernel's main
  thread; blocking it for a reply would freeze every other cell and widget. The
  worker streams into a "live" Output (throttled by ``display.reply.Throttle``), Stop sets
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
- A reply streams through ``display.reply.ReplyDisplay``, the same object ``%%chat`` uses, into
  the pending turn's Output. Replies are HTML that ``render.reply_html`` rendered and
  sanitized (through ``ReplyView``), so raw HTML, script links and remote images in a
  reply stay inert whichever front end shows them (SPEC 10); user messages are plain text.
- The widget knows only the session: it reads ``session.settings`` and calls
  ``session.ask``; it never reaches the magics.
- The habits of a chat box (Enter sends, Up recalls, the history scrolls and follows
  the newest reply, Copy / Insert-below on code blocks) need front-end code that
  standard ipywidgets lack: ``front.ChatBehavior``, an invisible anywidget
  child, adds them to these standard controls.
- Regenerate and Edit redo the last turn as a new version of it, committed in place
  when the reply completes (``session.ask(at=...)``: the rules of a cell re-run).
- Images (SPEC 15): an attach button (ipywidgets' ``FileUpload``), shown only while
  the model in the selector reads images; each file is checked as ``%%chat --image``
  checks it (PNG/JPEG/WebP by its bytes, at most 3 MiB) as soon as it arrives, listed
  under the box, and goes with the next message; it is cleared once that turn commits.
- Displayed, the widget is followed by a static ``text/html`` transcript output (kept
  current, hidden while the live widget is drawn) for a saved notebook reopened
  without its kernel; a terminal gets one line instead.

Key controls carry ``yagpt-*`` CSS classes (``static/chat.css``) for tests and user CSS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..core.errors import ChatError, UsageProblem
from ..core.models import API_TITLES, MODELS, api_for, checked_model, lookup, reads_images
from ..core.session import EventKind, ThreadEvent
from ..display.reply import ReplyDisplay, ReplyView, ask_and_show
from ..ipython.cells import KEEP as CELLS_KEPT
from .approval import ToolPanel
from .front import ChatBehavior, StaticTranscript, TextLine, turn_meta
from .turn_view import Outputs, TurnView, bundle_of, descendants, plain

if TYPE_CHECKING:
    from ..core.backend import RequestOptions
    from ..core.conversation import Turn
    from ..core.images import Image
    from ..core.session import ChatSession
    from ..core.settings import Settings
    from ..core.structured import Schema

__all__ = ["ChatWidget"]


BUSY = (
    "busy: a reply is still being written; wait for it or press Stop "
    "(a queued message would be sent without that reply as context)."
)

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
            from ..ipython.shell import current_session

            session = current_session()
        self.session = session
        self.schema: Schema | None = None
        if schema is not None:
            from ..core.structured import schema_of

            self.schema = schema_of(schema)
        self.value: Any = None
        self.thread_name = thread
        session.thread(thread)
        settings = session.settings
        self._lock = threading.RLock()
        self._turns: list[TurnView] = []
        self._links: list[widgets.VBox] = []
        self._pending: TurnView | None = None
        self._worker: threading.Thread | None = None
        self._cancel: threading.Event | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._editing: int | None = None
        self.transcript = StaticTranscript(
            session, thread,
            lambda turn: self._reply_outputs(turn.reply, turn.status, turn.images)[0]["data"])
        #: Images attached for the next message (SPEC 15), already checked.
        self.attached: list[Image] = []

        # One Layout model each, shared by every turn: a new turn opens no Layout comms.
        self._layouts = {
            "box": widgets.Layout(margin="0 0 8px 0"),
            # Colours and borders are in static/chat.css, so they follow the theme.
            "user": widgets.Layout(),
            "reply": widgets.Layout(),
            "link": widgets.Layout(),
            "meta": widgets.Layout(height="auto"),
        }
        # A bounded log: it scrolls inside its height instead of pushing the box down.
        self.history = self._box("yagpt-history", layout=widgets.Layout(
            width="100%", max_height=settings.widget_height, overflow="auto",
            flex="0 0 auto"))
        self._tail = self._new_link()
        controls = self._controls(settings)
        super().__init__(
            [self.history, self.tool_panel, self.message_box, controls, self.attached_line,
             self.usage_line, self.status_line, self.behavior],
            **kwargs,
        )
        self.add_class("yagpt-chat")
        with self._lock:
            self._rebuild()
        self._unsubscribe = session.subscribe(self._on_event)
        self._ready = True

    def _controls(self, settings: Settings) -> widgets.HBox:
        """The message box, buttons, model box, slider and lines, wired to their handlers;
        returns the row of controls that goes under the message box."""
        send_key, newline = (("Enter", "Shift+Enter") if settings.widget_send_key == "enter"
                             else ("Shift+Enter", "Enter"))
        self.message_box = widgets.Textarea(
            placeholder=f"Message YandexGPT ({send_key} sends, {newline} for a new line, "
                        "Up recalls the last message)",
            # Full width less the widget margins, so it lines up with the history.
            layout=widgets.Layout(width="calc(100% - 2 * var(--jp-widgets-margin, 2px))",
                                  height="5em"),
        )
        self.send_button = widgets.Button(description="Send", button_style="primary",
                                          tooltip="Send the message (one at a time)")
        self.stop_button = widgets.Button(description="Stop", disabled=True,
                                          tooltip="Cancel the reply being written")
        self.clear_button = widgets.Button(description="Clear",
                                           tooltip="Empty this thread (same as %chat reset)")
        self.regenerate_button = widgets.Button(
            description="Regenerate", tooltip="Ask again for the last reply (replaces it)")
        self.edit_button = widgets.Button(
            description="Edit last", tooltip="Edit the last message and send it again "
                                             "(replaces that turn); Esc cancels")
        self.behavior = ChatBehavior(send_key=settings.widget_send_key)
        self.behavior.on_msg(self._on_front_message)
        # The catalogue (core.models): the user picks a model, the model picks the API.
        models = dict.fromkeys((*(m.name for m in MODELS), settings.model))
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
        self.attach_button = widgets.FileUpload(
            accept="image/png,image/jpeg,image/webp", multiple=True,
            description="Attach image", tooltip="Images go with the next message "
                                                "(for a model that reads images)")
        # SPEC 16: what %%chat --cells N does, for the next messages sent from here.
        self.cells_toggle = widgets.Checkbox(
            value=False, description="with the last cells", indent=False,
            tooltip="Send the last code cells this kernel ran (source, result or error) "
                    "before each new message, as %%chat --cells N does",
            layout=widgets.Layout(width="auto"),
        )
        self.cells_count = widgets.BoundedIntText(
            value=3, min=1, max=CELLS_KEPT, tooltip="How many of the last code cells",
            layout=widgets.Layout(width="4.5em"),
        )
        # Text lines, not Labels: a Label's text is typeset by MathJax (front.TextLine).
        self.attached_line = TextLine()
        self.usage_line = TextLine()
        self.status_line = TextLine("idle")
        self.tool_panel = ToolPanel()  # SPEC 12: calls as they happen, Run / Don't run
        self._wire_controls()
        return widgets.HBox(
            [self.send_button, self.stop_button, self.regenerate_button, self.edit_button,
             self.clear_button, self.model_box, self.temperature_slider, self.attach_button,
             self.cells_toggle, self.cells_count],
            layout=widgets.Layout(flex_flow="row wrap"),
        )

    def _wire_controls(self) -> None:
        """Name each control for the style sheet and the browser tests; connect handlers."""
        for widget, name in (
            (self.message_box, "yagpt-input"),
            (self.send_button, "yagpt-send"),
            (self.stop_button, "yagpt-stop"),
            (self.clear_button, "yagpt-clear"),
            (self.regenerate_button, "yagpt-regenerate"),
            (self.edit_button, "yagpt-edit"),
            (self.model_box, "yagpt-model"),
            (self.attach_button, "yagpt-attach"),
            (self.attached_line, "yagpt-attached"),
            (self.temperature_slider, "yagpt-temperature"),
            (self.cells_toggle, "yagpt-cells"),
            (self.cells_count, "yagpt-cells-count"),
            (self.usage_line, "yagpt-usage"),
            (self.status_line, "yagpt-status"),
        ):
            widget.add_class(name)
        self.send_button.on_click(self._on_send)
        self.stop_button.on_click(self._on_stop)
        self.clear_button.on_click(self._on_clear)
        self.regenerate_button.on_click(self._on_regenerate)
        self.edit_button.on_click(self._on_edit)
        self.attach_button.observe(self._on_attach, names="value")
        self.model_box.observe(self._on_model, names="value")
        self._on_model()

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
                for child in descendants(self):
                    child.close()
        super().close()

    # -- building blocks ---------------------------------------------------------------
    def _box(self, css: str, **kwargs: Any) -> widgets.VBox:
        box = widgets.VBox(**kwargs)
        box.add_class(css)
        return box

    def _new_link(self) -> widgets.VBox:
        link = widgets.VBox(layout=self._layouts["link"])
        self._links.append(link)
        return link

    def _reply_outputs(self, text: str, status: str = "", images: tuple[Image, ...] = ()
                       ) -> Outputs:
        settings = self.session.settings
        view = ReplyView(thread=self.thread_name, text=text, status=status,
                         allow_html=settings.allow_html, image_hosts=settings.image_hosts,
                         images=images)
        return bundle_of(view._repr_mimebundle_()[0])

    def _turn_view(self, user: str, reply: Outputs, *, live: bool = False) -> TurnView:
        user_out = widgets.Output(outputs=plain(user), layout=self._layouts["user"],
                                  _dom_classes=("yagpt-user",))
        classes = ("yagpt-reply", "yagpt-live") if live else ("yagpt-reply",)
        reply_out = widgets.Output(outputs=reply, layout=self._layouts["reply"],
                                   _dom_classes=classes)
        meta = TextLine(layout=self._layouts["meta"], _dom_classes=("yagpt-meta",))
        box = widgets.VBox((user_out, reply_out, meta), layout=self._layouts["box"],
                           _dom_classes=("yagpt-turn",))
        return TurnView(box, user_out, reply_out, meta)

    def _view_of(self, turn: Turn, index: int) -> TurnView:
        view = self._turn_view(turn.user,
                               self._reply_outputs(turn.reply, turn.status, turn.images))
        view.meta.value = turn_meta(turn, index)
        if turn.stale:
            self._mark_stale(view, True)
        return view

    def _attach(self, view: TurnView) -> None:
        """Add a turn at the end: only the tail's children change, whatever came before."""
        link, self._tail = self._tail, self._new_link()
        link.children = (view.box, self._tail)
        view.holder = link

    def _detach(self, view: TurnView) -> None:
        if view.holder is not None:
            view.holder.children = tuple(c for c in view.holder.children if c is not view.box)
            view.holder = None

    def _mark_stale(self, view: TurnView, stale: bool) -> None:
        if stale and view.note is None:
            view.note = TextLine(
                "⚠ stale: an earlier turn was re-run after this reply was written",
                _dom_classes=("yagpt-stale-note",),
            )
            view.box.add_class("yagpt-stale")
            view.relayout()
        elif not stale and view.note is not None:
            view.box.remove_class("yagpt-stale")
            view.note.close()
            view.note = None
            view.relayout()

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
        self._turns = [self._view_of(turn, i) for i, turn in enumerate(thread.turns)]
        self._tail = self._new_link()
        self.history.children = (*(v.box for v in self._turns), self._tail)
        for view in self._turns:
            view.holder = self.history
        if self._pending is not None:
            if self._pending.at is None:
                self._attach(self._pending)
            else:  # the turn it was replacing is gone; its reply will come in as a new turn
                self._pending = None
        self._end_edit()
        self._update_usage()

    def _update_usage(self) -> None:
        thread = self.session.thread(self.thread_name)
        if thread.turns and self.behavior.recall != thread.turns[-1].user:
            self.behavior.recall = thread.turns[-1].user
        # The chosen model's window and API (the box may differ from the notebook's model).
        chosen = self._chosen_model()
        window = self.session.window(self.session.options(model=chosen))
        # Named from the table, so whatever is typed in the box is never echoed here.
        found = lookup(chosen)
        model = (f"{found.title if found else 'a model not in the built-in table'}: "
                 f"{API_TITLES[api_for(chosen)]}")
        if not thread.turns:
            self.usage_line.value = (f"thread {self.thread_name!r}: no turns yet · {model}, "
                                     f"{window}-token window")
            return
        last = thread.turns[-1].usage
        # The last request carried the thread as it was fitted, so its size is what the
        # thread takes of the window now (a sum over turns would count context twice).
        self.usage_line.value = (
            f"thread {self.thread_name!r}: {len(thread.turns)} "
            f"turn{'' if len(thread.turns) == 1 else 's'}, {last.total_tokens} of "
            f"{window} tokens in the window · last turn: {last.input_tokens} in, "
            f"{last.completion_tokens} out · {model}"
        )

    def _set_busy(self, busy: bool) -> None:
        # Regenerate and Edit stay enabled (they refuse while busy, with the reason): two
        # more toggles would cost four more comm messages per turn.
        self.send_button.disabled = busy
        self.clear_button.disabled = busy
        self.stop_button.disabled = not busy

    def _end_edit(self) -> None:
        if self._editing is not None:
            self._editing = None
            self.behavior.editing = False
            self.edit_button.description = "Edit last"
            for view in self._turns:
                view.box.remove_class("yagpt-editing")

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
            self.transcript.update()

    def _on_commit(self, index: int) -> None:
        thread = self.session.thread(self.thread_name)
        turn = thread.turns[index]
        pending = self._pending
        if pending is not None and pending.worker is threading.current_thread():
            # Our own request finished: the live turn becomes the committed one (its
            # final output comes from the ReplyDisplay that streamed it).
            self._pending = None
            pending.reply.remove_class("yagpt-live")
            if pending.at is None and index == len(self._turns):
                self._turns.append(pending)
            elif pending.at != index or index >= len(self._turns):
                self._detach(pending)
                pending.close()
                self._rebuild()
                return
        elif index == len(self._turns):
            self._turns.append(self._view_of(turn, index))
            self._attach(self._turns[-1])
        elif index < len(self._turns):
            # A cell re-run replaced this turn: update it alone.
            view = self._turns[index]
            view.user.outputs = plain(turn.user)
            view.reply.outputs = self._reply_outputs(turn.reply, turn.status, turn.images)
        else:
            self._rebuild()
            return
        if self._editing is not None and self._editing >= index:
            self._end_edit()
        view = self._turns[index]
        view.meta.value = turn_meta(turn, index)
        if self._worker is None and self.status_line.value.startswith("error: "):
            self.status_line.value = "idle"  # a later turn (a cell's) succeeded on this thread
        self._mark_stale(view, turn.stale)
        # Flag the later turns a replacement made stale.
        for at, (later, shown) in enumerate(
            zip(thread.turns[index + 1 :], self._turns[index + 1 :]), start=index + 1
        ):
            self._mark_stale(shown, later.stale)
            shown.meta.value = turn_meta(later, at)
        self._update_usage()

    # -- images (SPEC 15) ------------------------------------------------------------------
    def _on_model(self, _change: Any = None) -> None:
        """The usage line names the chosen model's API and window; the attach button is
        there only while the chosen model reads images."""
        sees = reads_images(self._chosen_model())
        self.attach_button.layout.display = None if sees else "none"
        self.attached_line.layout.display = None if sees else "none"
        if getattr(self, "_ready", False):  # during __init__, _rebuild shows the line
            self._update_usage()

    def _chosen_model(self) -> str:
        return self.model_box.value.strip() or self.session.settings.model

    def _on_attach(self, change: dict[str, Any]) -> None:
        """Files arrived: check each now (a bad one is named in the status line, not kept)."""
        from ..core.images import Image

        refused = []
        for upload in change["new"] or ():
            try:
                self.attached.append(Image.from_bytes(bytes(upload["content"]),
                                                      str(upload["name"])))
            except UsageProblem as err:
                refused.append(str(err))
        if change["new"]:
            self.attach_button.value = ()  # the same file may be attached again later
        self._show_attached()
        if refused:
            self.status_line.value = "error: " + " ".join(refused)

    def _show_attached(self) -> None:
        self.attached_line.value = ("attached for the next message: "
                                    + "; ".join(i.label for i in self.attached)
                                    if self.attached else "")

    # -- buttons (the kernel's main thread: never block here) --------------------------
    def _on_send(self, _button: Any = None) -> None:
        self._start(self.message_box.value, self._editing)

    def _on_regenerate(self, _button: Any = None) -> None:
        turns = self.session.thread(self.thread_name).turns
        if not turns:
            self.status_line.value = "error: there is no reply to regenerate yet."
            return
        self._end_edit()
        self._start(turns[-1].user, len(turns) - 1, keep_box=True)

    def _on_edit(self, _button: Any = None) -> None:
        if self._editing is not None:
            self._end_edit()
            self.message_box.value = ""
            self.status_line.value = "idle: edit cancelled."
            return
        turns = self.session.thread(self.thread_name).turns
        if not turns or self._worker is not None:
            self.status_line.value = (BUSY if turns else
                                      "error: there is no message to edit yet.")
            return
        self._editing = len(turns) - 1
        self.behavior.editing = True
        self.edit_button.description = "Cancel edit"
        self._turns[-1].box.add_class("yagpt-editing")
        self.message_box.value = turns[-1].user
        self.status_line.value = (f"editing message #{len(turns)}: Send replaces that turn; "
                                  "Esc or Cancel edit leaves it as it is.")

    def _on_front_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        """A key the front end handles: Enter sends what is in the box, Esc ends an edit."""
        event = content.get("event") if isinstance(content, dict) else None
        if event == "send":
            text = str(content.get("text", ""))
            if not self._start(text, self._editing) and text.strip():
                # Refused (busy): the front end may have cleared the box; give it back.
                self.behavior.send({"event": "restore", "text": text})
        elif event == "cancel-edit" and self._editing is not None:
            self._on_edit()

    def _start(self, text: str, at: int | None, *, keep_box: bool = False) -> bool:
        """Send ``text`` as a new turn, or as a new version of turn ``at``; False if refused."""
        with self._lock:
            if self._worker is not None:
                self.status_line.value = BUSY
                return False
            if not text.strip():
                self.status_line.value = "error: the message is empty; type it above Send."
                return False
            if at is not None and at >= len(self._turns):
                self._end_edit()
                self.status_line.value = "error: that turn is gone; send the message as new."
                return False
            try:
                model = checked_model(self.model_box.value, "The model box")
            except UsageProblem as err:
                self.status_line.value = f"error: {err}"
                return False
            options = self.session.options(model=model,
                                           temperature=self.temperature_slider.value)
            try:
                sent, note = self._with_cells(text, at, options)
            except ChatError as err:
                self.status_line.value = f"error: {err}"
                return False
            cancel = threading.Event()
            # A new version of a cell's turn stays that cell's turn: re-running the cell
            # later replaces it again instead of adding one.
            turns = self.session.thread(self.thread_name).turns
            cell_id = None if at is None else turns[at].cell_id
            if at is None:
                pending = self._turn_view(sent, (), live=True)
                self._attach(pending)
            else:  # a new version of turn `at`: it streams where the old one was
                pending = self._turns[at]
                pending.at = at
                pending.user.outputs = plain(text)
                pending.reply.outputs = ()
                pending.reply.add_class("yagpt-live")
            # A new turn takes what is attached; a new version of a turn, that turn's images.
            images = tuple(self.attached) if at is None else turns[at].images
            worker = threading.Thread(
                target=self._run,
                args=(sent, options, cancel, pending, cell_id, images, note, text),
                name=f"yagpt-widget-{self.thread_name}", daemon=True,
            )
            pending.worker = worker
            self._pending, self._worker, self._cancel = pending, worker, cancel
            if not keep_box:
                self.message_box.value = ""
            self._set_busy(True)
            self.status_line.value = "sending…" if at is None else f"replacing turn #{at + 1}…"
        worker.start()
        return True

    def _with_cells(self, text: str, at: int | None,
                    options: RequestOptions) -> tuple[str, str]:
        """A new message after the last cells when the toggle is on, and the note on them.

        A regenerated or edited turn already holds the cells it was sent with, so only
        new messages get them (never twice).
        """
        if at is not None or not self.cells_toggle.value:
            return text, ""
        from ..core.images import IMAGE_TOKENS
        from ..ipython.cells import cells_context

        context = cells_context(self.session, self.thread_name, text, self.cells_count.value,
                                options, reserve=IMAGE_TOKENS * len(self.attached))
        return context.text, context.note(self.session.window(options))

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

    def _withdraw(self, pending: TurnView) -> None:
        """A request failed or was stopped: a new turn goes, a replaced one comes back."""
        thread = self.session.thread(self.thread_name)
        if pending.at is None:
            self._detach(pending)
            pending.close()
        elif pending.at < len(thread.turns):
            turn = thread.turns[pending.at]
            pending.user.outputs = plain(turn.user)
            pending.reply.outputs = self._reply_outputs(turn.reply, turn.status, turn.images)
            pending.reply.remove_class("yagpt-live")

    # -- display -----------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """The live widget; its text is one line, not ipywidgets' ``ChatWidget(children=…)``."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle:
            bundle["text/plain"] = (f"YandexGPT chat widget on thread {self.thread_name!r}: "
                                    "it needs a notebook front end (JupyterLab, Notebook 7).")
        return bundle

    def _ipython_display_(self) -> None:
        """Show the widget, and under it the static transcript a saved notebook keeps.

        JupyterLab draws a widget output of a reopened notebook as "model not found",
        whatever else its bundle holds, so the transcript is an output of its own: kept
        current (one display update per change of the thread), hidden by the widget's
        CSS while the live widget is drawn above it; when it is not, the transcript hides
        that error line (``front.HIDE_ERROR``).
        """
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)
        self.transcript.show()

    # -- the worker thread -------------------------------------------------------------
    def _run(
        self, text: str, options: RequestOptions, cancel: threading.Event, pending: TurnView,
        cell_id: str | None, images: tuple[Image, ...] = (), note: str = "",
        typed: str | None = None,
    ) -> None:
        """Ask on this worker thread; ``typed`` is what the user wrote, given back to the
        message box if nothing is committed (``text`` may hold the cells before it)."""
        streaming = False

        def show(data: dict[str, str], metadata: dict[str, Any]) -> None:
            nonlocal streaming
            with self._lock:
                if cancel.is_set() and not display.view.interrupted:
                    return  # stopping: the interrupted partial is shown by interrupt()
                pending.reply.outputs = bundle_of(data)
                if not streaming and display.view.text:
                    streaming = True
                    self.status_line.value = "streaming…"

        display = ReplyDisplay(show, thread=self.thread_name, settings=self.session.settings)
        display.view.context = note
        status = "idle"
        self.tool_panel.start(cancel)
        try:
            answer = ask_and_show(self.session, display, self.thread_name, text,
                                  options=options, cancel=cancel, at=pending.at,
                                  cell_id=cell_id, schema=self.schema,
                                  approve=self.tool_panel.approve,
                                  on_tool=self.tool_panel.show, images=images)
            if self.schema is not None:
                self.value = answer.value
            if images:  # sent and kept in the thread: no longer waiting for a message
                with self._lock:
                    self.attached = [i for i in self.attached if i not in images]
                    self._show_attached()
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
                    regenerated = pending.at is not None and text == self.behavior.recall
                    self._withdraw(pending)
                    if not self.message_box.value and not regenerated:
                        self.message_box.value = text if typed is None else typed
                pending.at = None
                if self._worker is threading.current_thread():
                    self._worker = None
                    self._cancel = None
                self._set_busy(False)
                self.status_line.value = status
