// Atelier Studio: the few things a server-rendered page cannot do alone. No build step, no dependencies.
// Every call goes to the same /v1 API any client uses; a browser's unsafe call carries the page's CSRF token.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
const TERMINAL = ["run.completed", "run.failed", "run.cancelled"];
const EVENTS = ["run.started", "run.progress", "iteration.completed", "character.created", "post.created",
  "image.created", "tick.completed", ...TERMINAL];

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
  if (target.dataset.shown === html) return;  // nothing changed: leave focus and reading place alone
  target.dataset.shown = html;
  const checked = new Set([...target.querySelectorAll("input[type=checkbox]:checked")].map((i) => i.value));
  const focused = document.activeElement && target.contains(document.activeElement) ? document.activeElement : null;
  const focusedValue = focused && (focused.value || focused.getAttribute("href"));
  const opened = new Set([...target.querySelectorAll("details[open][data-children]")].map((d) => d.dataset.children));
  target.innerHTML = html;
  target.querySelectorAll("input[type=checkbox]").forEach((i) => { i.checked = checked.has(i.value); });
  target.querySelectorAll("details[data-children]").forEach((d) => { d.open = opened.has(d.dataset.children); });
  if (focusedValue) {
    [...target.querySelectorAll("input, a")].find((el) => (el.value || el.getAttribute("href")) === focusedValue)?.focus();
  }
  document.body.dataset.updated = String(Date.now());
  document.dispatchEvent(new CustomEvent("studio:updated"));
}

const SETTLE_MS = 500;  // a burst of events (a world's posts) makes one refresh each half second at most

// One refresh at a time; events arriving meanwhile make one more. A session that ended (the fragment was
// redirected to the sign-in page, or refused) reloads the page instead of swapping that in. `url` may be a
// function (asked each time); `draw` puts the answer in the page (by default: in place of target's content).
function refresher(target, url, draw = (html) => swap(target, html)) {
  let current = null, again = false;
  const loop = async () => {
    do {
      again = false;
      const response = await fetch(typeof url === "function" ? url() : url, { credentials: "same-origin" });
      if (response.redirected || response.status === 401) { window.location.reload(); return; }
      if (response.ok) draw(await response.text());
      if (again) await new Promise((done) => setTimeout(done, SETTLE_MS));
    } while (again);
  };
  return function refresh() {  // resolves once what was asked for is drawn
    if (current) { again = true; return current; }
    current = loop().finally(() => { current = null; });
    return current;
  };
}

function follow(target) {
  const refresh = target.refresh = refresher(target, target.dataset.live);
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
  source.onerror = async () => {
    if (source.readyState !== EventSource.CLOSED || ended) return;  // the browser reconnects by itself
    const run = await fetch(target.dataset.run, { credentials: "same-origin" });
    if (run.ok && (await run.json()).status !== "running") return end();  // the stream had ended already
    const notice = document.createElement("p");  // the stream was refused: look every few seconds instead
    notice.className = "muted";
    notice.textContent = "Live updates paused; refreshing every 5 seconds.";
    target.before(notice);
    setInterval(() => { if (!document.hidden) refresh(); }, 5000);
  };
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
    else if (kind === "list") value = el.value.split("\n").map((v) => v.trim()).filter(Boolean);
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

// "Branch from here" on an image run's cards: they are in the live part, swapped in as the run goes, so one
// listener on the document answers every such form, now or later.
async function branchForm(event) {
  const form = event.target.closest?.("form[data-branch]");
  if (!form) return;
  event.preventDefault();
  clearProblems(form);
  const response = await api("POST", form.dataset.branch, bodyOf(form));
  if (response.ok) return window.location.assign(form.dataset.next + encodeURIComponent((await response.json()).id));
  showProblems(form, await problemOf(response));
}

function feedbackForm(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(form);
    const text = form.querySelector("textarea");
    const response = await api("POST", form.dataset.feedback, { text: text.value });
    if (!response.ok) return showProblems(form, await problemOf(response));
    text.value = "";
    await document.querySelector("[data-live]")?.refresh?.();
  });
}

// An experiment's cells under it in the runs list: read when its row is first opened (and again when the rows
// are refreshed while it is open). `toggle` does not bubble: it is caught on its way down.
document.addEventListener("toggle", async (event) => {
  const details = event.target;
  if (!(details instanceof HTMLDetailsElement) || !details.open || !details.dataset.children || details.dataset.read) return;
  details.dataset.read = "1";
  const slot = details.querySelector("[data-children-list]");
  const response = await fetch(details.dataset.children, { credentials: "same-origin" });
  if (response.ok) slot.innerHTML = await response.text();
  else slot.textContent = "Its cells could not be read just now.";
}, true);

