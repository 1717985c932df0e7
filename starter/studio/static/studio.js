// Atelier Studio: the few things a server-rendered page cannot do alone. No build step, no dependencies.
// Every call goes to the same /v1 API any client uses; a browser's unsafe call carries the page's CSRF token.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
const TERMINAL = ["run.completed", "run.failed", "run.cancelled"];
const EVENTS = ["run.started", "run.progress", "iteration.completed", "character.created", "post.created",
  "image.created", ...TERMINAL];

async function api(method, url, body, headers = {}) {
  const init = { method, headers: { "X-CSRF-Token": csrf(), ...headers }, credentials: "same-origin" };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return fetch(url, init);
}

async function problemOf(response) {
  try { return await response.json(); } catch { return { title: response.statusText, status: response.status }; }
}

// Field by field, as the API names them (`body.options.quality` → the field `options.quality`).
function showProblems(form, problem) {
  form.querySelectorAll("[data-error-for]").forEach((el) => { el.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  const general = form.querySelector('[data-error-for=""]');
  const errors = problem.errors && problem.errors.length ? problem.errors : [{ field: "", message: problem.detail || problem.title }];
  for (const error of errors) {
    const parts = (error.field || "").replace(/^body\.?/, "").split(".");
    let slot = null;
    while (parts.length && !slot) {
      slot = form.querySelector(`[data-error-for="${CSS.escape(parts.join("."))}"]`);
      if (!slot) parts.pop();
    }
    const target = slot || general || form.querySelector("[data-error-for]");
    if (target) target.textContent = (target.textContent ? target.textContent + " " : "") + error.message;
    const control = slot && form.querySelector(`[name="${CSS.escape(parts.join("."))}"]`);
    if (control) control.setAttribute("aria-invalid", "true");
  }
  (form.querySelector('[aria-invalid="true"]') || general)?.focus?.();
}

function clearProblems(form) {
  form.querySelectorAll("[data-error-for]").forEach((el) => { el.textContent = ""; });
}

// ---- live parts: swap in the server's rendering when the run's events say something changed ----
function swap(target, html) {
  const checked = new Set([...target.querySelectorAll("input[type=checkbox]:checked")].map((i) => i.value));
  target.innerHTML = html;
  target.querySelectorAll("input[type=checkbox]").forEach((i) => { i.checked = checked.has(i.value); });
  document.body.dataset.updated = String(Date.now());
  document.dispatchEvent(new CustomEvent("studio:updated"));
}

function refresher(target, url) {
  let running = false, again = false;
  return async function refresh() {
    if (running) { again = true; return; }
    running = true;
    try {
      do {
        again = false;
        const response = await fetch(url, { credentials: "same-origin" });
        if (response.ok) swap(target, await response.text());
      } while (again);
    } finally { running = false; }
  };
}

function follow(target) {
  const refresh = refresher(target, target.dataset.live);
  if (!target.dataset.events) return;
  const source = new EventSource(target.dataset.events);
  let ended = false;
  const end = async () => {
    if (ended) return;
    ended = true;
    source.close();
    await refresh();
    window.location.reload();  // the header (cancel, feedback) follows the run's end too
  };
  for (const type of EVENTS) {
    source.addEventListener(type, (event) => {
      document.body.dataset.lastEvent = event.lastEventId;
      if (TERMINAL.includes(type)) end(); else refresh();
    });
  }
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) end(); };
}

function poll(target) {
  const refresh = refresher(target, target.dataset.poll);
  setInterval(() => { if (!document.hidden) refresh(); }, Number(target.dataset.every || 3000));
}

// ---- forms ----
function bodyOf(form) {
  const body = {};
  for (const el of form.querySelectorAll("[name][data-kind]")) {
    const kind = el.dataset.kind;
    let value;
    if (kind === "boolean") value = el.checked;
    else if (kind === "list") value = el.value.split(/\n|,/).map((v) => v.trim()).filter(Boolean);
    else if (el.value.trim() === "") continue;  // unset: the API's default
    else if (kind === "integer" || kind === "number") value = Number.isNaN(Number(el.value)) ? el.value : Number(el.value);
    else value = el.value;
    const path = el.name.split(".");
    let at = body;
    for (const part of path.slice(0, -1)) at = at[part] ??= {};
    at[path[path.length - 1]] = value;
  }
  const refs = [...form.querySelectorAll("[data-reference]")].map((li) => JSON.parse(li.dataset.reference));
  if (refs.length) body.references = refs;
  return body;
}

