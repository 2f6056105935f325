"use strict";
/* Shared helpers for nicobot's pages: JSON requests with the CSRF token, one date format
   in the bot's time zone, and live updates from /api/events. */
window.nicobot = (function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const zoneMeta = document.querySelector('meta[name="nicobot-timezone"]');
  const timeZone = (zoneMeta && zoneMeta.content) || "UTC";
  const lang = document.documentElement.lang || "en";

  class RequestError extends Error {
    constructor(message, status, data) {
      super(message);
      this.status = status;
      this.data = data;
    }
  }

  async function request(method, url, body) {
    const options = { method, headers: { "X-CSRF-Token": csrf, Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (response.status === 401) { window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); }
    if (!response.ok) {
      const message = (data && data.error) || response.statusText || String(response.status);
      throw new RequestError(message, response.status, data);
    }
    return data;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  const dayFormat = new Intl.DateTimeFormat(lang, { year: "numeric", month: "2-digit", day: "2-digit", timeZone });
  const clockFormat = new Intl.DateTimeFormat(lang, { hour: "numeric", minute: "2-digit", timeZone });
  const dateFormat = new Intl.DateTimeFormat(lang, { day: "numeric", month: "short", timeZone });
  const fullFormat = new Intl.DateTimeFormat(lang, { day: "numeric", month: "short", year: "numeric", hour: "numeric", minute: "2-digit", timeZone });

  /* The one date format of the pages, in the bot's time zone: "14:05" today,
     "28 Nov 14:05" this year, "28 Nov 2025 14:05" before. */
  function formatTime(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    if (isNaN(date.getTime())) return iso;
    const now = new Date();
    if (dayFormat.format(date) === dayFormat.format(now)) return clockFormat.format(date);
    const year = (d) => new Intl.DateTimeFormat("en", { year: "numeric", timeZone }).format(d);
    if (year(date) === year(now)) return dateFormat.format(date) + " " + clockFormat.format(date);
    return fullFormat.format(date);
  }

  /* Fill every <time data-iso="..."> inside root with the page's date format. */
  function formatDates(root) {
    (root || document).querySelectorAll("time[data-iso]").forEach((node) => {
      node.textContent = formatTime(node.dataset.iso);
      node.dateTime = node.dataset.iso;
      node.title = fullFormat.format(new Date(node.dataset.iso)) + " (" + timeZone + ")";
    });
  }

  function readJSON(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  /* Live updates: handlers.change(change), handlers.channels(statuses) and
     handlers.resync() (reload everything: after a gap, or every few seconds while the
     stream is down). The stream reconnects with a growing delay. */
  function live(cursor, handlers) {
    const POLL_MS = 5000;
    let delay = 1000;
    let pollTimer = null;
    let source = null;
    const banner = document.getElementById("live-state");

    function polling(on) {
      if (banner) banner.hidden = !on;
      if (on && !pollTimer) pollTimer = setInterval(() => handlers.resync && handlers.resync(), POLL_MS);
      if (!on && pollTimer) { clearInterval(pollTimer); pollTimer = null; }
    }

    function connect() {
      if (!window.EventSource) { polling(true); return; }
      source = new EventSource("/api/events?after=" + encodeURIComponent(cursor));
      source.addEventListener("hello", (event) => {
        const wasPolling = Boolean(pollTimer);
        delay = 1000;
        polling(false);
        if (wasPolling && handlers.resync) handlers.resync();
        cursor = JSON.parse(event.data).cursor;
      });
      source.addEventListener("change", (event) => {
        const change = JSON.parse(event.data);
        cursor = change.id;
        if (handlers.change) handlers.change(change);
      });
      source.addEventListener("channels", (event) => {
        if (handlers.channels) handlers.channels(JSON.parse(event.data));
      });
      source.addEventListener("reset", () => { if (handlers.resync) handlers.resync(); });
      source.onerror = () => {
        polling(true);
        if (source.readyState === EventSource.CLOSED) {
          setTimeout(connect, delay);
          delay = Math.min(delay * 2, 60000);
        }
      };
    }

    window.addEventListener("pagehide", () => { if (source) source.close(); });
    connect();
  }

  document.addEventListener("DOMContentLoaded", () => formatDates(document));

  return { request, el, formatTime, formatDates, readJSON, live, lang, timeZone, RequestError };
})();

/* The language menu switches at once (no inline handlers: the pages' CSP forbids them). */
document.addEventListener("DOMContentLoaded", function () {
  const select = document.getElementById("lang-select");
  if (select) select.addEventListener("change", function () { select.form.submit(); });
});
