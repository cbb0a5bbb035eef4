// Audit: GET /api/audit (filters, pages) and GET /api/audit/summary.
"use strict";
(() => {
  const form = document.getElementById("audit-form");
  const LIMIT = 50;
  let offset = 0;

  function filters() {
    const p = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) p.set(key, key === "since" || key === "until" ? value + ":00Z" : value);
    return p;
  }

  async function load() {
    const p = filters();
    const summaryParams = new URLSearchParams();
    for (const k of ["since", "until"]) if (p.get(k)) summaryParams.set(k, p.get(k));
    p.set("limit", LIMIT); p.set("offset", offset);
    try {
      const [page, summary] = await Promise.all([api("GET", "/api/audit?" + p), api("GET", "/api/audit/summary?" + summaryParams)]);
      document.querySelector("#audit tbody").replaceChildren(...page.items.map((e) => el("tr", {},
        el("td", {}, fmtDate(e.timestamp)), el("td", {}, e.model), el("td", { class: "hide-narrow" }, e.backend),
        el("td", { class: "hide-narrow mono" }, e.endpoint),
        el("td", {}, el("span", { class: "badge " + (e.status === "success" ? "ok" : e.status === "error" ? "bad" : "warn") }, e.status)),
        el("td", { class: "num" }, fmtNum(e.duration_ms)), el("td", { class: "num" }, fmtNum(e.prompt_tokens)),
        el("td", { class: "num" }, fmtNum(e.completion_tokens)))));
      document.getElementById("audit-count").textContent = page.total ? `${offset + 1}–${offset + page.items.length} of ${page.total}` : "No requests match.";
      document.getElementById("prev").disabled = offset === 0;
      document.getElementById("next").disabled = offset + LIMIT >= page.total;
      document.getElementById("summary").replaceChildren(
        el("p", {}, `${fmtNum(summary.requests)} requests · ${fmtNum(summary.errors)} errors (${(100 * summary.error_rate).toFixed(1)} %) · ` +
          `${fmtNum(summary.prompt_tokens)} prompt + ${fmtNum(summary.completion_tokens)} completion tokens`),
        el("div", { class: "table-wrap" }, el("table", {}, el("caption", { class: "skip" }, "Summary by model"),
          el("thead", {}, el("tr", {}, ["Model", "Requests", "Errors", "Prompt tokens", "Completion tokens"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, summary.models.map((m) => el("tr", {}, el("td", {}, m.model), el("td", { class: "num" }, fmtNum(m.requests)),
            el("td", { class: "num" }, fmtNum(m.errors)), el("td", { class: "num" }, fmtNum(m.prompt_tokens)),
            el("td", { class: "num" }, fmtNum(m.completion_tokens)))))))); 
    } catch (e) { toast(e.message, "bad"); }
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); offset = 0; load(); });
  document.getElementById("prev").addEventListener("click", () => { offset = Math.max(0, offset - LIMIT); load(); });
  document.getElementById("next").addEventListener("click", () => { offset += LIMIT; load(); });
  load();
})();
