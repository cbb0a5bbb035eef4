// Chat: POST /api/chat with stream=true; tokens are appended as they arrive. Stop aborts the
// request, and the server stops generating when its client goes away (the audit row says cancelled).
// The overrides' applied values come from GET /api/chat/params (request > profile > system).
"use strict";
(() => {
  const target = document.getElementById("target");
  const transcript = document.getElementById("transcript");
  const sendForm = document.getElementById("send-form");
  const prompt = document.getElementById("prompt");
  const sendButton = document.getElementById("send");
  const stopButton = document.getElementById("stop");
  const status = document.getElementById("chat-status");
  const overrides = document.getElementById("overrides");
  const INTEGER = new Set(["max_tokens", "seed"]);
  let history = [];
  let controller = null;

  function values() {
    const out = {};
    for (const name of ["temperature", "top_p", "max_tokens", "seed"]) {
      const raw = overrides.elements.namedItem(name).value.trim();
      if (raw !== "") out[name] = INTEGER.has(name) && /^-?\d+$/.test(raw) ? parseInt(raw, 10) : Number(raw);
    }
    return out;
  }

  const refreshResolved = debounce(async () => {
    const error = document.getElementById("ov-error");
    clearFieldErrors(overrides);
    if (!target.value) return;
    const params = new URLSearchParams({ target: target.value });
    for (const [k, v] of Object.entries(values())) params.set(k, v);
    const system = overrides.elements.namedItem("system_prompt").value.trim();
    if (system) params.set("system_prompt", system);
    try {
      const r = await api("GET", "/api/chat/params?" + params);
      for (const name of ["temperature", "top_p", "max_tokens", "seed"]) {
        const p = r.params[name];
        document.getElementById("r-" + name).textContent = p.value === null ? "applies: unset" : `applies: ${p.value} (${p.source})`;
      }
      const sp = r.system_prompt;
      document.getElementById("r-system_prompt").textContent = sp.value ? `applies: ${sp.source}'s prompt` : "applies: none";
    } catch (e) { showFieldErrors(overrides, e, error); }
  }, 200);

  function bubble(role, text) {
    const node = el("div", { class: "msg " + role }, el("span", { class: "who" }, role === "user" ? "You" : "Assistant"),
      el("span", { class: "text" }, text));
    transcript.append(node);
    transcript.scrollTop = transcript.scrollHeight;
    return node.querySelector(".text");
  }

  async function send() {
    const text = prompt.value.trim();
    if (!text || !target.value || controller) return;
    prompt.value = "";
    bubble("user", text);
    history.push({ role: "user", content: text });
    const out = bubble("assistant", "");
    out.parentElement.setAttribute("aria-busy", "true");
    const messages = [];
    const system = overrides.elements.namedItem("system_prompt").value.trim();
    if (system) messages.push({ role: "system", content: system });
    messages.push(...history);
    const isProfile = target.selectedOptions[0].dataset.kind === "profile";
    const body = { messages, stream: true, overrides: values() };
    if (isProfile) body.profile_id = target.value; else body.model = target.value;
    controller = new AbortController();
    sendButton.disabled = true;
    stopButton.disabled = false;
    status.textContent = "Generating…";
    let answer = "";
    let finish = null;
    // Tokens can arrive far faster than the page can lay out: paint at most every 50 ms.
    let painted = 0, timer = null;
    const paint = () => { timer = null; painted = answer.length; out.textContent = answer; transcript.scrollTop = transcript.scrollHeight; };
    const schedule = () => { if (timer === null) timer = setTimeout(paint, 50); };
    try {
      await streamEvents("/api/chat", {
        method: "POST", signal: controller.signal, body: JSON.stringify(body),
        headers: headers({ "Content-Type": "application/json", "Accept": "text/event-stream" }),
      }, (event, data) => {
        if (data === "[DONE]") return;
        const e = JSON.parse(data);
        if (e.error) throw new ApiError(500, e);
        if (e.delta) { answer += e.delta; schedule(); }
        if (e.finish_reason) finish = e;
      });
      status.textContent = finish && finish.usage ? `Done (${finish.finish_reason}; ${finish.usage.completion_tokens} tokens)` : "Done";
    } catch (e) {
      if (e.name === "AbortError") status.textContent = `Stopped after ${answer.length} characters.`;
      else { status.textContent = ""; out.parentElement.append(el("div", { class: "notice bad" }, e.message)); }
    } finally {
      if (timer !== null) clearTimeout(timer);
      if (painted !== answer.length) paint();
      history.push({ role: "assistant", content: answer });
      out.parentElement.removeAttribute("aria-busy");
      controller = null;
      sendButton.disabled = false;
      stopButton.disabled = true;
    }
  }

  sendForm.addEventListener("submit", (e) => { e.preventDefault(); send(); });
  prompt.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); send(); } });
  stopButton.addEventListener("click", () => { if (controller) controller.abort(); });
  document.getElementById("clear").addEventListener("click", () => { history = []; transcript.replaceChildren(); status.textContent = ""; });
  target.addEventListener("change", refreshResolved);
  overrides.addEventListener("input", refreshResolved);

  (async () => {
    try {
      const [profiles, models] = await Promise.all([api("GET", "/api/profiles"), api("GET", "/api/models?status=completed&limit=1000")]);
      const textTypes = new Set(["text-gen", "vision"]);
      const chatProfiles = profiles.data.filter((p) => p.profile_type === "inference");
      const chatModels = models.data.filter((m) => textTypes.has(m.type));
      target.replaceChildren(
        el("optgroup", { label: "Profiles" }, chatProfiles.map((p) => el("option", { value: p.name, "data-kind": "profile" }, `${p.name} → ${p.model_id}`))),
        el("optgroup", { label: "Models" }, chatModels.map((m) => el("option", { value: m.id, "data-kind": "model" }, m.id))));
      const wanted = new URLSearchParams(location.search).get("target");
      if (wanted) target.value = wanted;
      if (!chatProfiles.length && !chatModels.length) status.textContent = "No text model in the library yet.";
      refreshResolved();
    } catch (e) { toast(e.message, "bad"); }
  })();
})();
