"use strict";
(function () {
  const { request, el, formatTime, readJSON, live } = window.nicobot;
  const S = readJSON("outbox-strings");

  async function load() {
    const errorBox = document.getElementById("outbox-error");
    try {
      const data = await request("GET", "/api/outbox?status=failed");
      const rows = document.getElementById("outbox-rows");
      rows.replaceChildren();
      for (const entry of data.outbox) {
        const row = el("tr");
        const when = el("td");
        const time = el("time", null, formatTime(entry.created_at));
        time.dateTime = entry.created_at;
        when.appendChild(time);
        row.appendChild(when);
        const link = el("a", null, entry.channel + " · " + entry.address);
        link.href = "/?session=" + encodeURIComponent(entry.session_id);
        const where = el("td");
        where.appendChild(link);
        row.appendChild(where);
        row.appendChild(el("td", "text", entry.text));
        const attempts = el("td", "num", String(entry.attempts));
        attempts.dataset.label = S.attempts;
        row.appendChild(attempts);
        row.appendChild(el("td", "error", entry.last_error || ""));
        const action = el("td");
        const button = el("button", "secondary small", S.retry);
        button.type = "button";
        button.addEventListener("click", async () => {
          button.disabled = true;
          try { await request("POST", "/api/outbox/" + entry.id + "/retry"); errorBox.hidden = true; await load(); }
          catch (error) { errorBox.textContent = error.message; errorBox.hidden = false; button.disabled = false; }
        });
        action.appendChild(button);
        row.appendChild(action);
        rows.appendChild(row);
      }
      document.getElementById("outbox-table").hidden = data.outbox.length === 0;
      document.getElementById("outbox-empty").hidden = data.outbox.length > 0;
    } catch (error) {
      errorBox.textContent = error.message;
      errorBox.hidden = false;
    }
  }

  let timer = null;
  const soon = () => { if (!timer) timer = setTimeout(() => { timer = null; load(); }, 300); };
  live(S.cursor, { change(change) { if (change.kind === "delivery" || change.kind === "deleted") soon(); }, resync: load });
  load();
})();
