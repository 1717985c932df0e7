// Atelier Studio's chat: the reply appears as it is written (the API's SSE reply to a message), then
// becomes the stored turn. Uses studio.js's api() and problem display.
"use strict";

function chatForm(form) {
  const chat = document.querySelector("[data-chat]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(form);
    const input = form.querySelector("textarea");
    const text = input.value;
    const response = await api("POST", form.dataset.ask, { text }, { Accept: "text/event-stream" });
    if (!response.ok) return showProblems(form, await problemOf(response));
    input.value = "";
    const turn = document.createElement("li");
    turn.className = "turn";
    turn.innerHTML = '<p class="user"><span class="label">You</span> </p><div class="assistant"><span class="label">Atelier</span> <p data-reply data-streaming></p><ol class="live-phases"></ol></div>';
    turn.querySelector(".user").append(text);
    chat.append(turn);
    const reply = turn.querySelector("[data-reply]");
    if (!(response.headers.get("content-type") || "").includes("text/event-stream")) {
      reply.textContent = (await response.json()).text;
      return;
    }
    let take = null;
    await readEvents(response, (type, data) => {
      if (type === "text") {
        const key = `${data.attempt}/${data.take}`;
        if (take !== null && key !== take) reply.textContent = "";  // a retried reply starts over
        take = key;
        reply.textContent += data.text;
        reply.dataset.pieces = String(Number(reply.dataset.pieces || 0) + 1);
      } else if (type === "phase") {
        const item = document.createElement("li");
        item.textContent = `${data.phase}: ${data.summary}`;
        turn.querySelector(".live-phases").append(item);
      } else if (type === "reply") {
        reply.textContent = data.text;
        delete reply.dataset.streaming;
        turn.id = `turn-${data.turn}`;
        if (data.citations?.length) reply.after(citationsOf(data.citations));
      } else if (type === "error") {
        showProblems(form, { detail: data.detail });
      }
    });
  });
}

// As the page renders them: a document's passage, or an earlier turn of this conversation.
function citationsOf(citations) {
  const line = document.createElement("p");
  line.className = "citations";
  line.append("Sources: ");
  citations.forEach((c, n) => {
    const link = document.createElement("a");
    const [doc, chunk] = c.ref.split("#");
    link.href = c.source === "kb" ? `/knowledge/${encodeURIComponent(doc)}${chunk === undefined ? "" : `#chunk-${chunk}`}`
      : `#${c.ref.replaceAll(" ", "-")}`;
    link.textContent = c.title;
    line.append(link, n < citations.length - 1 ? ", " : "");
  });
  return line;
}

async function readEvents(response, handle) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = "message", data = "";
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) handle(type, JSON.parse(data));
    }
  }
}

document.addEventListener("DOMContentLoaded", () => document.querySelectorAll("form[data-ask]").forEach(chatForm));
