"use strict";
(function () {
  const { request } = window.nicobot;
  const S = window.nicobot.readJSON("channel-strings");
  const POLL_MS = 5000;

  function setup(card) {
    const name = card.dataset.channel;
    const statusNode = card.querySelector(".card-status");
    let status = JSON.parse(statusNode.textContent);
    let scanning = false;
    let timer = null;

    const pairsByQR = card.dataset.qr === "true";

    function viewState() {
      if (status.connected) return "connected";
      if (status.state === "not_configured") return "not-configured";
      if (pairsByQR && (scanning || status.qr || status.state === "scanning")) return "scanning";
      return "disconnected";
    }

    function render() {
      const state = viewState();
      card.dataset.view = state;
      card.querySelectorAll(".state").forEach((node) => { node.hidden = !node.classList.contains("state-" + state); });
      const label = { "connected": S.connected, "not-configured": S.not_configured, "scanning": S.scanning }[state] || S.disconnected;
      card.querySelector(".status-text").textContent = label;
      card.querySelector(".status-dot").className = "status-dot dot-" + state;
      const details = card.querySelector(".details");
      if (details) {
        const reason = S.reasons[status.reason] || S.reasons[status.state];
        const quiet = state === "connected" || state === "not-configured" || state === "scanning";
        details.textContent = quiet ? "" : (reason || status.details || "");
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

    async function poll() {
      try {
        status = await request("GET", "/api/channels/" + encodeURIComponent(name) + "/status");
      } catch (error) {
        status = Object.assign({}, status, { details: S.failed + " " + error.message });
      }
      if (status.connected) { scanning = false; stopPolling(); }
      render();
    }

    async function act(action) {
      try {
        status = await request("POST", "/api/channels/" + encodeURIComponent(name) + "/" + action);
      } catch (error) {
        status = Object.assign({}, status, { details: S.failed + " " + error.message });
        scanning = false;
      }
      render();
    }

    const connect = card.querySelector("button.connect");
    if (connect) connect.addEventListener("click", async () => {
      if (!pairsByQR) { await act("connect"); return; }
      scanning = true;
      render();
      await act("connect");
      if (!status.connected && scanning && !timer) timer = setInterval(poll, POLL_MS);
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
  }

  document.querySelectorAll(".channel-card:not(.available)").forEach(setup);
})();
