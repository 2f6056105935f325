"use strict";
(function () {
  const { request, readJSON, live } = window.nicobot;
  const S = readJSON("channel-strings");
  const POLL_MS = 3000;
  /* States in which waiting for a QR code is pointless: say why instead. */
  const BROKEN = new Set(["unreachable", "error", "not_configured", "logged_out", "qr_limit"]);
  const cards = new Map();

  function setup(card) {
    const name = card.dataset.channel;
    const statusNode = card.querySelector(".card-status");
    let status = JSON.parse(statusNode.textContent);
    let scanning = false;
    let busy = false;
    let timer = null;

    const pairsByQR = card.dataset.qr === "true";

    function viewState() {
      if (status.connected) return "connected";
      if (status.state === "not_configured") return "not-configured";
      if (pairsByQR && (scanning || status.qr || status.state === "scanning")) return "scanning";
      return "disconnected";
    }

    function label(state) {
      if (state === "disconnected" && status.state === "unreachable") return S.unreachable;
      if (state === "disconnected" && status.state === "error") return S.error;
      return { "connected": S.connected, "not-configured": S.not_configured, "scanning": S.scanning }[state] || S.disconnected;
    }

    function render() {
      const state = viewState();
      card.dataset.view = state;
      card.dataset.state = status.state || "";
      card.dataset.connected = status.connected ? "true" : "false";
      card.querySelectorAll(".state").forEach((node) => { node.hidden = !node.classList.contains("state-" + state); });
      card.querySelector(".status-text").textContent = label(state);
      const dot = state === "disconnected" && BROKEN.has(status.state) ? status.state : state;
      card.querySelector(".status-dot").className = "status-dot dot-" + dot;
      const details = card.querySelector(".details");
      if (details) {
        const reason = S.reasons[status.reason] || S.reasons[status.state];
        const quiet = state === "connected" || state === "not-configured" || state === "scanning";
        details.textContent = quiet ? "" : (status.failure || reason || status.details || "");
      }
      const account = card.querySelector(".account");
      if (account) account.textContent = status.account || "";
      const img = card.querySelector("img.qr");
      if (img) {
        img.hidden = !status.qr;
        if (status.qr) img.src = status.qr;
        card.querySelector(".qr-wait").hidden = Boolean(status.qr);
      }
    }

    function stopPolling() { if (timer) { clearInterval(timer); timer = null; } }

    /* A status from the server: while pairing, a broken gateway ends the wait. */
    function apply(next) {
      status = next;
      if (status.connected) { scanning = false; stopPolling(); }
      if (scanning && !status.qr && (BROKEN.has(status.state) || BROKEN.has(status.reason))) { scanning = false; stopPolling(); }
      render();
    }

    async function poll() {
      try {
        apply(await request("GET", "/api/channels/" + encodeURIComponent(name) + "/status"));
      } catch (error) {
        status = Object.assign({}, status, { failure: S.failed + " " + error.message });
        render();
      }
    }

    async function act(action) {
      busy = true;
      try {
        apply(await request("POST", "/api/channels/" + encodeURIComponent(name) + "/" + action));
      } catch (error) {
        scanning = false;
        stopPolling();
        status = Object.assign({}, status, { failure: S.failed + " " + error.message });
        render();
      } finally {
        busy = false;
      }
    }

    const connect = card.querySelector("button.connect");
    if (connect) connect.addEventListener("click", async () => {
      if (!pairsByQR) { await act("connect"); return; }
      scanning = true;
      status = Object.assign({}, status, { failure: null });
      render();
      await act("connect");
      if (scanning && !status.connected && !timer) timer = setInterval(poll, POLL_MS);
    });
    const cancel = card.querySelector("button.cancel");
    if (cancel) cancel.addEventListener("click", async () => {
      scanning = false; stopPolling();
      await act("disconnect");
    });
    const disconnect = card.querySelector("button.disconnect");
    if (disconnect) disconnect.addEventListener("click", () => act("disconnect"));

    if (viewState() === "scanning") { scanning = true; timer = setInterval(poll, POLL_MS); }
    render();
    return { update(next) { if (!busy) apply(next); } };
  }

  document.querySelectorAll(".channel-card:not(.available)").forEach((card) => cards.set(card.dataset.channel, setup(card)));

  const cursorNode = document.getElementById("channel-cursor");
  live(cursorNode ? Number(cursorNode.dataset.cursor) : 0, {
    channels(statuses) {
      for (const [name, status] of Object.entries(statuses)) {
        const card = cards.get(name);
        if (card) card.update(status);
      }
    },
  });
})();
