// A line of plain text for the chat widget (yagpt_magic/widget/front.py: TextLine).
//
// ipywidgets' Label hands its text to the notebook's MathJax, so a tool name or an error
// the model wrote as `$\href{…}{…}$` became a live link. Here the text is a text node
// in an element of its own: nothing typesets it, and the line's CSS (`::before` labels)
// sits on that inner element, which ipywidgets never marks as disconnected.

function render({ model, el }) {
  el.classList.add("yagpt-line");
  const text = document.createElement("span");
  text.className = "yagpt-text";
  el.appendChild(text);
  const show = () => {
    text.textContent = model.get("value");
  };
  show();
  model.on("change:value", show);
  return () => model.off("change:value", show);
}

export default { render };
