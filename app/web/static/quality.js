/* A State's data-quality report (GET /api/v1/states/{iso3}/quality): one row per hazard or event to look at. */
"use strict";

(() => {
  const t = Dashboard.t;
  // the row kinds of the report (app/places/quality.py KINDS)
  const KIND = {
    outside_state: () => t("outside the State"),
    border_flag: () => t("accepted across the border"),
    swapped_coordinates: () => t("swapped coordinates"),
    utm_zone: () => t("wrong UTM zone"),
    duplicate: () => t("duplicate"),
    overlap: () => t("overlap"),
    event_outside_hazard: () => t("event outside its hazard"),
    implausible_area: () => t("implausible area"),
    long_edge: () => t("vertices more than 5 km apart"),
    repaired: () => t("repaired geometry"),
  };
  const kindLabel = (kind) => (KIND[kind] ? KIND[kind]() : kind.replace(/_/g, " "));
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
    document.title = `${t("{state} data quality", { state: report.state })} · landrelease`;
    const stateLink = document.getElementById("state-link");
    stateLink.textContent = report.state;
    stateLink.href = `/dashboard/${report.state}`;
    document.getElementById("tolerance").textContent = report.tolerance_m.toLocaleString(Dashboard.LANG === "en" ? "en-GB" : Dashboard.LANG);
    const counts = document.getElementById("counts");
    counts.textContent = "";
    for (const [kind, n] of Object.entries(report.counts)) {
      const li = document.createElement("li");
      li.textContent = `${kindLabel(kind)}: ${n}`;
      li.classList.toggle("none", n === 0);
      counts.append(li);
    }
    const body = document.querySelector("#quality tbody");
    body.textContent = "";
    for (const row of report.rows) {
      const tr = document.createElement("tr");
      tr.dataset.kind = row.kind;
      tr.append(cell(kindLabel(row.kind)), cell(row.external_id), cell(row.message),
                cell(row.value === null ? "" : String(row.value), "num"),
                linkCell(row.link, row.event_id ? t("the event") : t("the hazard")));
      body.append(tr);
    }
    const table = document.getElementById("quality");
    table.hidden = false;
    table.dataset.rows = String(report.rows.length);
  }

  async function load() {
    Dashboard.setStatus(t("Loading…"));
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
