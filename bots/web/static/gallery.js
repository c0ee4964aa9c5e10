// The gallery: your finished results, newest first, with their parameters, buttons and delete.
"use strict";

(() => {
  const list = document.getElementById("results");
  const status = document.getElementById("status");
  const waiting = new Set();

  function parameters(view) {
    const p = view.parameters;
    const dl = imagebot.element("dl", { class: "parameters" });
    const rows = [["Prompt", p.prompt], ["Not", p.negative], ["Size", p.size], ["Steps", p.steps],
      ["Guidance", p.guidance], ["Model", p.model], ["Mode", p.mode], ["Seeds", p.seeds.join(", ")]];
    for (const [name, value] of rows) {
      if (value === "" || value == null) continue;
      dl.append(imagebot.element("dt", {}, name), imagebot.element("dd", {}, String(value)));
    }
    return dl;
  }

  function deleteButton(view, node) {
    const button = imagebot.element("button", { type: "button", class: "delete" }, "Delete");
    button.addEventListener("click", async () => {
      if (button.dataset.armed !== "1") {
        button.dataset.armed = "1";
        button.textContent = "Delete for good?";
        return;
      }
      try {
        await imagebot.post("/api/delete", { request_id: view.request_id });
        node.remove();
        status.textContent = "Deleted.";
      } catch (error) {
        status.textContent = error.message;
      }
    });
    return button;
  }

  const hooks = {
    onPress: press,
    atTop: true,
    onView(view, node) {
      if (view.kind === "queued") {
        waiting.add(view.request_id);
        status.textContent = view.text;
        node.remove(); // the new result appears in the gallery when it is done
      } else {
        node.scrollIntoView();
      }
    },
  };

  async function press(buttonId, button) {
    button.disabled = true;
    try {
      await imagebot.press(list, buttonId, null, hooks);
    } catch (error) {
      status.textContent = error.message;
    } finally {
      button.disabled = false;
    }
  }

  // A page of results (the newest, or those older than `older`), appended; "Older" fetches the next page.
  async function load(older = null) {
    const query = older ? `?older=${encodeURIComponent(older)}` : "";
    const response = await fetch(`/api/gallery${query}`, { credentials: "same-origin" });
    const data = await response.json();
    if (!response.ok) { status.textContent = data.error; return; }
    if (!older) list.replaceChildren();
    for (const view of data.results) {
      const node = imagebot.render(list, view, press);
      node.append(parameters(view), deleteButton(view, node));
    }
    more.hidden = !data.older;
    more.dataset.older = data.older || "";
    status.textContent = data.total ? `${data.total} results, newest first.` : "Nothing here yet: make something on the chat page.";
  }

  const more = imagebot.element("button", { type: "button", id: "older", hidden: "" }, "Older");
  more.addEventListener("click", () => load(more.dataset.older));
  list.after(more);

  imagebot.listen((view) => {
    if (!waiting.has(view.request_id)) return;
    if (["queued", "started", "progress"].includes(view.kind)) { status.textContent = view.text; return; }
    waiting.delete(view.request_id);
    status.textContent = view.kind === "done" ? "A new result is in." : view.text;
    if (view.kind === "done") load();
  }, () => [...waiting]);
  load();
})();
