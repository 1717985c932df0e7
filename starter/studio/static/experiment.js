// Atelier Studio's experiment page: the grid fills in as cells finish, sorts and filters in place, and its buttons
// post through the API. It follows the experiment's events (SSE: `experiment.cell.completed`) and on each asks
// the page's part for what changed since the last finished cell it shows — the rows, the counts, the report,
// rendered by the server as the page is (so blind mode's names never reach the page). When the stream cannot be
// had it asks on a timer instead, backing off while nothing changes. Uses studio.js's api() and refresher().
"use strict";

const POLL_MS = [2000, 30000];  // the fallback's first and longest wait

function rowsOf(table) { return [...table.tBodies[0].rows]; }

function numberIn(row, name) {
  const value = row.dataset[name];
  return value === undefined || value === "" ? null : Number(value);
}

// As the server sorts (experiment_grid.ordered): rows with no difference yet go last, ties by the dataset's order.
const SORT_KEYS = {
  order: (row) => [0, 0, Number(row.dataset.index)],
  worst: (row) => { const v = numberIn(row, "low"); return [v === null ? 1 : 0, v ?? 0, Number(row.dataset.index)]; },
  best: (row) => { const v = numberIn(row, "high"); return [v === null ? 1 : 0, -(v ?? 0), Number(row.dataset.index)]; },
};

function arrange(table, controls) {
  const how = controls.querySelector("[name=sort]").value;
  const only = controls.querySelector("[name=regressions]").checked;
  const key = SORT_KEYS[how] || SORT_KEYS.order;
  const keyed = rowsOf(table).map((row) => [key(row), row]);
  keyed.sort(([a], [b]) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  const body = table.tBodies[0];
  if (keyed.some(([, row], n) => body.rows[n] !== row)) body.append(...keyed.map(([, row]) => row));
  for (const [, row] of keyed) row.hidden = only && !("regression" in row.dataset);
}

function controlsOf(page) {
  const controls = document.querySelector("[data-grid-controls]");
  const table = page.querySelector("table");
  controls.querySelector("[data-no-script]")?.remove();  // sorting and filtering happen in place
  controls.addEventListener("change", () => {
    arrange(table, controls);
    const url = new URL(window.location.href);  // a reload (or a copied link) shows the same
    url.searchParams.set("sort", controls.querySelector("[name=sort]").value);
    url.searchParams.set("regressions", controls.querySelector("[name=regressions]").checked ? "true" : "false");
    window.history.replaceState(null, "", url);
  });
  controls.addEventListener("submit", (event) => event.preventDefault());
  return () => arrange(table, controls);
}

// Each element of the part that has an id takes the place of the page's element of that id (focus kept).
function drawPart(page, rearrange, html) {
  const part = new DOMParser().parseFromString(html, "text/html");
  for (const fresh of part.querySelectorAll("[data-swap][id]")) {
    const shown = document.getElementById(fresh.id);
    if (!shown) continue;
    const focused = shown.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
    shown.replaceWith(fresh);
    if (focused) fresh.querySelector(`[href="${CSS.escape(focused)}"]`)?.focus();
  }
  const answer = part.querySelector("[data-since]");
  if (answer) {
    page.dataset.since = answer.dataset.since;
    page.dataset.status = answer.dataset.status;
  }
  rearrange();
  document.body.dataset.updated = String(Date.now());
  document.dispatchEvent(new CustomEvent("studio:updated"));
}

function followExperiment(page) {
  const rearrange = controlsOf(page);
  const url = () => {
    const part = new URL(page.dataset.part, window.location.href);
    part.searchParams.set("since", page.dataset.since || "0");
    return part;
  };
  const refresh = refresher(page, url, (html) => drawPart(page, rearrange, html));
  if (!page.dataset.events) return;
  let ended = false;
  const end = async () => {
    if (ended) return;
    ended = true;
    await refresh();
    window.location.reload();  // the buttons and the final report follow the end
  };
  const source = new EventSource(page.dataset.events);
  source.addEventListener("experiment.cell.completed", (event) => {
    document.body.dataset.lastEvent = event.lastEventId;
    refresh();
  });
  for (const type of TERMINAL) source.addEventListener(type, () => { source.close(); end(); });
  source.onerror = () => {
    if (source.readyState !== EventSource.CLOSED || ended) return;  // the browser reconnects by itself
    const notice = document.createElement("p");  // refused, or ended already: look on a timer instead
    notice.className = "muted";
    notice.textContent = "Live updates paused; looking for finished cells every few seconds.";
    page.before(notice);
    let wait = POLL_MS[0];
    const look = async () => {
      const before = page.dataset.since;
      if (!document.hidden) await refresh();
      if (page.dataset.status && page.dataset.status !== "running") return end();
      wait = page.dataset.since !== before ? POLL_MS[0] : Math.min(wait * 2, POLL_MS[1]);
      setTimeout(look, wait);
    };
    look();
  };
}

// Cancel and rerun-failed: POST to the API with the page's CSRF token, then the page again as it now stands.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.matches("form[data-post]")) return;
  event.preventDefault();
  const button = form.querySelector("button");
  const said = form.querySelector("[data-said]");
  button.disabled = true;
  const response = await api("POST", form.dataset.post);
  if (!response.ok) {
    const problem = await problemOf(response);
    said.textContent = problem.detail || problem.title;
    button.disabled = false;
    return;
  }
  said.textContent = "Done.";
  window.location.reload();
});

document.addEventListener("DOMContentLoaded", () => {
  const page = document.getElementById("experiment");
  if (page) followExperiment(page);
  const waiting = document.querySelector("[data-reload-after]");
  if (waiting) setTimeout(() => window.location.reload(), 1000 * Number(waiting.dataset.reloadAfter));
});
