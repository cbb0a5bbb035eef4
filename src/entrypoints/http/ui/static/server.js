// Server: the pool (GET /api/pool), memory against the limit, eviction policy, unload / load, auto_start.
"use strict";
(() => {
  const tbody = document.querySelector("#loaded tbody");
  const loadForm = document.getElementById("load-form");
  const loadStatus = document.getElementById("load-status");

  async function refresh() {
    let pool;
    try { pool = await api("GET", "/api/pool"); } catch (e) { toast(e.message, "bad"); return; }
    const meter = document.getElementById("mem-meter");
    const limit = pool.max_memory_bytes;
    meter.max = limit || Math.max(pool.used_bytes || 0, 1);
    meter.value = pool.used_bytes || 0;
    document.getElementById("mem-text").textContent =
      `${fmtBytes(pool.used_bytes)} used of ${limit ? fmtBytes(limit) : "no limit"}`;
    document.getElementById("pool-facts").textContent =
      `${pool.loaded.length} of ${pool.max_models} models loaded · eviction policy: ${pool.eviction_policy}`;
    tbody.replaceChildren(...(pool.loaded.length ? pool.loaded.map((m) => el("tr", {},
      el("td", {}, el("strong", {}, m.model_id)), el("td", {}, m.type || "–"), el("td", { class: "num" }, fmtBytes(m.size_bytes)),
      el("td", { class: "hide-narrow" }, fmtDate(m.loaded_at)), el("td", { class: "hide-narrow" }, fmtDate(m.last_used_at)),
      el("td", { class: "num" }, fmtNum(m.use_count)), el("td", {}, m.pinned ? "yes" : "no"), el("td", { class: "num" }, m.in_use),
      el("td", {}, el("button", { type: "button", "aria-label": `Unload ${m.model_id}`, onclick: () => unload(m.model_id) }, "Unload"))))
      : [el("tr", {}, el("td", { colspan: "9", class: "muted" }, "No model is loaded."))]));
  }

  async function unload(id) {
    try { const r = await api("POST", "/api/pool/unload", { model: id }); toast(r.loaded ? `${id} unloads when its requests finish` : `Unloaded ${id}`); }
    catch (e) { toast(e.message, "bad"); }
    refresh();
  }

  loadForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = loadForm.elements.namedItem("model").value;
    if (!name) return;
    loadStatus.textContent = `Loading ${name}…`;
    try { await api("POST", "/api/pool/load", { model: name }); loadStatus.textContent = `Loaded ${name}.`; }
    catch (e) { loadStatus.textContent = e.message; }
    refresh();
  });

  async function profiles() {
    const [list, models] = await Promise.all([api("GET", "/api/profiles"), api("GET", "/api/models?status=completed&limit=1000")]);
    document.getElementById("load-target").replaceChildren(
      el("optgroup", { label: "Profiles" }, list.data.map((p) => el("option", { value: p.name }, p.name))),
      el("optgroup", { label: "Models" }, models.data.map((m) => el("option", { value: m.id }, m.id))));
    document.querySelector("#autostart tbody").replaceChildren(...list.data.map((p) => {
      const box = el("input", { type: "checkbox", id: `auto-${p.id}`, checked: p.auto_start });
      box.addEventListener("change", async () => {
        try { await api("PATCH", "/api/profiles/" + encodeURIComponent(p.name), { auto_start: box.checked }); toast(`${p.name}: auto_start ${box.checked ? "on" : "off"}`); }
        catch (e) { box.checked = !box.checked; toast(e.message, "bad"); }
      });
      return el("tr", {}, el("td", {}, el("label", { for: `auto-${p.id}` }, p.name)), el("td", {}, p.model_id || "–"), el("td", {}, box));
    }));
  }

  refresh();
  profiles().catch((e) => toast(e.message, "bad"));
  setInterval(refresh, 5000);
})();
