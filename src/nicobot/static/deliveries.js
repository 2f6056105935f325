"use strict";
(function () {
  const { request, el, formatTime, readJSON, live } = window.nicobot;
  const S = readJSON("outbox-strings");

  // Failed sends (outbox) and failed customer messages (turns): one table each.
  const LISTS = [
    { prefix: "outbox", url: "/api/outbox?status=failed", key: "outbox", when: "created_at",
      retry: (id) => "/api/outbox/" + id + "/retry" },
    { prefix: "turns", url: "/api/turns/failed", key: "turns", when: "failed_at",
      retry: (id) => "/api/turns/" + id + "/retry" },
  ];

  async function load(list) {
    const errorBox = document.getElementById(list.prefix + "-error");
    try {
      const data = await request("GET", list.url);
      const entries = data[list.key];
      const rows = document.getElementById(list.prefix + "-rows");
      rows.replaceChildren();
      for (const entry of entries) {
        const row = el("tr");
        const when = el("td");
        const stamp = entry[list.when] || entry.received_at;
        const time = el("time", null, formatTime(stamp));
        time.dateTime = stamp;
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
          try { await request("POST", list.retry(entry.id)); errorBox.hidden = true; await load(list); }
          catch (error) { errorBox.textContent = error.message; errorBox.hidden = false; button.disabled = false; }
        });
        action.appendChild(button);
        row.appendChild(action);
        rows.appendChild(row);
      }
      document.getElementById(list.prefix + "-table").hidden = entries.length === 0;
      document.getElementById(list.prefix + "-empty").hidden = entries.length > 0;
    } catch (error) {
      errorBox.textContent = error.message;
      errorBox.hidden = false;
    }
  }

  const loadAll = () => LISTS.forEach(load);
  let timer = null;
  const soon = () => { if (!timer) timer = setTimeout(() => { timer = null; loadAll(); }, 300); };
  live(S.cursor, { change(change) { if (change.kind !== "session") soon(); }, resync: loadAll });
  loadAll();
})();
