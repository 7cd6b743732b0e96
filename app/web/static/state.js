/* One State: its figures, the map of hazards and released land, the burn-down chart, at the as-of date. */
"use strict";

(() => {
  const iso3 = window.location.pathname.split("/").filter(Boolean).pop().toUpperCase();
  const COLOURS = { SHA: "#f5a623", CHA: "#d0021b", released: "#2e9d4f" };
  let map = null;
  let chartUrls = [];

  const t = Dashboard.t;
  const STATUS = {
    obligation: () => t("obligation"), completed: () => t("completed"),
    withdrawal_notified: () => t("withdrawal notified"), withdrawn: () => t("withdrawn"),
    not_in_force: () => t("not in force"), no_article5_obligation: () => t("no Article 5 obligation"),
  };

  const KIND = {
    cancellation: () => t("cancellation"), reduction: () => t("reduction"), clearance: () => t("clearance"),
    reclassification: () => t("reclassification"),
  };

  function text(id, value) {
    document.getElementById(id).textContent = value;
  }

  // The figures of GET /api/v1/states/{iso3}/summary.
  function showFigures(summary) {
    const remaining = summary.remaining;
    const a5 = summary.article5;
    document.title = `${summary.name} · landrelease`;
    text("state-name", `${summary.name} (${summary.state})`);
    text("sha-km2", Dashboard.km2(remaining.sha.area_m2 / 1e6));
    text("sha-count", String(remaining.sha.count));
    text("cha-km2", Dashboard.km2(remaining.cha.area_m2 / 1e6));
    text("cha-count", String(remaining.cha.count));
    text("released-km2", Dashboard.km2(summary.released.last_year.released_m2 / 1e6));
    text("deadline", Dashboard.day(a5.deadline) || t("none recorded"));
    text("extensions", !a5.deadline ? (STATUS[a5.status] ? STATUS[a5.status]() : a5.status.replace(/_/g, " "))
      : a5.extensions === null ? t("extensions: number not known")
      : a5.extensions === 1 ? t("1 extension") : t("{count} extensions", { count: a5.extensions }));
    text("projected", remaining.total.area_m2 <= 0 ? t("done")
      : (Dashboard.day(a5.projected_completion) || t("not at this rate")));
    let verdict = t("no deadline or release rate to compare");
    if (a5.on_track === true) verdict = t("on track");
    else if (a5.on_track === false) verdict = t("not on track");
    if (a5.on_track !== true && a5.days_remaining !== null && a5.days_remaining < 0 && remaining.total.area_m2 > 0) {
      verdict += t(": the deadline has passed");
    } else if (a5.on_track !== true && a5.required_rate_m2_per_year) {
      verdict += t(": needs {rate} km²/year", { rate: Dashboard.km2(a5.required_rate_m2_per_year / 1e6) });
    }
    text("on-track", verdict);
    text("bound", a5.bound ? t("yes") : t("no"));
    text("bound-reason", a5.bound_reason);
    const figures = document.getElementById("figures");
    figures.dataset.onTrack = String(a5.on_track);
    figures.dataset.asOf = summary.as_of;
    figures.hidden = false;
  }

  async function showChart(day) {
    const base = `/api/v1/states/${iso3}/chart`;
    const query = `?as_of=${encodeURIComponent(day)}`;
    const svg = await (await Dashboard.request(base + ".svg" + query)).text();
    const holder = document.getElementById("chart");
    // The SVG comes from this service (matplotlib), parsed as an SVG document, not as HTML.
    // It holds no CSS (app/charts.py), so the page's Content-Security-Policy lets it show whole.
    const parsed = new DOMParser().parseFromString(svg, "image/svg+xml").documentElement;
    parsed.removeAttribute("width");
    parsed.removeAttribute("height");
    holder.replaceChildren(document.importNode(parsed, true));
    holder.dataset.asOf = day;
    for (const [id, fmt] of [["chart-svg", "svg"], ["chart-png", "png"]]) {
      const link = document.getElementById(id);
      link.href = Dashboard.withLang(base + "." + fmt + query);
      link.onclick = async (event) => {
        if (!Dashboard.apiKey()) return; // public reads: the plain link works
        event.preventDefault();
        const blob = await (await Dashboard.request(link.href)).blob();
        const url = URL.createObjectURL(blob);
        chartUrls.push(url);
        window.open(url, "_blank");
      };
    }
  }

  function tileUrl(collection, day, extra) {
    const params = new URLSearchParams({ state: iso3, datetime: day, ...extra });
    return `${window.location.origin}/collections/${collection}/tiles/WebMercatorQuad/{z}/{x}/{y}?${params}`;
  }

  function countRendered() {
    const element = document.getElementById("map");
    const unique = (features) => new Set(features.map((f) => f.properties.id)).size;
    const hazards = map.queryRenderedFeatures({ layers: ["hazards-fill", "hazards-point"] });
    const released = map.queryRenderedFeatures({ layers: ["released-fill"] });
    element.dataset.hazardFeatures = String(unique(hazards));
    element.dataset.hazardsShown = String(Places.hazardsStoodFor(hazards));
    element.dataset.shaFeatures = String(unique(hazards.filter((f) => f.properties.classification === "SHA")));
    element.dataset.chaFeatures = String(unique(hazards.filter((f) => f.properties.classification === "CHA")));
    element.dataset.releasedFeatures = String(unique(released));
    element.dataset.renderedFeatures = String(unique(hazards) + unique(released));
    element.dataset.state = "idle";
  }

  function whenIdle() {
    document.getElementById("map").dataset.state = "loading";
    map.once("idle", countRendered);
  }

  function showMap(data) {
    const day = data.as_of;
    if (typeof maplibregl === "undefined") {
      document.getElementById("map").textContent = t("The map library did not load.");
      return;
    }
    if (map) {
      map.getSource("hazards").setTiles([tileUrl("hazardous_areas", day, { status: "active" })]);
      map.getSource("released").setTiles([tileUrl("land_release_events", day, {})]);
      whenIdle();
      return;
    }
    const bbox = data.bbox;
    map = new maplibregl.Map({
      container: "map",
      attributionControl: false,
      // No basemap: the service's own layers, borders and names (app/places) on a plain background
      // (nothing is fetched from elsewhere).
      style: {
        version: 8,
        sources: {
          ...Places.sources(),
          hazards: { type: "vector", tiles: [tileUrl("hazardous_areas", day, { status: "active" })], minzoom: 0, maxzoom: 16 },
          released: { type: "vector", tiles: [tileUrl("land_release_events", day, {})], minzoom: 0, maxzoom: 16 },
        },
        layers: [
          { id: "background", type: "background", paint: { "background-color": "#dde7ec" } },
          ...Places.layers(),
          { id: "released-fill", type: "fill", source: "released", "source-layer": "land_release_events",
            filter: ["==", ["get", "releases_land"], true],
            paint: { "fill-color": COLOURS.released, "fill-opacity": 0.55 } },
          { id: "hazards-fill", type: "fill", source: "hazards", "source-layer": "hazardous_areas",
            paint: { "fill-color": ["match", ["get", "classification"], "CHA", COLOURS.CHA, COLOURS.SHA],
                     "fill-opacity": 0.6 } },
          { id: "hazards-outline", type: "line", source: "hazards", "source-layer": "hazardous_areas",
            paint: { "line-color": ["match", ["get", "classification"], "CHA", "#7a0010", "#a86a00"], "line-width": 1 } },
          Places.hazardPoints("hazards", "hazardous_areas", COLOURS),
        ],
      },
      bounds: bbox ? [[bbox[0], bbox[1]], [bbox[2], bbox[3]]] : undefined,
      fitBoundsOptions: { padding: 30, maxZoom: 16 },
      center: bbox ? undefined : [0, 0],
      zoom: bbox ? undefined : 1,
      transformRequest: (url) => (url.startsWith(window.location.origin)
        ? { url, headers: Dashboard.authHeaders() } : { url }),
    });
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
    map.addControl(new maplibregl.ScaleControl());
    Places.names(map);
    const popup = new maplibregl.Popup({ closeButton: false, closeOnClick: true });
    map.on("click", (event) => {
      const found = map.queryRenderedFeatures(event.point, { layers: ["hazards-fill", "hazards-point", "released-fill"] });
      if (!found.length) return;
      const p = found[0].properties;
      const lines = found[0].layer.id !== "released-fill"
        ? [`${p.classification} ${p.external_id}${p.name ? " · " + p.name : ""}`,
           t("remaining {remaining} km² of {baseline} km²", { remaining: (p.remaining_area_m2 / 1e6).toFixed(4),
                                                               baseline: (p.baseline_area_m2 / 1e6).toFixed(4) })]
        : [t("{kind} on {date}", { kind: KIND[p.kind] ? KIND[p.kind]() : p.kind, date: Dashboard.day(p.date) }),
           t("released {area} km²", { area: (p.released_area_m2 / 1e6).toFixed(4) })];
      if (p.point_count > 1) lines.push(t("and {more} more hazards under this point: zoom in", { more: p.point_count - 1 }));
      const body = document.createElement("div");
      for (const line of lines) { const div = document.createElement("div"); div.textContent = line; body.append(div); }
      popup.setLngLat(event.lngLat).setDOMContent(body).addTo(map);
    });
    whenIdle();
  }

  async function load() {
    const day = Dashboard.asOf();
    Dashboard.setStatus(t("Loading…"));
    try {
      const query = `?as_of=${encodeURIComponent(day)}`;
      const [summary, chart] = await Promise.all([
        Dashboard.getJSON(`/api/v1/states/${iso3}/summary${query}`),
        Dashboard.getJSON(`/api/v1/states/${iso3}/chart.json${query}`),
      ]);
      showFigures(summary);
      showMap(chart);
      await showChart(chart.as_of);
      Dashboard.setStatus("");
      document.body.dataset.loaded = "true";
    } catch (error) {
      Dashboard.showFailure(error);
      document.body.dataset.loaded = "error";
    }
  }

  document.getElementById("quality-link").href = `/dashboard/${iso3}/quality`;
  Dashboard.renderKeyBox(load);
  Dashboard.bindAsOf(load);
  load();
})();
