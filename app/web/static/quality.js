/* A State's data-quality report (GET /api/v1/states/{iso3}/quality): one row per hazard or event to look at. */
"use strict";

(() => {
  const iso3 = window.location.pathname.split("/").filter(Boolean)[1].toUpperCase();

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function linkCell(href, label) {
    const td = document.createElement("td");
    const a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    td.append(a);
    return td;
  }

  function render(report) {
    document.title = `${report.state} data quality · landrelease`;
    const stateLink = document.getElementById("state-link");
    stateLink.textContent = report.state;
    stateLink.href = `/dashboard/${report.state}`;
    document.getElementById("tolerance").textContent = report.tolerance_m.toLocaleString("en-GB");
    const counts = document.getElementById("counts");
    counts.textContent = "";
    for (const [kind, n] of Object.entries(report.counts)) {
      const li = document.createElement("li");
      li.textContent = `${kind.replace(/_/g, " ")}: ${n}`;
      li.classList.toggle("none", n === 0);
      counts.append(li);
    }
    const body = document.querySelector("#quality tbody");
    body.textContent = "";
    for (const row of report.rows) {
      const tr = document.createElement("tr");
      tr.dataset.kind = row.kind;
      tr.append(cell(row.kind.replace(/_/g, " ")), cell(row.external_id), cell(row.message),
                cell(row.value === null ? "" : String(row.value), "num"),
                linkCell(row.link, row.event_id ? "the event" : "the hazard"));
      body.append(tr);
    }
    const table = document.getElementById("quality");
    table.hidden = false;
    table.dataset.rows = String(report.rows.length);
  }

  async function load() {
    Dashboard.setStatus("Loading…");
    try {
      render(await Dashboard.getJSON(`/api/v1/states/${iso3}/quality`));
      Dashboard.setStatus("");
      document.body.dataset.loaded = "true";
    } catch (error) {
      Dashboard.showFailure(error);
      document.body.dataset.loaded = "error";
    }
  }

  Dashboard.renderKeyBox(load);
  load();
})();
