/* The Committee overview: every State's figures at the as-of date, sortable by any column. */
"use strict";

(() => {
  let rows = [];
  let sortKey = "name";
  let sortDescending = false;

  // One row of GET /api/v1/summary, flattened for sorting (areas in km²).
  function flatten(state) {
    const a5 = state.article5;
    const remaining = state.remaining;
    return {
      state: state.state,
      name: state.name,
      has_hazards: remaining.total.count > 0,
      sha_km2: remaining.sha.area_m2 / 1e6,
      sha_count: remaining.sha.count,
      cha_km2: remaining.cha.area_m2 / 1e6,
      cha_count: remaining.cha.count,
      released_km2: state.released_last_year.released_m2 / 1e6,
      deadline: a5.deadline || "",
      extensions: a5.extensions === null ? -1 : a5.extensions,
      status: a5.status,
      projected_completion: a5.projected_completion || "",
      on_track: a5.on_track === null ? -1 : (a5.on_track ? 1 : 0),
      bound: a5.bound ? 1 : 0,
      bound_reason: a5.bound_reason,
      has_remaining: remaining.total.area_m2 > 0,
    };
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  const STATUS = {
    completed: () => t("completed"), withdrawal_notified: () => t("withdrawal notified"),
    withdrawn: () => t("withdrawn"), not_in_force: () => t("not in force"),
    no_article5_obligation: () => t("no Article 5 obligation"),
  };
  const t = Dashboard.t;

  function deadlineCell(row) {
    const td = cell(Dashboard.day(row.deadline) || "–", "deadline");
    if (row.status && row.status !== "obligation") {
      const status = document.createElement("span");
      status.className = "state-status";
      status.textContent = STATUS[row.status] ? STATUS[row.status]() : row.status.replace(/_/g, " ");
      td.append(status);
    }
    return td;
  }

  function boundCell(row) {
    const td = cell(row.bound ? t("yes") : t("no"), row.bound ? "bound yes" : "bound no");
    td.title = row.bound_reason;
    return td;
  }

  function render() {
    const table = document.getElementById("overview");
    const type = table.querySelector(`th[data-key="${sortKey}"]`).dataset.type;
    const sorted = rows.slice().sort((a, b) => {
      const x = a[sortKey], y = b[sortKey];
      const order = type === "number" ? x - y : String(x).localeCompare(String(y));
      return (sortDescending ? -order : order) || a.name.localeCompare(b.name);
    });
    const body = table.querySelector("tbody");
    body.textContent = "";
    for (const row of sorted) {
      const tr = document.createElement("tr");
      tr.dataset.state = row.state;
      const name = document.createElement("td");
      const link = document.createElement("a");
      link.href = Dashboard.withLang(`/dashboard/${row.state}?as_of=${encodeURIComponent(Dashboard.asOf())}`);
      link.textContent = row.name;
      name.append(link);
      tr.append(
        name,
        cell(Dashboard.km2(row.sha_km2), "num sha-km2"),
        cell(String(row.sha_count), "num"),
        cell(Dashboard.km2(row.cha_km2), "num cha-km2"),
        cell(String(row.cha_count), "num"),
        cell(Dashboard.km2(row.released_km2), "num released-km2"),
        deadlineCell(row),
        cell(row.extensions < 0 ? "?" : String(row.extensions), "num"),
        cell(row.projected_completion ? Dashboard.day(row.projected_completion)
             : (row.has_remaining ? t("not at this rate") : "–"), "projected"),
        cell(row.on_track === 1 ? t("yes") : row.on_track === 0 ? t("no") : "–",
             row.on_track === 1 ? "on-track yes" : row.on_track === 0 ? "on-track no" : "on-track"),
        boundCell(row),
      );
      if (!row.has_hazards) tr.classList.add("no-data");
      body.append(tr);
    }
    for (const th of table.querySelectorAll("th")) {
      th.classList.toggle("sorted", th.dataset.key === sortKey);
      th.classList.toggle("descending", th.dataset.key === sortKey && sortDescending);
      th.setAttribute("aria-sort", th.dataset.key === sortKey ? (sortDescending ? "descending" : "ascending") : "none");
    }
    table.hidden = false;
    table.dataset.rows = String(sorted.length);
  }

  // The world map: every State's remaining hazards (points where too small to see) over the borders.
  const COLOURS = { SHA: "#f5a623", CHA: "#d0021b" };
  let map = null;

  function hazardTiles(day) {
    const params = new URLSearchParams({ datetime: day, status: "active" });
    return [`${window.location.origin}/collections/hazardous_areas/tiles/WebMercatorQuad/{z}/{x}/{y}?${params}`];
  }

  function countRendered() {
    const element = document.getElementById("map");
    const hazards = map.queryRenderedFeatures({ layers: ["hazards-fill", "hazards-point"] });
    element.dataset.hazardFeatures = String(new Set(hazards.map((f) => f.properties.id)).size);
    element.dataset.hazardsShown = String(Places.hazardsStoodFor(hazards));
    element.dataset.hazardStates = [...new Set(hazards.map((f) => f.properties.state))].sort().join(",");
    element.dataset.state = "idle";
  }

  function showWorld(day, states) {
    const element = document.getElementById("map");
    if (typeof maplibregl === "undefined") {
      element.textContent = t("The map library did not load.");
      return;
    }
    element.dataset.state = "loading";
    if (map) {
      map.getSource("hazards").setTiles(hazardTiles(day));
      map.once("idle", countRendered);
      return;
    }
    map = new maplibregl.Map({
      container: "map",
      attributionControl: false,
      style: {
        version: 8,
        sources: { ...Places.sources(), hazards: { type: "vector", tiles: hazardTiles(day), minzoom: 0, maxzoom: 16 } },
        layers: [
          { id: "background", type: "background", paint: { "background-color": "#dde7ec" } },
          ...Places.layers(),
          { id: "hazards-fill", type: "fill", source: "hazards", "source-layer": "hazardous_areas",
            filter: ["!=", ["geometry-type"], "Point"],
            paint: { "fill-color": ["match", ["get", "classification"], "CHA", COLOURS.CHA, COLOURS.SHA] } },
          Places.hazardPoints("hazards", "hazardous_areas", COLOURS),
        ],
      },
      center: [40, 25],
      zoom: 1.2,
      renderWorldCopies: false,
      transformRequest: (url) => (url.startsWith(window.location.origin)
        ? { url, headers: Dashboard.authHeaders() } : { url }),
    });
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
    Places.names(map, new Set(states));
    map.once("idle", countRendered);
  }

  async function load() {
    const day = Dashboard.asOf();
    Dashboard.setStatus(t("Loading…"));
    try {
      const data = await Dashboard.getJSON(`/api/v1/summary?as_of=${encodeURIComponent(day)}`);
      rows = data.states.map(flatten);
      render();
      showWorld(data.as_of, rows.filter((row) => row.has_hazards).map((row) => row.state));
      document.body.dataset.asOf = data.as_of;
      Dashboard.setStatus("");
      document.body.dataset.loaded = "true";
    } catch (error) {
      Dashboard.showFailure(error);
      document.body.dataset.loaded = "error";
    }
  }

  for (const th of document.querySelectorAll("#overview th")) {
    th.tabIndex = 0;
    const sortBy = () => {
      sortDescending = sortKey === th.dataset.key ? !sortDescending : th.dataset.type === "number";
      sortKey = th.dataset.key;
      render();
    };
    th.addEventListener("click", sortBy);
    th.addEventListener("keydown", (event) => { if (event.key === "Enter") sortBy(); });
  }
  Dashboard.renderKeyBox(load);
  Dashboard.bindAsOf(load);
  load();
})();
