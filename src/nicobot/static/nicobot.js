"use strict";
/* Shared helpers for nicobot's pages: JSON requests with the CSRF token. */
window.nicobot = (function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

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
      throw new Error(message);
    }
    return data;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function formatTime(iso, lang, timeZone) {
    if (!iso) return "";
    const date = new Date(iso);
    const now = new Date();
    const sameDay = date.toLocaleDateString(lang, { timeZone }) === now.toLocaleDateString(lang, { timeZone });
    const options = sameDay ? { hour: "2-digit", minute: "2-digit", timeZone }
      : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZone };
    return new Intl.DateTimeFormat(lang, options).format(date);
  }

  function readJSON(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  return { request, el, formatTime, readJSON };
})();

/* The language menu switches at once (no inline handlers: the pages' CSP forbids them). */
document.addEventListener("DOMContentLoaded", function () {
  const select = document.getElementById("lang-select");
  if (select) select.addEventListener("change", function () { select.form.submit(); });
});
