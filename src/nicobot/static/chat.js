"use strict";
(function () {
  const { request, el, formatTime, readJSON, live } = window.nicobot;
  const data = readJSON("chat-data");
  const S = data.strings;
  let current = data.current;
  let messages = data.messages;
  let sessions = data.sessions;
  let query = "";

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (_m, key) => (values[key] === undefined ? "" : String(values[key])));
  }

  function initials(session) {
    const name = (session.sender_name || "").trim();
    if (!name) return "#";
    const words = name.split(/\s+/).filter((w) => /\p{L}/u.test(w[0]));
    return words.slice(0, 2).map((w) => w[0]).join("").toUpperCase() || "#";
  }

  function displayName(session) {
    return session.sender_name || (session.phone_number ? "+" + session.phone_number : session.address);
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
    const whatsapp = session.channel === "whatsapp" || session.channel.startsWith("whatsapp-");
    node.textContent = whatsapp ? "\u260E" : initials(session);
    return node;
  }

  function timeNode(iso) {
    const node = el("time", null, formatTime(iso));
    if (iso) node.dateTime = iso;
    return node;
  }

  function renderSessions() {
    const list = document.getElementById("session-list");
    list.replaceChildren();
    document.getElementById("no-sessions").hidden = sessions.length > 0 || Boolean(query);
    document.getElementById("no-matches").hidden = sessions.length > 0 || !query;
    for (const s of sessions) {
      const item = el("li", "session-item" + (current && current.id === s.id ? " active" : ""));
      const link = el("a");
      link.href = "/?session=" + encodeURIComponent(s.id);
      link.dataset.sessionId = s.id;
      link.appendChild(avatar(s));
      const body = el("div", "session-body");
      const top = el("div", "session-top");
      const name = el("span", "session-name", displayName(s));
      if (s.sender_name && s.phone_number) name.title = s.sender_name + " (+" + s.phone_number + ")";
      top.appendChild(name);
      const badges = el("span", "session-badges");
      badges.appendChild(badge(s));
      if (s.paused) badges.appendChild(el("span", "badge badge-paused", S.paused));
      if (s.opted_out) badges.appendChild(el("span", "badge badge-opted-out", S.opted_out));
      top.appendChild(badges);
      body.appendChild(top);
      const bottom = el("div", "session-bottom");
      bottom.appendChild(el("span", "session-last", s.last_message || ""));
      const when = timeNode(s.last_message_at);
      when.className = "session-time";
      bottom.appendChild(when);
      body.appendChild(bottom);
      link.appendChild(body);
      item.appendChild(link);
      list.appendChild(item);
    }
  }

  let pauseTimer = null;

  function renderHead() {
    if (!current) return;
    const head = document.getElementById("head-avatar");
    if (!head) return;
    head.replaceWith(Object.assign(avatar(current), { id: "head-avatar" }));
    const name = document.getElementById("head-name");
    const who = el("span", "who-text", current.sender_name || (current.phone_number ? "+" + current.phone_number : current.address));
    name.replaceChildren(who, badge(current));
    const sub = [];
    sub.push(current.phone_number ? "+" + current.phone_number : current.address);
    if (current.prompt_context) sub.push(current.prompt_context);
    document.getElementById("head-sub").textContent = sub.join(" · ");
    document.getElementById("pause-session").hidden = current.paused;
    document.getElementById("resume-session").hidden = !current.paused;
    const note = document.getElementById("paused-note");
    note.hidden = !current.paused && !current.opted_out;
    document.getElementById("paused-resume").hidden = !current.paused;
    if (current.opted_out && !current.paused) {
      document.getElementById("paused-text").textContent = S.opted_out_note;
    } else if (current.paused) {
      const until = new Date(current.paused_until);
      const forever = until.getTime() - Date.now() > 3650 * 86400000;
      document.getElementById("paused-text").textContent = forever ? S.paused_forever : fill(S.paused_until, { time: formatTime(current.paused_until) });
      if (pauseTimer) clearTimeout(pauseTimer);
      const wait = until.getTime() - Date.now();
      if (!forever && wait > 0 && wait < 2 ** 31 - 1) pauseTimer = setTimeout(refresh, wait + 500);
    }
    updateComposer();
  }

  function deliveryNode(m) {
    const d = m.delivery;
    if (!d) return null;
    const node = el("span", "delivery delivery-" + d.status);
    if (d.status === "sent") {
      node.textContent = "\u2713 " + S.sent;
    } else if (d.status === "queued") {
      node.textContent = d.error ? S.retrying + " " + d.error : S.queued;
    } else {
      node.appendChild(el("span", null, "\u26A0 " + S.failed + " " + (d.error || "")));
      const retry = el("button", "link-button retry", S.retry);
      retry.type = "button";
      retry.addEventListener("click", async () => {
        retry.disabled = true;
        try {
          for (const id of d.outbox_ids) await request("POST", "/api/outbox/" + id + "/retry");
          showError("");
          await refresh();
        } catch (error) { retry.disabled = false; showError(error.message); }
      });
      node.appendChild(retry);
    }
    return node;
  }

  function authorLabel(m) {
    if (m.meta && m.meta.source === "page") return S.operator_page;
    if (m.meta && m.meta.message_id) return S.operator_phone;
    return S.operator;
  }

  function messageNode(m) {
    const item = el("li", "msg msg-" + m.role + (m.delivery && m.delivery.status === "failed" ? " msg-failed" : ""));
    if (m.id !== undefined) item.dataset.messageId = m.id;
    const bubble = el("div", "bubble");
    if (m.role === "operator") bubble.appendChild(el("div", "msg-author", authorLabel(m)));
    bubble.appendChild(el("div", "msg-text", m.text || S.no_text));
    const meta = el("div", "msg-meta");
    const mode = m.meta && m.meta.mode;
    if (mode === "offline") meta.appendChild(el("span", "msg-mode", S.offline_mode));
    if (mode === "apology") meta.appendChild(el("span", "msg-mode warn", S.apology_mode));
    if (mode === "handoff") meta.appendChild(el("span", "msg-mode", S.handoff_mode));
    if (mode === "non_text") meta.appendChild(el("span", "msg-mode", S.non_text_mode));
    if (m.meta && m.meta.transcribed) meta.appendChild(el("span", "msg-mode", S.transcribed));
    meta.appendChild(timeNode(m.created_at));
    const delivery = deliveryNode(m);
    if (delivery) meta.appendChild(delivery);
    bubble.appendChild(meta);
    const sources = m.meta && m.meta.sources;
    if (sources && sources.length) {
      // one entry per document, with the sections quoted from it
      const headings = new Map();
      for (const s of sources) {
        if (!headings.has(s.source)) headings.set(s.source, new Set());
        if (s.heading) headings.get(s.source).add(s.heading);
      }
      const names = [...headings].map(([source, sections]) =>
        sections.size ? source + " › " + [...sections].join("; ") : source);
      bubble.appendChild(el("div", "msg-sources", S.answered_from + " " + names.join(", ")));
    }
    item.appendChild(bubble);
    return item;
  }

  function renderTranscript(stickToBottom) {
    const list = document.getElementById("transcript");
    if (!list) return;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    list.replaceChildren(...messages.map(messageNode));
    if (stickToBottom || atBottom) list.scrollTop = list.scrollHeight;
  }

  function showError(message) {
    const node = document.getElementById("chat-error");
    if (!node) return;
    node.textContent = message;
    node.hidden = !message;
  }

  function showInfo(message) {
    const node = document.getElementById("chat-info");
    if (!node) return;
    node.textContent = message;
    node.hidden = !message;
  }

  function typingNode() {
    const item = el("li", "msg msg-assistant typing");
    item.appendChild(el("div", "bubble", S.typing));
    return item;
  }

  function writingAs() {
    const chosen = document.querySelector("#composer input[name=as]:checked");
    if (chosen) return chosen.value;
    return current && current.channel === "simulator" ? "customer" : "operator";
  }

  function updateComposer() {
    const box = document.getElementById("message");
    if (!box) return;
    box.placeholder = writingAs() === "customer" ? S.placeholder_customer : S.placeholder_operator;
    if (writingAs() === "operator" && !current.paused && data.handoff_minutes > 0) box.title = S.reply_pauses;
    else box.title = "";
  }

  async function sendAsCustomer(payload, pendingText) {
    showError("");
    showInfo("");
    const list = document.getElementById("transcript");
    let typing = null;
    if (list) {
      list.appendChild(messageNode({ role: "user", text: pendingText, created_at: new Date().toISOString(), meta: {} }));
      if (!current || !current.paused) { typing = typingNode(); list.appendChild(typing); }
      list.scrollTop = list.scrollHeight;
    }
    try {
      const result = await request("POST", "/api/chat", payload);
      if (!current || current.id !== result.session_id) {
        window.location.href = "/?session=" + encodeURIComponent(result.session_id);
        return;
      }
    } catch (error) {
      if (error.status === 409 && error.data && error.data.mode === "paused") showInfo(S.stored_while_paused);
      else if (error.status === 202 || (error.data && error.data.mode === "pending")) showInfo(S.pending_reply);
      else showError(S.send_failed + " " + networkMessage(error));
    } finally {
      if (typing) typing.remove();
    }
    await refresh();
  }

  async function sendAsOperator(text) {
    showError("");
    showInfo("");
    try {
      const reply = await request("POST", "/api/sessions/" + encodeURIComponent(current.id) + "/messages", { text });
      current = reply.session;
      if (!messages.some((m) => m.id === reply.id)) messages.push(reply);
      renderHead();
      renderTranscript(true);
    } catch (error) {
      showError(S.send_failed + " " + networkMessage(error));
      const box = document.getElementById("message");
      if (box && !box.value) box.value = text;
    }
    await refresh();
  }

  function networkMessage(error) {
    return error instanceof TypeError ? S.network_error : error.message;
  }

  let refreshing = null;
  let again = false;

  /* Reload the list and the open conversation; calls while one runs are folded into one more. */
  async function refresh() {
    if (refreshing) { again = true; return refreshing; }
    refreshing = (async () => {
      do {
        again = false;
        try {
          const listing = await request("GET", "/api/sessions?limit=200" + (query ? "&q=" + encodeURIComponent(query) : ""));
          sessions = listing.sessions;
          if (current) {
            const detail = await request("GET", "/api/sessions/" + encodeURIComponent(current.id));
            current = detail.session;
            messages = detail.messages;
          }
          renderSessions();
          renderHead();
          renderTranscript(false);
        } catch (error) {
          if (error instanceof TypeError) showError(S.network_error);
          else if (error.status === 404 && current) window.location.href = "/";
        }
      } while (again);
    })();
    try { await refreshing; } finally { refreshing = null; }
  }

  let refreshTimer = null;
  function refreshSoon() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, 150);
  }

  const composer = document.getElementById("composer");
  if (composer) {
    const box = composer.querySelector("textarea");
    const grow = () => { box.style.height = "auto"; box.style.height = Math.min(box.scrollHeight, 160) + "px"; };
    composer.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = box.value.trim();
      if (!text) return;
      box.value = "";
      grow();
      if (writingAs() === "customer") sendAsCustomer({ session_id: current.id, message: text }, text);
      else sendAsOperator(text);
    });
    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); composer.requestSubmit(); }
    });
    box.addEventListener("input", grow);
    composer.querySelectorAll("input[name=as]").forEach((radio) => radio.addEventListener("change", updateComposer));
    if (window.matchMedia("(min-width: 761px)").matches) box.focus();
  }

  const newChat = document.getElementById("new-chat");
  if (newChat) {
    const phone = document.getElementById("phone_number");
    const nameInput = document.getElementById("sender_name");
    const defaultName = nameInput.value;
    const taken = document.getElementById("number-taken");
    const existing = () => {
      const digits = phone.value.replace(/[\s\-().+]/g, "");
      return sessions.find((s) => s.channel === "simulator" && s.address === digits);
    };
    const check = () => {
      const found = existing();
      taken.hidden = !found;
      if (found) taken.textContent = fill(S.number_taken, { name: displayName(found) });
    };
    phone.addEventListener("input", check);
    check();
    newChat.addEventListener("submit", (event) => {
      event.preventDefault();
      const form = new FormData(newChat);
      const found = existing();
      const name = String(form.get("sender_name") || "").trim();
      const payload = {
        phone_number: form.get("phone_number"),
        prompt_context: form.get("prompt_context"),
        message: form.get("message"),
      };
      // continuing a conversation keeps its contact's name unless one was typed
      if (name && !(found && name === defaultName)) payload.sender_name = name;
      const button = newChat.querySelector("button[type=submit]");
      button.disabled = true;
      sendAsCustomer(payload, payload.message).finally(() => { button.disabled = false; });
    });
  }

  const search = document.getElementById("session-search");
  let searchTimer = null;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { query = search.value.trim(); refresh(); }, 250);
  });
  document.getElementById("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    query = search.value.trim();
    refresh();
  });

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
      showError("");
      showInfo("");
      renderHead();
      await refresh();
    } catch (error) { showError(networkMessage(error)); }
  }
  for (const [id, paused] of [["pause-session", true], ["resume-session", false], ["paused-resume", false]]) {
    const button = document.getElementById(id);
    if (button) button.addEventListener("click", () => setPaused(paused));
  }

  live(data.cursor, {
    change(change) {
      if (change.kind === "deleted" && current && change.session_id === current.id) { window.location.href = "/"; return; }
      refreshSoon();
    },
    resync: refresh,
  });

  renderSessions();
  renderHead();
  renderTranscript(true);
})();
