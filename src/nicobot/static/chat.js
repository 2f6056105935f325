"use strict";
(function () {
  const { request, el, formatTime, readJSON } = window.nicobot;
  const data = readJSON("chat-data");
  const S = data.strings;
  let current = data.current;
  let messages = data.messages;
  let sessions = data.sessions;

  function initials(session) {
    const name = (session.sender_name || "").trim();
    if (!name) return "#";
    const words = name.split(/\s+/).filter((w) => /\p{L}/u.test(w[0]));
    return words.slice(0, 2).map((w) => w[0]).join("").toUpperCase() || "#";
  }

  function displayName(session) {
    const name = session.sender_name;
    const phone = session.phone_number;
    if (name && phone) return name + " (" + phone + ")";
    return name || phone || session.address;
  }

  function badge(session) {
    if (session.channel === "whatsapp") return el("span", "badge badge-wa", "WA");
    if (session.channel.startsWith("whatsapp-")) {
      return el("span", "badge badge-wa", "WA " + session.channel.slice("whatsapp-".length));
    }
    if (session.channel === "simulator") return el("span", "badge badge-sim", S.simulator);
    const label = data.channel_labels[session.channel] || session.channel;
    return el("span", "badge", label);
  }

  function avatar(session) {
    const node = el("div", "avatar avatar-" + session.channel);
    node.setAttribute("aria-hidden", "true");
    if (session.channel === "whatsapp" || session.channel.startsWith("whatsapp-")) {
      node.textContent = "\u260E";
    } else {
      node.textContent = initials(session);
    }
    return node;
  }

  function renderSessions() {
    const list = document.getElementById("session-list");
    list.replaceChildren();
    document.getElementById("no-sessions").hidden = sessions.length > 0;
    for (const s of sessions) {
      const item = el("li", "session-item" + (current && current.id === s.id ? " active" : ""));
      const link = el("a");
      link.href = "/?session=" + encodeURIComponent(s.id);
      link.dataset.sessionId = s.id;
      link.appendChild(avatar(s));
      const body = el("div", "session-body");
      const top = el("div", "session-top");
      top.appendChild(el("span", "session-name", displayName(s)));
      top.appendChild(badge(s));
      if (s.paused) top.appendChild(el("span", "badge badge-paused", S.paused));
      if (s.opted_out) top.appendChild(el("span", "badge badge-opted-out", S.opted_out));
      body.appendChild(top);
      const bottom = el("div", "session-bottom");
      bottom.appendChild(el("span", "session-last", s.last_message || ""));
      bottom.appendChild(el("time", "session-time", formatTime(s.last_message_at, data.lang, data.timezone)));
      body.appendChild(bottom);
      link.appendChild(body);
      item.appendChild(link);
      list.appendChild(item);
    }
  }

  function renderHead() {
    if (!current) return;
    const head = document.getElementById("head-avatar");
    if (!head) return;
    head.replaceWith(Object.assign(avatar(current), { id: "head-avatar" }));
    const name = document.getElementById("head-name");
    name.replaceChildren(el("span", null, current.sender_name || current.phone_number || current.address), badge(current));
    const sub = [];
    if (current.phone_number) sub.push("+" + current.phone_number);
    else sub.push(current.address);
    if (current.prompt_context) sub.push(current.prompt_context);
    document.getElementById("head-sub").textContent = sub.join(" · ");
    document.getElementById("pause-session").hidden = current.paused;
    document.getElementById("resume-session").hidden = !current.paused;
    const note = document.getElementById("paused-note");
    note.hidden = !current.paused && !current.opted_out;
    note.textContent = current.opted_out ? S.opted_out_note : S.paused_note;
  }

  function messageNode(m) {
    const item = el("li", "msg msg-" + m.role);
    const bubble = el("div", "bubble");
    if (m.role === "operator") bubble.appendChild(el("div", "msg-author", S.operator));
    bubble.appendChild(el("div", "msg-text", m.text || S.no_text));
    const meta = el("div", "msg-meta");
    const mode = m.meta && m.meta.mode;
    if (mode === "offline") meta.appendChild(el("span", "msg-mode", S.offline_mode));
    if (mode === "apology") meta.appendChild(el("span", "msg-mode warn", S.apology_mode));
    if (mode === "handoff") meta.appendChild(el("span", "msg-mode", S.handoff_mode));
    if (mode === "non_text") meta.appendChild(el("span", "msg-mode", S.non_text_mode));
    if (m.meta && m.meta.transcribed) meta.appendChild(el("span", "msg-mode", S.transcribed));
    meta.appendChild(el("time", null, formatTime(m.created_at, data.lang, data.timezone)));
    bubble.appendChild(meta);
    const sources = m.meta && m.meta.sources;
    if (sources && sources.length) {
      const names = [...new Set(sources.map((s) => s.source + (s.heading ? " › " + s.heading : "")))];
      bubble.appendChild(el("div", "msg-sources", S.answered_from + " " + names.join(", ")));
    }
    item.appendChild(bubble);
    return item;
  }

  function renderTranscript() {
    const list = document.getElementById("transcript");
    if (!list) return;
    list.replaceChildren(...messages.map(messageNode));
    list.scrollTop = list.scrollHeight;
  }

  function showError(message) {
    const node = document.getElementById("chat-error");
    node.textContent = message;
    node.hidden = !message;
  }

  function typingNode() {
    const item = el("li", "msg msg-assistant typing");
    item.appendChild(el("div", "bubble", S.typing));
    return item;
  }

  async function send(payload, pendingText) {
    showError("");
    const list = document.getElementById("transcript");
    let typing = null;
    if (list) {
      list.appendChild(messageNode({ role: "user", text: pendingText, created_at: new Date().toISOString(), meta: {} }));
      typing = typingNode();
      list.appendChild(typing);
      list.scrollTop = list.scrollHeight;
    }
    try {
      const result = await request("POST", "/api/chat", payload);
      if (!current || current.id !== result.session_id) {
        window.location.href = "/?session=" + encodeURIComponent(result.session_id);
        return;
      }
      await refresh();
    } catch (error) {
      if (typing) typing.remove();
      showError(S.send_failed + " " + error.message);
    }
  }

  async function refresh() {
    try {
      const listing = await request("GET", "/api/sessions");
      sessions = listing.sessions;
      if (current) {
        const detail = await request("GET", "/api/sessions/" + encodeURIComponent(current.id));
        current = detail.session;
        messages = detail.messages;
      }
      renderSessions();
      renderHead();
      renderTranscript();
    } catch (error) {
      if (error instanceof TypeError) showError(S.network_error);
    }
  }

  const composer = document.getElementById("composer");
  if (composer) {
    const box = composer.querySelector("textarea");
    composer.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = box.value.trim();
      if (!text) return;
      box.value = "";
      send({ session_id: current.id, message: text }, text);
    });
    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); composer.requestSubmit(); }
    });
    box.focus();
  }

  const newChat = document.getElementById("new-chat");
  if (newChat) {
    newChat.addEventListener("submit", (event) => {
      event.preventDefault();
      const form = new FormData(newChat);
      const payload = {
        phone_number: form.get("phone_number"),
        sender_name: form.get("sender_name"),
        prompt_context: form.get("prompt_context"),
        message: form.get("message"),
      };
      newChat.querySelector("button[type=submit]").disabled = true;
      send(payload, payload.message).finally(() => { newChat.querySelector("button[type=submit]").disabled = false; });
    });
  }

  const del = document.getElementById("delete-session");
  if (del) {
    del.addEventListener("click", async () => {
      if (!window.confirm(S.confirm_delete)) return;
      try {
        await request("DELETE", "/api/sessions/" + encodeURIComponent(current.id));
        window.location.href = "/";
      } catch (error) { showError(error.message); }
    });
  }

  async function setPaused(paused) {
    try {
      current = await request("POST", "/api/sessions/" + encodeURIComponent(current.id) + (paused ? "/pause" : "/resume"));
      await refresh();
    } catch (error) { showError(error.message); }
  }
  const pauseButton = document.getElementById("pause-session");
  if (pauseButton) pauseButton.addEventListener("click", () => setPaused(true));
  const resumeButton = document.getElementById("resume-session");
  if (resumeButton) resumeButton.addEventListener("click", () => setPaused(false));

  renderSessions();
  renderHead();
  renderTranscript();
  setInterval(refresh, 5000);
})();
