// A minimal viewer over the JSON API: the runs list (with status counts and paging) and a
// run's page (document, every attempt, live through the event stream).
"use strict";

const app = document.getElementById("app");

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function api(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

async function showList(after) {
  const query = after ? "?after=" + encodeURIComponent(after) : "";
  const listing = await api("/api/runs" + query);
  const counts = el("p", { class: "counts", "data-testid": "counts" });
  for (const [status, n] of Object.entries(listing.counts || {})) {
    counts.append(el("span", { class: "status-" + status }, status + " " + n));
  }
  const rows = listing.runs.map((d) =>
    el("tr", { "data-testid": "run-row" },
      el("td", {}, el("a", { href: "#run/" + d.run_id }, d.run_id)),
      el("td", {}, d.flow),
      el("td", { class: "status-" + d.status }, d.status),
      el("td", {}, d.created_at)));
  const table = el("table", {}, el("tr", {}, el("th", {}, "run"), el("th", {}, "flow"),
    el("th", {}, "status"), el("th", {}, "created")), ...rows);
  app.replaceChildren(counts, table);
  if (listing.next) {
    const more = el("button", { "data-testid": "next-page" }, "next page");
    more.onclick = () => showList(listing.next);
    app.append(more);
  }
}

function showRun(id) {
  const head = el("pre", { "data-testid": "document" });
  const attempts = el("table", { "data-testid": "attempts" },
    el("tr", {}, el("th", {}, "session"), el("th", {}, "step"), el("th", {}, "attempt"),
      el("th", {}, "outcome"), el("th", {}, "duration (s)"), el("th", {}, "error")));
  app.replaceChildren(el("p", {}, el("a", { href: "#" }, "all runs")), head, attempts);
  const events = new EventSource("/api/runs/" + encodeURIComponent(id) + "/events");
  events.addEventListener("document", (e) => {
    const d = JSON.parse(e.data);
    head.textContent = JSON.stringify(d, null, 2);
  });
  events.addEventListener("entry", (e) => {
    for (const t of JSON.parse(e.data).traces || []) {
      attempts.append(el("tr", { class: "outcome-" + t.outcome, "data-testid": "attempt" },
        el("td", {}, t.session), el("td", {}, t.step), el("td", {}, t.attempt),
        el("td", {}, t.outcome), el("td", {}, t.duration), el("td", {}, t.error || "")));
    }
  });
  events.addEventListener("end", () => events.close());
}

async function route() {
  try {
    const info = await api("/api/info");
    document.getElementById("store").textContent = info.store;
    const hash = location.hash.slice(1);
    if (hash.startsWith("run/")) showRun(hash.slice(4));
    else await showList(null);
  } catch (error) {
    app.replaceChildren(el("p", { "data-testid": "error" }, String(error.message || error)));
  }
}

window.addEventListener("hashchange", route);
route();
