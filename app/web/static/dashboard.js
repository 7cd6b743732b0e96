/* Shared by the dashboard pages: the API key kept in this browser session, authorised requests,
   the as-of date control, the page's language (its messages, number and date formats). */
"use strict";

const Dashboard = (() => {
  const KEY_ITEM = "landrelease.apiKey";
  // The page comes in its language (?lang= or Accept-Language) with the scripts' messages in data-messages;
  // English is the message itself.
  const LANG = document.documentElement.lang || "en";
  const MESSAGES = JSON.parse(document.body.dataset.messages || "{}");

  function t(message, values) {
    let text = MESSAGES[message] || message;
    for (const [name, value] of Object.entries(values || {})) text = text.split(`{${name}}`).join(String(value));
    return text;
  }

  // A date for reading: ISO 8601 in English (as the API gives it), the locale's long form otherwise.
  function day(iso) {
    if (!iso || LANG === "en") return iso;
    return new Date(iso + "T00:00:00Z").toLocaleDateString(LANG, { day: "numeric", month: "long", year: "numeric",
                                                                    timeZone: "UTC" });
  }

  // An API or page URL asking for the page's language.
  function withLang(url) {
    if (/[?&]lang=/.test(url)) return url;
    return url + (url.includes("?") ? "&" : "?") + "lang=" + encodeURIComponent(LANG);
  }

  // A key may be handed over once in the URL fragment (#key=...): it is moved into the session
  // storage and removed from the address bar (a fragment is never sent to the server).
  (function takeKeyFromFragment() {
    const match = /(?:^#|&)key=([^&]+)/.exec(window.location.hash);
    if (match) {
      sessionStorage.setItem(KEY_ITEM, decodeURIComponent(match[1]));
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
  })();

  function apiKey() {
    return sessionStorage.getItem(KEY_ITEM) || "";
  }

  function authHeaders() {
    const key = apiKey();
    return key ? { Authorization: "Bearer " + key } : {};
  }

  class NeedsKey extends Error {}

  async function request(url) {
    let response;
    try {
      response = await fetch(withLang(url), { headers: authHeaders() });
    } catch (networkError) {
      // one retry when the connection failed (a restarting server, a dropped connection)
      await new Promise((resolve) => setTimeout(resolve, 500));
      response = await fetch(withLang(url), { headers: authHeaders() });
    }
    if (response.status === 401 || response.status === 403) {
      let detail = "";
      try { detail = (await response.json()).detail || ""; } catch (e) { /* not JSON */ }
      throw new NeedsKey(detail || t("This needs an API key."));
    }
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
      throw new Error(detail);
    }
    return response;
  }

  async function getJSON(url) {
    return (await request(url)).json();
  }

  function renderKeyBox(onChange) {
    const box = document.getElementById("key-box");
    box.textContent = "";
    if (apiKey()) {
      const label = document.createElement("span");
      label.textContent = t("API key kept for this browser session") + " ";
      const forget = document.createElement("button");
      forget.type = "button";
      forget.textContent = t("Forget key");
      forget.addEventListener("click", () => { sessionStorage.removeItem(KEY_ITEM); renderKeyBox(onChange); onChange(); });
      box.append(label, forget);
    } else {
      const form = document.createElement("form");
      const input = document.createElement("input");
      input.type = "password";
      input.placeholder = t("API key (if reads are not public)");
      input.autocomplete = "off";
      input.id = "api-key";
      const use = document.createElement("button");
      use.type = "submit";
      use.textContent = t("Use key");
      form.append(input, use);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        if (input.value.trim()) {
          sessionStorage.setItem(KEY_ITEM, input.value.trim());
          renderKeyBox(onChange);
          onChange();
        }
      });
      box.append(form);
    }
  }

  function today() {
    const now = new Date();
    const pad = (n) => String(n).padStart(2, "0");
    return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
  }

  // The as-of date lives in the query string (?as_of=YYYY-MM-DD) so a view can be linked and reloaded.
  function asOf() {
    const value = new URLSearchParams(window.location.search).get("as_of");
    return value && /^\d{4}-\d{2}-\d{2}$/.test(value) ? value : today();
  }

  function bindAsOf(onChange) {
    const input = document.getElementById("as-of");
    input.value = asOf();
    document.getElementById("as-of-form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (!input.value) return;
      const params = new URLSearchParams(window.location.search);
      params.set("as_of", input.value);
      history.pushState(null, "", window.location.pathname + "?" + params.toString());
      onChange();
    });
    window.addEventListener("popstate", () => { input.value = asOf(); onChange(); });
  }

  function km2(value) {
    if (value === null || value === undefined) return "–";
    return value.toLocaleString(LANG === "en" ? "en-GB" : LANG, { minimumFractionDigits: 3, maximumFractionDigits: 3 });
  }

  function setStatus(text, isError) {
    const status = document.getElementById("status");
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
    status.hidden = !text;
  }

  function showFailure(error) {
    if (error instanceof NeedsKey) {
      setStatus(error.message + " " + t("Enter an API key above; it is kept for this browser session only."), true);
    } else {
      setStatus(t("Could not load the data: {error}", { error: error.message }), true);
    }
  }

  return { apiKey, authHeaders, request, getJSON, renderKeyBox, asOf, bindAsOf, km2, setStatus, showFailure, NeedsKey,
           t, day, withLang, LANG };
})();
