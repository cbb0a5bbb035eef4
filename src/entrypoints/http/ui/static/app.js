// mlxm web UI: shared helpers. Every page calls the HTTP API (/api, /v1) like any client;
// the session cookie stands in for the key, and writes carry the page's CSRF token.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const IS_ADMIN = document.body.dataset.admin === "true";

class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.type = err.type;
    this.param = err.param || null;
  }
}

function headers(extra) {
  const h = Object.assign({ "Accept": "application/json" }, extra || {});
  if (CSRF) h["X-CSRF-Token"] = CSRF;
  return h;
}

async function api(method, url, body) {
  const init = { method, headers: headers(), credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (response.status === 401 && !url.startsWith("/ui/login")) {
    location.href = "/ui/login?next=" + encodeURIComponent(location.pathname);
    throw new ApiError(401, null);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Server-sent events over fetch (POST bodies and AbortController, which EventSource lacks).
async function streamEvents(url, init, onEvent) {
  const response = await fetch(url, Object.assign({ credentials: "same-origin" }, init));
  if (!response.ok) {
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    throw new ApiError(response.status, data);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(event, data.join("\n"));
    }
  }
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = Number(n), i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}
function fmtNum(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"); }
function fmtDate(s) { return s ? new Date(s).toISOString().replace("T", " ").slice(0, 16) : "–"; }
function fmtSeconds(s) {
  if (s === null || s === undefined) return "–";
  s = Math.round(s);
  return s >= 3600 ? `${Math.floor(s / 3600)}h ${Math.floor(s % 3600 / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
}

function toast(message, kind, ms) {
  const box = el("div", { class: "notice " + (kind || "ok") }, message);
  document.getElementById("toasts").append(box);
  setTimeout(() => box.remove(), ms || 6000);  // longer for what the user must read (paths kept on disk)
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// A modal confirmation (a <dialog>, keyboard-usable: Esc cancels, focus starts on Cancel).
function confirmDialog(title, message, confirmLabel) {
  return new Promise((resolve) => {
    const cancel = el("button", { type: "button" }, "Cancel");
    const ok = el("button", { type: "button", class: "danger" }, confirmLabel || "Confirm");
    const dialog = el("dialog", { "aria-labelledby": "dlg-title" },
      el("h2", { id: "dlg-title" }, title), el("p", {}, message), el("div", { class: "row" }, cancel, ok));
    const done = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
    cancel.addEventListener("click", () => done(false));
    ok.addEventListener("click", () => done(true));
    dialog.addEventListener("cancel", (e) => { e.preventDefault(); done(false); });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

// Show an API error next to the field it names (`param`, e.g. "audio.speed"), else in `fallback`.
function showFieldErrors(form, error, fallback) {
  clearFieldErrors(form);
  const param = error.param || "";
  const candidates = [param, param.split(".").slice(-1)[0], param.replace(/^body\./, "")];
  for (const name of candidates) {
    if (!name) continue;
    const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
    if (input) {
      const slot = document.getElementById(input.getAttribute("aria-describedby") || "");
      input.setAttribute("aria-invalid", "true");
      if (slot) slot.textContent = error.message;
      input.focus();
      return;
    }
  }
  fallback.textContent = error.message;
}

function clearFieldErrors(form) {
  form.querySelectorAll('[aria-invalid="true"]').forEach((i) => i.removeAttribute("aria-invalid"));
  form.querySelectorAll(".error-text").forEach((s) => { s.textContent = ""; });
}

const logoutButton = document.getElementById("logout");
if (logoutButton) {
  logoutButton.addEventListener("click", async () => {
    try { await api("POST", "/ui/logout"); } finally { location.href = "/ui/login"; }
  });
}

// A table wider than the window scrolls inside its wrapper (the page itself never scrolls sideways).
// Keyboard users must reach that scroll area too (WCAG 2.1.1): a wrapper that overflows becomes a
// focusable region named after its table's caption; it stops being one when it fits again.
function markScrollRegions() {
  document.querySelectorAll(".table-wrap").forEach((wrap) => {
    const scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
    if (scrolls && !wrap.hasAttribute("tabindex")) {
      const caption = wrap.querySelector("caption");
      wrap.setAttribute("tabindex", "0");
      wrap.setAttribute("role", "region");
      // "<caption> (table)": distinct from a section the caption may share its words with
      wrap.setAttribute("aria-label", `${(caption && caption.textContent.trim()) || "Data"} (table)`);
    } else if (!scrolls && wrap.hasAttribute("tabindex")) {
      for (const name of ["tabindex", "role", "aria-label"]) wrap.removeAttribute(name);
    }
  });
}
let scrollRegionsPending = false;
function scheduleScrollRegions() {
  if (scrollRegionsPending) return;
  scrollRegionsPending = true;
  requestAnimationFrame(() => { scrollRegionsPending = false; markScrollRegions(); });
}
window.addEventListener("resize", scheduleScrollRegions);
new MutationObserver(scheduleScrollRegions).observe(document.body, { childList: true, subtree: true });
scheduleScrollRegions();
