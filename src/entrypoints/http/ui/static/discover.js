// Discover: hub search (GET /api/hub/search); pulls with live progress over SSE
// (GET /api/downloads/{id}/events): bytes, rate, ETA, each file's bytes; pause / resume / cancel.
"use strict";
(() => {
  const form = document.getElementById("hub-form");
  const table = document.getElementById("hub-results");
  const notes = document.getElementById("hub-notes");
  const pulls = document.getElementById("pulls");
  const cards = new Map(); // download id -> {node, controller}

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) params.set(key, value);
    notes.replaceChildren(el("p", { class: "muted" }, "Searching…"));
    let result;
    try { result = await api("GET", "/api/hub/search?" + params); }
    catch (e) { notes.replaceChildren(el("div", { class: "notice bad" }, e.message)); return; }
    const lines = result.warnings.map((w) => el("div", { class: "notice" }, w));
    const from = result.source === "hub" ? "the hub" : `the cache (${fmtDate(result.fetched_at)} UTC)`;
    lines.push(el("p", { class: "muted" }, `${result.results.length} results from ${from}.`));
    notes.replaceChildren(...lines);
    table.tBodies[0].replaceChildren(...result.results.map(resultRow));
    table.hidden = false;
  });

  function resultRow(r) {
    const where = r.in_library ? el("span", { class: "badge ok" }, `library: ${r.library_id}`)
      : r.in_catalog ? el("span", { class: "badge" }, `catalog: ${r.catalog_id}`) : el("span", { class: "muted" }, "–");
    const pull = IS_ADMIN && !r.in_library
      ? el("button", { type: "button", class: "primary", "aria-label": `Pull ${r.repo_id}`, onclick: () => startPull(r.repo_id) }, "Pull")
      : null;
    return el("tr", {}, el("td", { class: "mono" }, r.repo_id), el("td", { class: "num" }, fmtNum(r.downloads)),
      el("td", { class: "num" }, fmtNum(r.likes)), el("td", { class: "hide-narrow" }, fmtDate(r.last_modified)),
      el("td", { class: "hide-narrow" }, r.pipeline_tag || "–"), el("td", { class: "num" }, fmtBytes(r.size_bytes)),
      el("td", {}, where), el("td", {}, pull));
  }

  async function startPull(name) {
    try {
      const d = await api("POST", "/api/downloads", { model: name });
      toast(`Pulling ${d.model_id}`);
      track(d);
    } catch (e) { toast(e.message, "bad"); }
  }

  function card(d) {
    let entry = cards.get(d.id);
    if (entry) return entry;
    if (!cards.size) pulls.replaceChildren();
    const node = el("article", { class: "pull", "aria-label": `Download ${d.model_id}`, "data-download": d.id });
    pulls.prepend(node);
    entry = { node, controller: null };
    cards.set(d.id, entry);
    return entry;
  }

  function render(entry, e) {
    const pct = e.total_bytes ? Math.min(100, 100 * e.downloaded_bytes / e.total_bytes) : (e.status === "completed" ? 100 : 0);
    const status = e.status;
    const buttons = [];
    if (IS_ADMIN) {
      if (["downloading", "starting", "pending"].includes(status)) {
        buttons.push(el("button", { type: "button", onclick: () => act(e.download_id, "pause") }, "Pause"));
      }
      if (["paused", "failed"].includes(status)) {
        buttons.push(el("button", { type: "button", onclick: () => act(e.download_id, "resume") }, "Resume"));
      }
      if (!["completed", "cancelled"].includes(status)) {
        buttons.push(el("button", { type: "button", class: "danger", onclick: () => act(e.download_id, "cancel") }, "Cancel"));
      }
    }
    entry.node.replaceChildren(
      el("div", { class: "row" }, el("strong", {}, e.model_id),
        el("span", { class: "badge " + (status === "completed" ? "ok" : status === "failed" ? "bad" : "warn"), "data-status": status }, status)),
      el("progress", { max: "100", value: pct.toFixed(1), "aria-label": `${e.model_id} progress` }),
      el("div", { class: "stats" },
        el("span", { class: "pct" }, `${pct.toFixed(1)} %`),
        el("span", {}, `${fmtBytes(e.downloaded_bytes)} of ${fmtBytes(e.total_bytes)}`),
        el("span", {}, `rate ${e.bytes_per_second ? fmtBytes(e.bytes_per_second) + "/s" : "–"}`),
        el("span", {}, `ETA ${fmtSeconds(e.eta_seconds)}`),
        el("span", {}, `files ${e.files_done}/${e.files_total}`),
        e.current_file ? el("span", { class: "mono" }, `current: ${e.current_file}`) : null),
      ...(e.files && e.files.length ? [fileList(e)] : []), // (replaceChildren would print a null)
      ...(e.error ? [el("div", { class: "notice bad" }, `Failed: ${e.error}`)] : []),
      el("div", { class: "row" }, buttons));
  }

  // Each file's bytes against its size (the events carry them while a pull runs in this server).
  function fileList(e) {
    return el("ul", { class: "files", "aria-label": `Files of ${e.model_id}` }, e.files.map((f) => {
      const pct = f.total_bytes ? Math.min(100, 100 * f.downloaded_bytes / f.total_bytes) : (f.done ? 100 : 0);
      const state = f.done ? "done" : f.downloaded_bytes > 0 ? "" : "waiting";
      return el("li", { "data-file": f.path, "data-state": f.done ? "done" : f.downloaded_bytes > 0 ? "active" : "waiting" },
        el("span", { class: "mono name" }, f.path),
        el("progress", { max: "100", value: pct.toFixed(1), "aria-label": `${f.path} progress` }),
        el("span", { class: "bytes" }, `${fmtBytes(f.downloaded_bytes)} of ${fmtBytes(f.total_bytes)}${state ? " · " + state : ""}`));
    }));
  }

  function fromRow(d) {
    return { download_id: d.id, model_id: d.model_id, status: d.status, downloaded_bytes: d.downloaded_bytes,
      total_bytes: d.total_bytes, bytes_per_second: d.speed_bps, eta_seconds: null, current_file: null,
      files_done: d.status === "completed" ? d.files.length : 0, files_total: d.files.length, error: d.error };
  }

  async function track(d) {
    const entry = card(d);
    render(entry, fromRow(d));
    if (entry.controller) entry.controller.abort();
    const controller = new AbortController();
    entry.controller = controller;
    try {
      await streamEvents(`/api/downloads/${d.id}/events`, { signal: controller.signal, headers: { Accept: "text/event-stream" } },
        (event, data) => render(entry, JSON.parse(data)));
    } catch (e) {
      if (e.name !== "AbortError") toast(e.message, "bad");
    }
  }

  async function act(id, action) {
    try {
      const d = await api("POST", `/api/downloads/${id}/${action}`);
      render(card(d), fromRow(d));
      if (action === "resume") track(d);
    } catch (e) { toast(e.message, "bad"); }
  }

  (async () => {
    try {
      const list = await api("GET", "/api/downloads");
      for (const d of list.data.slice(-10)) {
        if (["downloading", "starting", "pending"].includes(d.status)) track(d); else render(card(d), fromRow(d));
      }
    } catch (e) { /* a non-admin may not list downloads */ }
  })();
})();
