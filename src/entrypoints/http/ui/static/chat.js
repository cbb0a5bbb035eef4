// Chat: POST /api/chat with stream=true; tokens are appended as they arrive. Stop aborts the
// request, and the server stops generating when its client goes away (the audit row says cancelled).
// The overrides' applied values come from GET /api/chat/params (request > profile > system).
// Vision models (a model of type "vision", or a profile of one): images picked here go with the next
// message as data: URLs in its `images` (the API's image input); the picker is hidden and disabled otherwise.
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
  const imagesField = document.getElementById("images-field");
  const imagesInput = document.getElementById("images");
  const imagesError = document.getElementById("images-error");
  const attachmentList = document.getElementById("attachments");
  const INTEGER = new Set(["max_tokens", "seed"]);
  const MAX_IMAGE_BYTES = 20 * 1024 * 1024; // the server's default MLX_SERVER_MAX_IMAGE_BYTES
  let history = [];
  let controller = null;
  let attachments = []; // {name, url}: data: URLs for the next message

  function isVision() {
    const option = target.selectedOptions[0];
    return Boolean(option && option.dataset.vision === "true");
  }

  function renderAttachments() {
    attachmentList.replaceChildren(...attachments.map((a, i) => el("li", {},
      el("img", { src: a.url, alt: a.name, width: "48", height: "48" }),
      el("span", { class: "mono" }, a.name),
      el("button", { type: "button", "aria-label": `Remove ${a.name}`, onclick: () => {
        attachments.splice(i, 1); renderAttachments(); imagesInput.focus(); } }, "Remove"))));
  }

  function syncImagePicker() {
    const vision = isVision();
    imagesField.hidden = !vision;
    imagesInput.disabled = !vision;
    if (!vision && attachments.length) { attachments = []; renderAttachments(); }
  }

  function readAsDataUrl(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  imagesInput.addEventListener("change", async () => {
    imagesError.textContent = "";
    for (const file of Array.from(imagesInput.files)) {
      if (!file.type.startsWith("image/")) { imagesError.textContent = `${file.name} is not an image.`; continue; }
      if (file.size > MAX_IMAGE_BYTES) { imagesError.textContent = `${file.name} is larger than 20 MiB.`; continue; }
      attachments.push({ name: file.name, url: await readAsDataUrl(file) });
    }
    imagesInput.value = ""; // the same file can be picked again
    renderAttachments();
  });

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

  function bubble(role, text, images) {
    const node = el("div", { class: "msg " + role }, el("span", { class: "who" }, role === "user" ? "You" : "Assistant"),
      images && images.length ? el("div", { class: "thumbs" }, images.map((a) => el("img", { src: a.url, alt: a.name, height: "64" }))) : null,
      el("span", { class: "text" }, text));
    transcript.append(node);
    transcript.scrollTop = transcript.scrollHeight;
    return node.querySelector(".text");
  }

  async function send() {
    const text = prompt.value.trim();
    const images = isVision() ? attachments : [];
    if ((!text && !images.length) || !target.value || controller) return;
    prompt.value = "";
    bubble("user", text, images);
    const turn = { role: "user", content: text };
    if (images.length) turn.images = images.map((a) => a.url);
    history.push(turn);
    attachments = [];
    renderAttachments();
    const out = bubble("assistant", "");
    out.parentElement.setAttribute("aria-busy", "true");
    const messages = [];
    const system = overrides.elements.namedItem("system_prompt").value.trim();
    if (system) messages.push({ role: "system", content: system });
    // A conversation moved to a text model: earlier turns' images stay out (the API would refuse them); said below.
    const vision = isVision();
    const droppedImages = !vision && history.some((m) => m.images);
    messages.push(...history.map((m) => (vision || !m.images ? m : { role: m.role, content: m.content })));
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
      if (droppedImages) status.textContent += ` · earlier images were not sent: ${target.value} is not a vision model`;
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
  target.addEventListener("change", () => { syncImagePicker(); refreshResolved(); });
  overrides.addEventListener("input", refreshResolved);

  (async () => {
    try {
      const [profiles, models] = await Promise.all([api("GET", "/api/profiles"), api("GET", "/api/models?status=completed&limit=1000")]);
      const textTypes = new Set(["text-gen", "vision"]);
      const chatProfiles = profiles.data.filter((p) => p.profile_type === "inference");
      const chatModels = models.data.filter((m) => textTypes.has(m.type));
      const typeOf = new Map(models.data.map((m) => [m.id, m.type]));
      const vision = (id) => (typeOf.get(id) === "vision" ? "true" : "false");
      target.replaceChildren(
        el("optgroup", { label: "Profiles" }, chatProfiles.map((p) => el("option", { value: p.name, "data-kind": "profile", "data-vision": vision(p.model_id) }, `${p.name} → ${p.model_id}`))),
        el("optgroup", { label: "Models" }, chatModels.map((m) => el("option", { value: m.id, "data-kind": "model", "data-vision": vision(m.id) }, m.type === "vision" ? `${m.id} (vision)` : m.id))));
      const wanted = new URLSearchParams(location.search).get("target");
      if (wanted) target.value = wanted;
      syncImagePicker();
      if (!chatProfiles.length && !chatModels.length) status.textContent = "No text model in the library yet.";
      refreshResolved();
    } catch (e) { toast(e.message, "bad"); }
  })();
})();
