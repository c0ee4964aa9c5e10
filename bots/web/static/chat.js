// The chat page: /imagine as you type it in the bots, results with the same buttons.
"use strict";

(() => {
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("prompt");
  const waiting = new Set();

  function said(text, kind = "you") {
    const item = imagebot.element("li", { class: `line ${kind}` }, text);
    list.append(item);
    item.scrollIntoView({ block: "end" });
  }

  function onView(view) {
    const node = imagebot.render(list, view, press);
    if (!["queued", "started", "progress"].includes(view.kind)) waiting.delete(view.request_id);
    node.scrollIntoView({ block: "end" });
  }

  const hooks = {
    onPress: press,
    onView(view, node) {
      if (view.kind === "queued") waiting.add(view.request_id);
      node.scrollIntoView({ block: "end" });
    },
  };

  async function press(buttonId, button) {
    button.disabled = true;
    said(button.textContent);
    try {
      await imagebot.press(list, buttonId, null, hooks);
    } catch (error) {
      said(error.message, "error");
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    said(`/imagine ${text}`);
    input.value = "";
    try {
      const view = await imagebot.post("/api/imagine", { text });
      waiting.add(view.request_id);
      onView(view);
    } catch (error) {
      said(error.message, "error");
    }
  });

  imagebot.listen(onView, () => [...waiting]);
})();
