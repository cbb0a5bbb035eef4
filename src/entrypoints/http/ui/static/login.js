// Log in: POST /ui/login (JSON) with a key or email + password; the answer sets the session cookie.
"use strict";
(() => {
  const form = document.getElementById("login-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = (n) => form.elements.namedItem(n).value.trim();
    const body = f("key") ? { key: f("key") } : { email: f("email"), password: form.elements.namedItem("password").value };
    const error = document.getElementById("login-error");
    error.textContent = "";
    try {
      await api("POST", "/ui/login", body);
      location.href = form.dataset.next || "/";
    } catch (e) { error.textContent = e.message; }
  });
})();