// ---- people's verdicts: stars on a run's pictures (buttons, keys 1–5), an experiment's blind queue ----
async function rate(group, stars) {
  const said = group.querySelector("[data-rated]");
  const response = await api("POST", group.dataset.ratingUrl, { artifact: group.dataset.rate, stars });
  if (!response.ok) {
    const problem = await problemOf(response);
    said.textContent = problem.errors?.[0]?.message || problem.detail || problem.title;
    return;
  }
  group.querySelectorAll("[data-stars]").forEach((button) => {
    const n = Number(button.dataset.stars);
    button.classList.toggle("on", n <= stars);
    button.setAttribute("aria-pressed", String(n === stars));
  });
  said.textContent = `rated ${stars} of 5`;
}

function stars() {
  document.addEventListener("click", (event) => {  // delegated: a live part's swap brings new buttons
    const button = event.target.closest?.("[data-stars]");
    if (button) rate(button.closest("[data-rate]"), Number(button.dataset.stars));
  });
  document.addEventListener("keydown", (event) => {  // 1–5 rate the picture whose stars (or card) has focus
    if (event.ctrlKey || event.metaKey || event.altKey || !/^[1-5]$/.test(event.key)) return;
    const at = document.activeElement;
    if (!at || at.matches("input, textarea, select")) return;
    const group = at.closest("[data-rate]") || at.closest(".card")?.querySelector("[data-rate]");
    if (!group) return;
    event.preventDefault();
    rate(group, Number(event.key));
  });
}

// The queue names its pair by tokens only; each vote (← A, → B, ↓ tie) or undo (U) loads where it says next.
function blindQueue(section) {
  const said = section.querySelector("[data-said]");
  const undoButton = section.querySelector("[data-undo-last]");
  const body = { experiment: section.dataset.experiment };
  let busy = false;
  const send = async (url, extra) => {
    if (busy) return;
    busy = true;
    section.querySelectorAll("button").forEach((button) => { button.disabled = true; });
    const response = await api("POST", url, { ...body, ...extra });
    if (response.ok) return window.location.assign((await response.json()).next);
    const problem = await problemOf(response);
    said.textContent = problem.errors?.[0]?.message || problem.detail || problem.title;
    busy = false;
    section.querySelectorAll("button").forEach((button) => { button.disabled = false; });
  };
  const vote = (winner) => { if (section.dataset.a) send(section.dataset.vote, { a: section.dataset.a, b: section.dataset.b, winner }); };
  const undo = () => { if (undoButton && !undoButton.disabled) send(section.dataset.undo, {}); };
  section.querySelectorAll("[data-winner]").forEach((button) => button.addEventListener("click", () => vote(button.dataset.winner)));
  undoButton?.addEventListener("click", undo);
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.target.matches?.("input, textarea, select")) return;
    const winner = { ArrowLeft: "a", ArrowRight: "b", ArrowDown: "tie" }[event.key];
    if (winner) { event.preventDefault(); vote(winner); } else if (event.key === "u" || event.key === "U") { event.preventDefault(); undo(); }
  });
}

// ---- the rest: buttons that call the API ----
function wire() {
  document.querySelectorAll("[data-live]").forEach(follow);
  stars();
  document.querySelectorAll("[data-queue]").forEach(blindQueue);
  document.querySelectorAll("[data-poll]").forEach(poll);
  document.querySelectorAll("form[data-create]").forEach(createForm);
  document.querySelectorAll("form[data-feedback]").forEach(feedbackForm);
  document.addEventListener("submit", branchForm);
  document.querySelectorAll("[data-cancel]").forEach((button) => button.addEventListener("click", async () => {
    button.disabled = true;
    const response = await api("POST", button.dataset.cancel);
    button.textContent = response.ok ? "Cancelling…" : "Could not cancel";
  }));
  document.querySelectorAll("[data-signal]").forEach((button) => button.addEventListener("click", async () => {
    const said = document.querySelector("[data-signal-said]");  // a life's pause, resume and stop
    button.disabled = true;
    const response = await api("POST", button.dataset.signal);
    const problem = response.ok ? null : await problemOf(response);
    if (said) said.textContent = problem ? problem.detail || problem.title : `${button.textContent.trim()}: asked`;
    button.disabled = false;
    await document.querySelector("[data-live]")?.refresh?.();
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
    const model = document.querySelector("[data-conversation-model]")?.value;  // the catalog's text models
    const response = await api("POST", "/v1/conversations", model ? { config: { models: { text: model } } } : {});
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