function createForm(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(form);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const response = await api("POST", form.dataset.create, bodyOf(form));
      if (response.ok) {
        const created = await response.json();
        window.location.assign(form.dataset.next + encodeURIComponent(created.id));
        return;
      }
      showProblems(form, await problemOf(response));
    } finally { button.disabled = false; }
  });
  const files = form.querySelector("[data-uploads]");
  if (files) files.addEventListener("change", () => upload(form, files));
  form.addEventListener("click", (event) => {
    if (event.target.matches("[data-remove]")) event.target.closest("li").remove();
  });
}

async function upload(form, input) {
  const list = form.querySelector("[data-previews]");
  for (const file of input.files) {
    const data = new FormData();
    data.append("file", file);
    const response = await api("POST", "/v1/uploads", data);
    if (!response.ok) {
      const problem = await problemOf(response);
      showProblems(form, { errors: [{ field: "references", message: `${file.name}: ${problem.errors?.[0]?.message || problem.detail}` }] });
      continue;
    }
    const ref = await response.json();
    const item = document.createElement("li");
    item.dataset.reference = JSON.stringify(ref);
    const img = document.createElement("img");
    img.src = URL.createObjectURL(file);
    img.alt = `reference ${file.name}`;
    img.width = 96; img.height = 96;
    const remove = document.createElement("button");
    remove.type = "button"; remove.className = "link"; remove.dataset.remove = ""; remove.textContent = "Remove";
    item.append(img, remove);
    list.append(item);
  }
  input.value = "";
}

function feedbackForm(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(form);
    const text = form.querySelector("textarea");
    const response = await api("POST", form.dataset.feedback, { text: text.value });
    if (!response.ok) return showProblems(form, await problemOf(response));
    text.value = "";
    const live = document.querySelector("[data-live]");
    if (live) await refresher(live, live.dataset.live)();
  });
}

// ---- chat: the reply appears as it is written ----
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
    link.href = c.source === "kb" ? `/knowledge/${encodeURIComponent(doc)}#chunk-${chunk}` : `#${c.ref.replace(" ", "-")}`;
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

// ---- the rest: buttons that call the API ----
function wire() {
  document.querySelectorAll("[data-live]").forEach(follow);
  document.querySelectorAll("[data-poll]").forEach(poll);
  document.querySelectorAll("form[data-create]").forEach(createForm);
  document.querySelectorAll("form[data-feedback]").forEach(feedbackForm);
  document.querySelectorAll("form[data-ask]").forEach(chatForm);
  document.querySelectorAll("[data-cancel]").forEach((button) => button.addEventListener("click", async () => {
    button.disabled = true;
    const response = await api("POST", button.dataset.cancel);
    button.textContent = response.ok ? "Cancelling…" : "Could not cancel";
  }));
  document.querySelectorAll("[data-compare]").forEach((form) => {
    const update = () => {
      const picked = form.querySelectorAll("input[name=run]:checked").length;
      form.querySelector("[data-compare-button]").disabled = picked < 2 || picked > 4;
    };
    form.addEventListener("change", update);
    document.addEventListener("studio:updated", update);
  });
  document.querySelectorAll("[data-new-conversation]").forEach((button) => button.addEventListener("click", async () => {
    const response = await api("POST", "/v1/conversations", {});
    if (response.ok) window.location.assign(`/conversations/${encodeURIComponent((await response.json()).id)}`);
  }));
  document.querySelectorAll("form[data-knowledge]").forEach((form) => form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(form);
    const data = new FormData();
    for (const file of form.querySelector("input[type=file]").files) data.append("files", file);
    const response = await api("POST", form.dataset.knowledge, data);
    if (!response.ok) return showProblems(form, await problemOf(response));
    window.location.reload();
  }));
  document.querySelectorAll("[data-delete]").forEach((button) => button.addEventListener("click", async () => {
    const response = await api("DELETE", button.dataset.delete);
    if (response.ok) button.closest("li").remove();
  }));
}

document.addEventListener("DOMContentLoaded", wire);
