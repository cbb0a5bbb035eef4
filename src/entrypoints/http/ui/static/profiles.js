// Profiles: list; create / edit / delete with a form that follows the model's type
// (inference + context fields for text and vision, audio fields for audio, none for embeddings).
// Validation is the API's: its error names the field (`param`), shown next to that field.
"use strict";
(() => {
  const body = document.querySelector("#profiles tbody");
  const form = document.getElementById("profile-form");
  const GROUPS = { "text-gen": ["inference", "context"], vision: ["inference", "context"], audio: ["audio"], embeddings: [] };
  const INTEGER = new Set(["max_tokens", "top_k", "seed", "context_length", "sample_rate"]);
  let models = [];
  const f = (name) => form.elements.namedItem(name); // form.name would be the form's own name

  async function loadProfiles() {
    const list = await api("GET", "/api/profiles");
    if (!list.data.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "6", class: "muted" }, "No profiles yet.")));
      return;
    }
    body.replaceChildren(...list.data.map((p) => {
      const groups = { inference: p.inference, context: p.context, audio: p.audio };
      const settings = Object.entries(groups).flatMap(([g, values]) =>
        Object.entries(values).filter(([, v]) => v !== null).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("|") : v}`));
      const actions = IS_ADMIN ? [
        el("button", { type: "button", "aria-label": `Edit ${p.name}`, onclick: () => edit(p) }, "Edit"),
        el("button", { type: "button", class: "danger", "aria-label": `Delete ${p.name}`, onclick: () => remove(p.name) }, "Delete…"),
      ] : [];
      return el("tr", {}, el("td", {}, el("strong", {}, p.name)), el("td", {}, p.profile_type), el("td", {}, p.model_id || "–"),
        el("td", { class: "hide-narrow mono" }, settings.join(", ") || "–"), el("td", {}, p.auto_start ? "yes" : "no"),
        el("td", {}, el("div", { class: "row" }, actions)));
    }));
  }

  function modelType() {
    const m = models.find((x) => x.id === f("model").value);
    return m ? m.type : null;
  }

  function followType() {
    const type = modelType();
    const shown = GROUPS[type] || [];
    form.querySelectorAll("fieldset[data-group]").forEach((fs) => { fs.hidden = !shown.includes(fs.dataset.group); });
    document.getElementById("type-note").textContent = !type ? "" : shown.length ? `Fields for a ${type} model.`
      : `A ${type} model takes no tuning fields.`;
  }

  function payload() {
    const shown = GROUPS[modelType()] || [];
    const data = { name: f("name").value.trim(), model: f("model").value, auto_start: f("auto_start").checked };
    data.description = f("description").value.trim() || null;
    for (const group of ["inference", "context", "audio"]) {
      if (!shown.includes(group)) continue;
      const values = {};
      form.querySelectorAll(`[name^="${group}."]`).forEach((input) => {
        const key = input.name.split(".")[1];
        const raw = input.value.trim();
        if (raw === "") return;
        if (key === "stop") values[key] = raw.split(",").map((s) => s.trim()).filter(Boolean);
        else if (input.type === "number") values[key] = INTEGER.has(key) && /^-?\d+$/.test(raw) ? parseInt(raw, 10) : Number(raw);
        else values[key] = raw;
      });
      data[group] = values;
    }
    return data;
  }

  function reset() {
    form.reset();
    f("editing").value = "";
    document.getElementById("form-title").textContent = "New profile";
    document.getElementById("save").textContent = "Create profile";
    clearFieldErrors(form);
    followType();
  }

  function edit(p) {
    reset();
    f("editing").value = p.name;
    f("name").value = p.name;
    f("model").value = p.model_id || "";
    f("auto_start").checked = p.auto_start;
    f("description").value = p.description || "";
    for (const group of ["inference", "context", "audio"]) {
      for (const [key, value] of Object.entries(p[group] || {})) {
        const input = form.querySelector(`[name="${group}.${key}"]`);
        if (input && value !== null) input.value = Array.isArray(value) ? value.join(", ") : value;
      }
    }
    document.getElementById("form-title").textContent = `Edit ${p.name}`;
    document.getElementById("save").textContent = "Save changes";
    followType();
    f("name").focus();
  }

  async function remove(name) {
    if (!await confirmDialog(`Delete profile ${name}?`, "The model stays in the library.", "Delete")) return;
    try { await api("DELETE", "/api/profiles/" + encodeURIComponent(name)); toast(`Deleted ${name}`); loadProfiles(); }
    catch (e) { toast(e.message, "bad"); }
  }

  if (form) {
    f("model").addEventListener("change", followType);
    document.getElementById("clear-form").addEventListener("click", reset);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const error = document.getElementById("form-error");
      clearFieldErrors(form);
      const editing = f("editing").value;
      try {
        if (editing) await api("PATCH", "/api/profiles/" + encodeURIComponent(editing), payload());
        else await api("POST", "/api/profiles", payload());
        toast(editing ? `Saved ${editing}` : `Created ${f("name").value}`);
        reset();
        loadProfiles();
      } catch (e) { showFieldErrors(form, e, error); }
    });
  }

  (async () => {
    try {
      const page = await api("GET", "/api/models?status=completed&limit=1000");
      models = page.data;
      if (form) {
        f("model").replaceChildren(el("option", { value: "" }, "— choose a model —"),
          ...models.map((m) => el("option", { value: m.id }, `${m.id} (${m.type || "unknown type"})`)));
        followType();
      }
      await loadProfiles();
    } catch (e) { toast(e.message, "bad"); }
  })();
})();
