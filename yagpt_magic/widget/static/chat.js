// The chat widget's front-end habits (yagpt_magic/widget/front.py says why each exists).
//
// This view draws nothing of its own: it finds the ChatWidget it sits in (`.yagpt-chat`)
// and adds keyboard, scrolling and code-block behaviour to the standard ipywidgets
// there. Reply HTML is never built or parsed here: the buttons are new elements placed
// next to the <pre> blocks the notebook's own renderer already drew from our bundle.

const FOLLOW_SLACK = 32; // px from the bottom that still counts as "at the newest reply"

function button(label, cls, title, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = `yagpt-tool ${cls}`;
  b.textContent = label;
  b.title = title;
  b.addEventListener("mousedown", (e) => e.stopPropagation());
  b.addEventListener("click", (e) => {
    e.preventDefault();
    e.stopPropagation();
    onClick(b);
  });
  return b;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (_err) {
    // Clipboard API refused (no permission, insecure origin): the classic fallback.
    const area = document.createElement("textarea");
    area.value = text;
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

function flash(b, text) {
  const old = b.textContent;
  b.textContent = text;
  setTimeout(() => { b.textContent = old; }, 1500);
}

// The rendered text of a reply, without the buttons we added to it.
function replyText(reply) {
  const area = reply.querySelector(".jp-OutputArea, .output_area") || reply;
  const clone = area.cloneNode(true);
  clone.querySelectorAll(".yagpt-tools, .yagpt-tool").forEach((n) => n.remove());
  document.body.appendChild(clone); // innerText needs layout for line breaks
  clone.style.position = "fixed";
  clone.style.left = "-10000px";
  const text = clone.innerText.trim();
  clone.remove();
  return text;
}

function waitFor(find, timeout) {
  return new Promise((resolve) => {
    const until = Date.now() + timeout;
    const tick = () => {
      const found = find();
      if (found || Date.now() > until) resolve(found || null);
      else setTimeout(tick, 50);
    };
    tick();
  });
}

// Insert-below: the notebook's own "insert a cell below" command (its toolbar button),
// run on the widget's cell, then the code is pasted into the new cell's editor. The
// cell is never run. Works in JupyterLab 4 and Notebook 7, which share the notebook.
async function insertBelow(chat, code) {
  const cell = chat.closest(".jp-Cell");
  const panel = chat.closest(".jp-NotebookPanel");
  if (!cell || !panel) return "Insert below needs JupyterLab or Notebook 7.";
  const selector = '[data-command="notebook:insert-cell-below"]';
  // The notebook runs its commands on the active cell: make it the widget's cell.
  const prompt = cell.querySelector(".jp-InputPrompt") || cell;
  prompt.dispatchEvent(new MouseEvent("mousedown", { bubbles: true, button: 0 }));
  prompt.dispatchEvent(new MouseEvent("mouseup", { bubbles: true, button: 0 }));
  const ready = await waitFor(() => cell.classList.contains("jp-mod-active"), 2000);
  if (!ready) return "Insert failed: could not select the widget's cell.";
  // The notebook toolbar's button, else the active cell's own toolbar (either may be hidden).
  const command = panel.querySelector(`.jp-NotebookPanel-toolbar ${selector}`) ||
    cell.querySelector(selector);
  if (!command) {
    return "Insert below needs the notebook toolbar (View › Show Notebook Toolbar).";
  }
  const before = cell.nextElementSibling;
  command.dispatchEvent(new MouseEvent("mousedown", { bubbles: true, button: 0 }));
  command.click();
  const added = await waitFor(() => {
    const next = cell.nextElementSibling;
    return next && next !== before && next.classList.contains("jp-Cell") ? next : null;
  }, 3000);
  const editor = added && await waitFor(() => added.querySelector(".cm-content"), 3000);
  if (!editor) return "Insert failed: no new cell appeared.";
  editor.focus();
  const data = new DataTransfer();
  data.setData("text/plain", code);
  editor.dispatchEvent(new ClipboardEvent("paste", {
    clipboardData: data, bubbles: true, cancelable: true,
  }));
  return "";
}

function decorate(chat, say) {
  for (const pre of chat.querySelectorAll(".yagpt-reply pre")) {
    if (pre.dataset.yagptTools || pre.closest(".yagpt-live")) continue;
    pre.dataset.yagptTools = "1";
    const code = () => (pre.querySelector("code") || pre).textContent;
    const bar = document.createElement("div");
    bar.className = "yagpt-tools yagpt-code-tools";
    bar.append(
      button("Copy", "yagpt-code-copy", "Copy this code", async (b) => {
        flash(b, (await copyText(code())) ? "Copied" : "Copy failed");
      }),
      button("Insert below", "yagpt-code-insert",
        "Put this code into a new cell below the widget's cell (not run)", async (b) => {
          const problem = await insertBelow(chat, code());
          if (problem) say(problem);
          else flash(b, "Inserted");
        }),
    );
    pre.parentNode.insertBefore(bar, pre);
  }
  for (const reply of chat.querySelectorAll(".yagpt-reply")) {
    if (reply.classList.contains("yagpt-live") || reply.querySelector(":scope > .yagpt-copy-reply")) continue;
    reply.appendChild(button("Copy reply", "yagpt-copy-reply", "Copy the whole reply", async (b) => {
      flash(b, (await copyText(replyText(reply))) ? "Copied" : "Copy failed");
    }));
  }
}

function attach(model, chat) {
  const history = chat.querySelector(".yagpt-history");
  const input = () => chat.querySelector(".yagpt-input textarea");
  // The status line is a TextLine: its text lives in the inner .yagpt-text node.
  const say = (text) => {
    const status = chat.querySelector(".yagpt-status .yagpt-text");
    if (status) status.textContent = text;
  };
  let follow = true;

  const send = () => {
    const box = input();
    if (!box) return;
    const text = box.value;
    const sendButton = chat.querySelector("button.yagpt-send");
    const busy = sendButton && sendButton.disabled;
    follow = true;
    model.send({ event: "send", text });
    if (!busy && text.trim()) {
      // Clear here, through the textarea's own input event: a value update still
      // queued by the widget manager then carries "" and cannot bring the text back.
      box.value = "";
      box.dispatchEvent(new Event("input", { bubbles: true }));
    }
    box.focus();
  };
  const restore = (text) => {
    const box = input();
    if (box && box.value === "") {
      box.value = text;
      box.dispatchEvent(new Event("input", { bubbles: true }));
    }
  };
  const onMessage = (msg) => {
    if (msg && msg.event === "restore") restore(msg.text || "");
  };
  model.on("msg:custom", onMessage);
  const onKey = (e) => {
    const box = input();
    if (!box || e.target !== box) return;
    if (e.key === "Enter" && !e.isComposing && !e.ctrlKey && !e.altKey && !e.metaKey) {
      const onEnter = model.get("send_key") !== "shift-enter";
      if (onEnter !== e.shiftKey) {
        e.preventDefault();
        e.stopPropagation();
        send();
      }
    } else if (e.key === "ArrowUp" && box.value === "" && model.get("recall")) {
      e.preventDefault();
      const last = model.get("recall");
      box.value = last;
      box.setSelectionRange(last.length, last.length);
      box.dispatchEvent(new Event("input", { bubbles: true })); // the model learns the value
    } else if (e.key === "Escape" && model.get("editing")) {
      e.preventDefault();
      model.send({ event: "cancel-edit" });
    }
  };
  const onClick = (e) => {
    // A click on Send (or Regenerate, Edit) leaves the caret in the message box.
    const b = e.target.closest && e.target.closest("button.yagpt-send, button.yagpt-edit");
    if (b) { follow = true; setTimeout(() => { const box = input(); if (box) box.focus(); }, 0); }
  };
  // Notebook 7 (and JupyterLab with capturing shortcuts) handle keys at the document
  // before the textarea sees them: Shift+Enter there would re-run the widget's cell.
  // Lumino skips shortcuts for targets inside an element with this attribute.
  const inputArea = chat.querySelector(".yagpt-input");
  if (inputArea) inputArea.setAttribute("data-lm-suppress-shortcuts", "true");
  chat.addEventListener("keydown", onKey, true);
  chat.addEventListener("click", onClick, true);
  // A click outside the chat box leaves the message box: the notebook only takes focus
  // back when nothing inside it has focus, and its shortcuts (A, B, …) need it.
  const onOutside = (e) => {
    const box = input();
    if (box && document.activeElement === box && !chat.contains(e.target)) box.blur();
  };
  document.addEventListener("mousedown", onOutside, true);

  const onScroll = () => {
    follow = history.scrollHeight - history.scrollTop - history.clientHeight <= FOLLOW_SLACK;
  };
  // Scrolling up stops following at once: the scroll event itself comes a frame later,
  // and a streamed update in between would pull the user back down.
  const onWheel = (e) => { if (e.deltaY < 0) follow = false; };
  const onTouch = () => { follow = false; };
  history.addEventListener("scroll", onScroll, { passive: true });
  history.addEventListener("wheel", onWheel, { passive: true });
  history.addEventListener("touchstart", onTouch, { passive: true });
  const update = () => {
    decorate(chat, say);
    if (follow) history.scrollTop = history.scrollHeight;
  };
  const observer = new MutationObserver(update);
  observer.observe(history, {
    childList: true, subtree: true, characterData: true, attributes: true,
    attributeFilter: ["class"], // a reply stops being "live": its code blocks get buttons
  });
  const sized = new ResizeObserver(update);
  sized.observe(history);
  update();
  chat.classList.add("yagpt-ready");
  return () => {
    model.off("msg:custom", onMessage);
    observer.disconnect();
    sized.disconnect();
    chat.removeEventListener("keydown", onKey, true);
    chat.removeEventListener("click", onClick, true);
    document.removeEventListener("mousedown", onOutside, true);
    history.removeEventListener("scroll", onScroll);
    history.removeEventListener("wheel", onWheel);
    history.removeEventListener("touchstart", onTouch);
  };
}

function render({ model, el }) {
  el.classList.add("yagpt-behavior");
  let detach = null;
  let gone = false;
  // The chat box's children are drawn asynchronously: wait until this view is inside it.
  const find = () => {
    if (gone) return;
    const chat = el.closest(".yagpt-chat");
    if (chat && chat.querySelector(".yagpt-history") && chat.querySelector(".yagpt-input textarea")) {
      if (!chat.classList.contains("yagpt-ready")) detach = attach(model, chat);
    } else {
      setTimeout(find, 50);
    }
  };
  find();
  return () => {
    gone = true;
    if (detach) detach();
  };
}

export default { render };
