// Keys & users (admin only): GET/POST /api/keys, DELETE /api/keys/{id}; GET/POST /api/users, approve, disable.
"use strict";
(() => {
  const keyForm = document.getElementById("key-form");
  const userForm = document.getElementById("user-form");

  async function loadKeys() {
    const keys = await api("GET", "/api/keys");
    document.querySelector("#keys tbody").replaceChildren(...keys.map((k) => el("tr", {},
      el("td", {}, k.name), el("td", { class: "mono" }, k.prefix), el("td", {}, k.user_id), el("td", { class: "hide-narrow" }, fmtDate(k.created_at)),
      el("td", {}, el("span", { class: "badge " + (k.active ? "ok" : "bad") }, k.active ? "active" : "revoked")),
      el("td", {}, k.active ? el("button", { type: "button", class: "danger", "aria-label": `Revoke key ${k.name}`, onclick: () => revoke(k) }, "Revoke…") : null))));
  }

  async function loadUsers() {
    const users = await api("GET", "/api/users");
    document.querySelector("#users tbody").replaceChildren(...users.map((u) => el("tr", {},
      el("td", {}, u.id), el("td", {}, u.email), el("td", {}, u.is_admin ? "yes" : "no"), el("td", {}, u.status),
      el("td", {}, el("div", { class: "row" },
        u.status !== "approved" ? el("button", { type: "button", onclick: () => userAction(u, "approve") }, "Approve") : null,
        u.status !== "disabled" ? el("button", { type: "button", class: "danger", onclick: () => userAction(u, "disable") }, "Disable…") : null)))));
  }

  async function revoke(k) {
    if (!await confirmDialog(`Revoke key ${k.name}?`, "Clients using it get 401 at once.", "Revoke")) return;
    try { await api("DELETE", `/api/keys/${k.id}`); toast(`Revoked ${k.name}`); loadKeys(); } catch (e) { toast(e.message, "bad"); }
  }

  async function userAction(u, action) {
    if (action === "disable" && !await confirmDialog(`Disable ${u.email}?`, "Their keys stop working at once.", "Disable")) return;
    try { await api("POST", `/api/users/${u.id}/${action}`); loadUsers(); } catch (e) { toast(e.message, "bad"); }
  }

  keyForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(keyForm);
    const body = { name: keyForm.elements.namedItem("name").value.trim() };
    const user = keyForm.elements.namedItem("user").value.trim();
    if (user) body.user = user;
    try {
      const created = await api("POST", "/api/keys", body);
      document.getElementById("new-key").replaceChildren(el("div", { class: "notice ok" },
        "New key (shown once; copy it now): ", el("code", {}, created.key)));
      keyForm.reset();
      loadKeys();
    } catch (e) { showFieldErrors(keyForm, e, document.getElementById("key-error")); }
  });

  userForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(userForm);
    const f = (n) => userForm.elements.namedItem(n);
    const body = { email: f("email").value.trim(), password: f("password").value || null, is_admin: f("is_admin").checked, approved: f("approved").checked };
    try { await api("POST", "/api/users", body); toast(`Created ${body.email}`); userForm.reset(); loadUsers(); }
    catch (e) { showFieldErrors(userForm, e, document.getElementById("user-error")); }
  });

  loadKeys().catch((e) => toast(e.message, "bad"));
  loadUsers().catch((e) => toast(e.message, "bad"));
})();
