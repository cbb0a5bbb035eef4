// Library: search as you type, filters, details (files, sha256, capabilities, profiles), probe, delete.
"use strict";
(() => {
  const form = document.getElementById("filters");
  const body = document.querySelector("#models tbody");
  const count = document.getElementById("count");
  const details = document.getElementById("details");
  let seq = 0;

  async function load() {
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) params.set(key, value);
    params.set("limit", "200");
    const mine = ++seq;
    let page;
    try { page = await api("GET", "/api/models?" + params); } catch (e) { count.textContent = e.message; return; }
    if (mine !== seq) return; // a newer keystroke's answer wins
    body.replaceChildren(...page.data.map(row));
    count.textContent = page.total === 0 ? "No models match." :
      `${page.data.length} of ${page.total} model${page.total === 1 ? "" : "s"}`;
  }

  function statusBadge(status) {
    const kind = status === "completed" ? "ok" : status === "failed" ? "bad" : "warn";
    return el("span", { class: "badge " + kind }, status);
  }

  function row(m) {
    return el("tr", {},
      el("td", {}, el("strong", {}, m.id), m.canonical_id && m.canonical_id !== m.id ? el("div", { class: "muted mono" }, m.canonical_id) : null),
      el("td", {}, m.type || "–"), el("td", { class: "hide-narrow" }, m.family || "–"),
      el("td", { class: "num" }, fmtBytes(m.size_bytes)), el("td", {}, statusBadge(m.status)),
      el("td", { class: "hide-narrow" }, fmtDate(m.last_used_at)),
      el("td", {}, el("button", { type: "button", "aria-label": `Details of ${m.id}`, onclick: () => show(m.id) }, "Details")));
  }

  async function show(id) {
    let m, profiles;
    try {
      [m, profiles] = await Promise.all([api("GET", "/api/models/" + encodeURIComponent(id)), api("GET", "/api/profiles")]);
    } catch (e) { toast(e.message, "bad"); return; }
    const using = profiles.data.filter((p) => p.model_id === m.id);
    const caps = m.capabilities ? Object.entries(m.capabilities).filter(([k, v]) => v !== null && k !== "model_type") : [];
    const actions = el("div", { class: "row" });
    const result = el("div", { "aria-live": "polite" });
    if (IS_ADMIN) {
      actions.append(
        el("button", { type: "button", onclick: () => probe(m.id, result) }, "Probe"),
        el("button", { type: "button", class: "danger", onclick: () => remove(m.id) }, "Delete…"));
    }
    details.replaceChildren(
      el("h2", { id: "details-title" }, m.id),
      el("dl", { class: "details" },
        ...[["Type", m.type], ["Family", m.family], ["Status", m.status], ["Repo", m.repo_id], ["Canonical ID", m.canonical_id],
            ["Revision", m.revision], ["Source", m.source], ["Path", m.local_path], ["Size", fmtBytes(m.size_bytes)],
            ["Aliases", (m.aliases || []).join(", ")], ["Tags", (m.tags || []).join(", ")]]
          .filter(([, v]) => v).flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: k === "Path" || k === "Revision" ? "mono" : "" }, v)])),
      el("h2", {}, "Capabilities"),
      caps.length ? el("ul", {}, caps.map(([k, v]) => el("li", {}, `${k}: ${v}`))) : el("p", { class: "muted" }, "Not probed yet."),
      el("h2", {}, "Profiles using it"),
      using.length ? el("ul", {}, using.map((p) => el("li", {}, `${p.name} (${p.profile_type})`))) : el("p", { class: "muted" }, "None."),
      el("h2", {}, `Files (${m.files.length})`),
      el("div", { class: "table-wrap" }, el("table", {}, el("caption", { class: "skip" }, `Files of ${m.id}`),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Path"), el("th", { scope: "col", class: "num" }, "Size"), el("th", { scope: "col" }, "sha256"))),
        el("tbody", {}, m.files.map((f) => el("tr", {}, el("td", { class: "mono" }, f.path), el("td", { class: "num" }, fmtBytes(f.size)),
          el("td", { class: "mono" }, f.sha256 || "–")))))),
      actions, result);
    details.hidden = false;
    details.querySelector("h2").setAttribute("tabindex", "-1");
    details.querySelector("h2").focus();
  }

  async function probe(id, result) {
    result.textContent = "Probing…";
    try {
      const r = await api("POST", `/api/models/${encodeURIComponent(id)}/probe`);
      result.replaceChildren(el("div", { class: "notice ok" }, "Probed. " + (r.warnings || []).join(" ")));
      show(id);
    } catch (e) { result.replaceChildren(el("div", { class: "notice bad" }, e.message)); }
  }

  async function remove(id) {
    if (!await confirmDialog(`Delete ${id}?`, "The model leaves the library. mlxm deletes only the files it created " +
        "(its downloads and import copies); an in-place import, or a folder, file or link that is not mlxm's, stays on disk " +
        "and is listed afterwards.", "Delete")) return;
    try {
      const r = await api("DELETE", "/api/models/" + encodeURIComponent(id));
      // `kept`: what stayed on disk and why (e.g. "<path> (3.2 GB): a folder mlxm did not create ...").
      const kept = (r && r.kept) || [];
      if (kept.length) toast(`Removed ${id} from the library; kept: ${kept.join("; ")}`, "warn", 20000);
      else toast(`Deleted ${id}`);
      details.hidden = true;
      load();
    } catch (e) { toast(e.message, "bad"); }
  }

  form.addEventListener("input", debounce(load, 150));
  form.addEventListener("change", load);
  load();
})();
