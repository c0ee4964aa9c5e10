// The region editor: paint the part to change (brush, rectangle, eraser), say what goes there, submit.
"use strict";

(() => {
  const main = document.getElementById("region");
  const canvas = document.getElementById("mask");
  const marquee = document.getElementById("marquee");
  const size = document.getElementById("size");
  const status = document.getElementById("status");
  const list = document.getElementById("messages");
  const prompt = document.getElementById("region-prompt");
  const ctx = canvas.getContext("2d");
  const waiting = new Set();
  let drawing = null;
  const hooks = {
    onPress: press,
    onView(view, node) {
      if (view.kind === "queued") waiting.add(view.request_id);
      node.scrollIntoView({ block: "end" });
    },
  };

  async function press(buttonId, button) {  // the result's buttons work here as on the chat page
    button.disabled = true;
    try {
      await imagebot.press(list, buttonId, null, hooks);
    } catch (error) {
      status.textContent = error.message;
    } finally {
      button.disabled = false;
    }
  }

  prompt.value = main.dataset.prompt;
  const tool = () => document.querySelector('input[name="tool"]:checked').value;

  function point(event) {
    const box = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * canvas.width) / box.width,
      y: ((event.clientY - box.top) * canvas.height) / box.height,
      cx: event.clientX - box.left,
      cy: event.clientY - box.top,
    };
  }

  function stroke(from, to) {
    const scale = canvas.width / canvas.getBoundingClientRect().width;
    ctx.globalCompositeOperation = tool() === "eraser" ? "destination-out" : "source-over";
    ctx.strokeStyle = "#ff2d55";
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = Number(size.value) * scale;
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x + 0.01, to.y);
    ctx.stroke();
  }

  function showMarquee(a, b) {
    marquee.hidden = false;
    marquee.style.left = `${Math.min(a.cx, b.cx)}px`;
    marquee.style.top = `${Math.min(a.cy, b.cy)}px`;
    marquee.style.width = `${Math.abs(a.cx - b.cx)}px`;
    marquee.style.height = `${Math.abs(a.cy - b.cy)}px`;
  }

  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    drawing = { start: point(event), last: point(event) };
    if (tool() !== "rect") stroke(drawing.start, drawing.start);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const here = point(event);
    if (tool() === "rect") showMarquee(drawing.start, here);
    else stroke(drawing.last, here);
    drawing.last = here;
  });
  canvas.addEventListener("pointerup", (event) => {
    if (!drawing) return;
    const here = point(event);
    if (tool() === "rect") {
      ctx.globalCompositeOperation = "source-over";
      ctx.fillStyle = "#ff2d55";
      const { start } = drawing;
      ctx.fillRect(Math.min(start.x, here.x), Math.min(start.y, here.y), Math.abs(here.x - start.x), Math.abs(here.y - start.y));
      marquee.hidden = true;
    }
    drawing = null;
    main.dataset.painted = "1";
  });
  document.getElementById("clear").addEventListener("click", () => {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
  });

  // White where painted, black elsewhere, at the image's own size: what core takes as the mask.
  function maskDataUrl() {
    const white = document.createElement("canvas");
    white.width = canvas.width;
    white.height = canvas.height;
    const w = white.getContext("2d");
    w.drawImage(canvas, 0, 0);
    w.globalCompositeOperation = "source-in";
    w.fillStyle = "#ffffff";
    w.fillRect(0, 0, white.width, white.height);
    const out = document.createElement("canvas");
    out.width = canvas.width;
    out.height = canvas.height;
    const o = out.getContext("2d");
    o.fillStyle = "#000000";
    o.fillRect(0, 0, out.width, out.height);
    o.drawImage(white, 0, 0);
    return out.toDataURL("image/png");
  }

  document.getElementById("edit").addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "Sending…";
    try {
      const view = await imagebot.post("/api/region", {
        request_id: main.dataset.requestId,
        index: Number(main.dataset.index),
        prompt: prompt.value,
        mask: maskDataUrl(),
      });
      waiting.add(view.request_id);
      status.textContent = view.text;
      imagebot.render(list, view, press);
    } catch (error) {
      status.textContent = error.message;
    }
  });

  imagebot.listen((view) => {
    if (!waiting.has(view.request_id)) return;
    status.textContent = view.text;
    imagebot.render(list, view, press);
  }, () => [...waiting]);
})();
