// Shared by every page: posting with the CSRF token, drawing core's results, and the event stream.
"use strict";

const imagebot = (() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  function nonce() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ ...body, nonce: nonce() }),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({ error: "The server sent something unreadable." }));
    if (!response.ok) throw new Error(data.error || `Error ${response.status}`);
    return data;
  }

  function element(tag, attributes = {}, text = "") {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  }

  // One card per request: its status line, progress, images and buttons.
  function card(list, requestId, atTop = false) {
    let node = list.querySelector(`li.card[data-request-id="${requestId}"]`);
    if (!node) {
      node = element("li", { class: "card", "data-request-id": requestId });
      node.append(element("p", { class: "status" }));
      if (atTop) list.prepend(node); else list.append(node);
    }
    return node;
  }

  function setStatus(node, text) {
    node.querySelector(".status").textContent = text;
  }

  function showProgress(node, view) {
    let bar = node.querySelector("progress");
    if (!bar) {
      bar = element("progress", { max: "1", value: "0" });
      node.querySelector(".status").after(bar);
    }
    if (view.total) {
      bar.max = view.total;
      bar.value = view.step || 0;
      node.dataset.progress = `${view.step}/${view.total}`;
    }
    if (view.preview) {
      let img = node.querySelector("img.preview");
      if (!img) { img = element("img", { class: "preview", alt: "Preview" }); bar.after(img); }
      img.src = view.preview;
    }
  }

  function showImages(node, view, onPress) {
    node.querySelectorAll(".images, .buttons, img.preview").forEach((old) => old.remove());
    const images = element("div", { class: `images n${view.images.length}` });
    for (const image of view.images) {
      const figure = element("figure");
      const img = element("img", {
        src: image.src, width: image.width, height: image.height,
        alt: `Image ${image.index + 1}${image.seed != null ? `, seed ${image.seed}` : ""}`,
      });
      if (image.spoiler) img.classList.add("spoiler");
      figure.append(img);
      const caption = element("figcaption");
      caption.append(element("a", { href: image.src, target: "_blank", rel: "noopener" }, `${image.index + 1}`));
      figure.append(caption);
      images.append(figure);
    }
    node.append(images);
    const buttons = element("div", { class: "buttons" });
    for (const row of view.buttons || []) {
      const line = element("div", { class: "row" });
      for (const button of row) {
        const b = element("button", { type: "button", "data-button": button.id }, button.label);
        b.addEventListener("click", () => onPress(button.id, b));
        line.append(b);
      }
      buttons.append(line);
    }
    node.append(buttons);
  }

  // Draw any view (queued, progress, done, failed, a single image) into its card.
  const RANK = { queued: 0, started: 1, progress: 2 };
  const rank = (kind) => (kind in RANK ? RANK[kind] : 3);

  function render(list, view, onPress, atTop = false) {
    const node = card(list, view.request_id, atTop);
    if (node.dataset.kind && rank(view.kind) < rank(node.dataset.kind)) return node; // a late "queued"
    node.dataset.kind = view.kind;
    setStatus(node, view.text || "");
    if (view.kind === "started" || view.kind === "progress") showProgress(node, view);
    else node.querySelectorAll("img.preview").forEach((old) => old.remove()); // ended: no live preview stays
    if (view.kind === "deleted") node.querySelectorAll(".images, .buttons, progress").forEach((old) => old.remove());
    if (view.images) {
      const bar = node.querySelector("progress");
      if (bar && bar.max) bar.value = bar.max;
      showImages(node, view, onPress);
    }
    return node;
  }

  // A result button: core decides what it does, the page shows what came back (a queued job, an image, a
  // question to answer, the region editor to open…). `hooks.onView` hears every view drawn.
  async function press(list, buttonId, answer, hooks) {
    const view = await post("/api/press", answer ? { button: buttonId, answer } : { button: buttonId });
    if (view.kind === "navigate") {
      window.location.assign(view.href);
      return view;
    }
    if (view.kind === "image") view.request_id = `${view.request_id}-${view.images[0].index}`;
    if (view.kind === "info" || view.kind === "ask") view.request_id = `${view.request_id}-${Date.now()}`;
    const node = render(list, view, hooks.onPress, hooks.atTop);
    if (view.kind === "ask") askForm(list, node, view, hooks);
    hooks.onView(view, node);
    return view;
  }

  function askForm(list, node, view, hooks) {
    const form = element("form", { class: "ask" });
    const input = element("input", {
      name: "answer", maxlength: "2000", required: "",
      placeholder: view.factor ? "1.1 to 2.0, e.g. 1.5" : "the prompt",
    });
    input.value = view.factor ? "" : view.prompt || "";
    form.append(input, element("button", { type: "submit" }, "Go"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await press(list, view.button, view.factor ? { factor: input.value } : { prompt: input.value }, hooks);
        form.remove();
      } catch (error) {
        setStatus(node, error.message);
      }
    });
    node.append(form);
    input.focus();
  }

  // Server-sent events for this visitor; `pending` ids are fetched again when the stream (re)opens.
  function listen(onView, pending) {
    const source = new EventSource("/api/events");
    source.addEventListener("open", async () => {
      document.body.dataset.live = "1";
      for (const id of pending()) {
        const response = await fetch(`/api/result/${id}`, { credentials: "same-origin" });
        if (response.ok) {
          const view = await response.json();
          if (view.kind !== "pending") onView(view);
        }
      }
    });
    source.addEventListener("message", (message) => onView(JSON.parse(message.data)));
    return source;
  }

  return { post, element, render, listen, press };
})();
