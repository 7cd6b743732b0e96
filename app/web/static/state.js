/* One State: its figures, the map of hazards and released land, the burn-down chart, at the as-of date. */
"use strict";

(() => {
  const iso3 = window.location.pathname.split("/").filter(Boolean).pop().toUpperCase();
  const COLOURS = { SHA: "#f5a623", CHA: "#d0021b", released: "#2e9d4f" };
  let map = null;
  let chartUrls = [];

  function text(id, value) {
    document.getElementById(id).textContent = value;
  }

  function showFigures(data) {
    document.title = `${data.name} · landrelease`;
    text("state-name", `${data.name} (${data.state})`);
    text("sha-km2", Dashboard.km2(data.remaining.SHA.area_km2));
    text("sha-count", String(data.remaining.SHA.count));
    text("cha-km2", Dashboard.km2(data.remaining.CHA.area_km2));
    text("cha-count", String(data.remaining.CHA.count));
    text("released-km2", Dashboard.km2(data.released_last_year.area_km2));
    text("deadline", data.deadline || "none recorded");
    text("extensions", !data.deadline ? "" : data.extensions === null ? "extensions: number not known"
      : `${data.extensions} extension${data.extensions === 1 ? "" : "s"}`);
    const remaining = data.remaining.total.area_m2;
    text("projected", remaining <= 0 ? "done" : (data.projected_completion || "never"));
    let verdict = "no deadline to compare with";
    if (data.on_track === true) verdict = "on track";
    else if (data.on_track === false) {
      verdict = "not on track";
      if (data.needed_rate_km2_per_year !== null) verdict += `: needs ${Dashboard.km2(data.needed_rate_km2_per_year)} km²/year`;
    }
    text("on-track", verdict);
    const figures = document.getElementById("figures");
    figures.dataset.onTrack = String(data.on_track);
    figures.dataset.asOf = data.as_of;
    figures.hidden = false;
  }

  async function showChart(day) {
    const base = `/api/v1/states/${iso3}/chart`;
    const query = `?as_of=${encodeURIComponent(day)}`;
    const svg = await (await Dashboard.request(base + ".svg" + query)).text();
    const holder = document.getElementById("chart");
    // The SVG comes from this service (matplotlib), parsed as an SVG document, not as HTML.
    const parsed = new DOMParser().parseFromString(svg, "image/svg+xml").documentElement;
    parsed.removeAttribute("width");
    parsed.removeAttribute("height");
    holder.replaceChildren(document.importNode(parsed, true));
    holder.dataset.asOf = day;
    for (const [id, fmt] of [["chart-svg", "svg"], ["chart-png", "png"]]) {
      const link = document.getElementById(id);
      link.href = base + "." + fmt + query;
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
    const hazards = map.queryRenderedFeatures({ layers: ["hazards-fill"] });
    const released = map.queryRenderedFeatures({ layers: ["released-fill"] });
    element.dataset.hazardFeatures = String(unique(hazards));
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
      document.getElementById("map").textContent = "The map library did not load.";
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
      // No basemap: the service's own layers on a plain background (nothing is fetched from elsewhere).
      style: {
        version: 8,
        sources: {
          hazards: { type: "vector", tiles: [tileUrl("hazardous_areas", day, { status: "active" })], minzoom: 0, maxzoom: 16 },
          released: { type: "vector", tiles: [tileUrl("land_release_events", day, {})], minzoom: 0, maxzoom: 16 },
        },
        layers: [
          { id: "background", type: "background", paint: { "background-color": "#eef1ec" } },
          { id: "released-fill", type: "fill", source: "released", "source-layer": "land_release_events",
            filter: ["==", ["get", "releases_land"], true],
            paint: { "fill-color": COLOURS.released, "fill-opacity": 0.55 } },
          { id: "hazards-fill", type: "fill", source: "hazards", "source-layer": "hazardous_areas",
            paint: { "fill-color": ["match", ["get", "classification"], "CHA", COLOURS.CHA, COLOURS.SHA],
                     "fill-opacity": 0.6 } },
          { id: "hazards-outline", type: "line", source: "hazards", "source-layer": "hazardous_areas",
            paint: { "line-color": ["match", ["get", "classification"], "CHA", "#7a0010", "#a86a00"], "line-width": 1 } },
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
    const popup = new maplibregl.Popup({ closeButton: false, closeOnClick: true });
    map.on("click", (event) => {
      const found = map.queryRenderedFeatures(event.point, { layers: ["hazards-fill", "released-fill"] });
      if (!found.length) return;
      const p = found[0].properties;
      const lines = found[0].layer.id === "hazards-fill"
        ? [`${p.classification} ${p.external_id}${p.name ? " · " + p.name : ""}`,
           `remaining ${(p.remaining_area_m2 / 1e6).toFixed(4)} km² of ${(p.baseline_area_m2 / 1e6).toFixed(4)} km²`]
        : [`${p.kind} on ${p.date}`, `released ${(p.released_area_m2 / 1e6).toFixed(4)} km²`];
      const body = document.createElement("div");
      for (const line of lines) { const div = document.createElement("div"); div.textContent = line; body.append(div); }
      popup.setLngLat(event.lngLat).setDOMContent(body).addTo(map);
    });
    whenIdle();
  }

  async function load() {
    const day = Dashboard.asOf();
    Dashboard.setStatus("Loading…");
    try {
      const data = await Dashboard.getJSON(`/api/v1/dashboard/states/${iso3}?as_of=${encodeURIComponent(day)}`);
      showFigures(data);
      showMap(data);
      await showChart(data.as_of);
      Dashboard.setStatus("");
      document.body.dataset.loaded = "true";
    } catch (error) {
      Dashboard.showFailure(error);
      document.body.dataset.loaded = "error";
    }
  }

  Dashboard.renderKeyBox(load);
  Dashboard.bindAsOf(load);
  load();
})();
