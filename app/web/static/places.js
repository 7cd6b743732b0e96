/* Places on the dashboard maps: country and province borders from the service's own tiles (the OGC
   collections `countries` and `provinces`, app/places), drawn under the hazards, and their names,
   written as HTML labels at each one's label point (no font files are fetched: nothing comes from
   elsewhere). Hazards too small to see at a zoom arrive in the tiles as points, one per pixel standing
   for the `point_count` hazards under it (app/ogc/tiles.py): `hazardPoints` draws them, larger as they
   stand for more, and `hazardsStoodFor` counts the hazards the drawn features stand for. */
"use strict";

const Places = (() => {
  const PROVINCES_FROM_ZOOM = 5;
  const COUNTRY_NAMES_UNTIL_ZOOM = 9;

  function tiles(collection) {
    return [`${window.location.origin}/collections/${collection}/tiles/WebMercatorQuad/{z}/{x}/{y}`];
  }

  function sources() {
    return {
      countries: { type: "vector", tiles: tiles("countries"), minzoom: 0, maxzoom: 10 },
      provinces: { type: "vector", tiles: tiles("provinces"), minzoom: PROVINCES_FROM_ZOOM, maxzoom: 10 },
    };
  }

  // Land, then the province and country borders: the layers under the hazards.
  function layers() {
    return [
      { id: "countries-fill", type: "fill", source: "countries", "source-layer": "countries",
        paint: { "fill-color": "#f8f6ef" } },
      { id: "provinces-line", type: "line", source: "provinces", "source-layer": "provinces",
        paint: { "line-color": "#a7a294", "line-width": 0.7, "line-dasharray": [3, 2] } },
      { id: "countries-line", type: "line", source: "countries", "source-layer": "countries",
        paint: { "line-color": "#6f6a5c", "line-width": 1.2 } },
    ];
  }

  // Hazards drawn as points where their polygon would be smaller than a pixel: 3.5 px for one hazard,
  // growing with the square root of how many the point stands for (12 px for a hundred).
  function hazardPoints(source, sourceLayer, colours) {
    const stoodFor = ["sqrt", ["coalesce", ["get", "point_count"], 1]];
    return { id: `${source}-point`, type: "circle", source, "source-layer": sourceLayer,
             filter: ["==", ["geometry-type"], "Point"],
             paint: { "circle-radius": ["interpolate", ["linear"], stoodFor, 1, 3.5, 10, 12],
                      "circle-stroke-width": 0.8, "circle-stroke-color": "#ffffff",
                      "circle-color": ["match", ["get", "classification"], "CHA", colours.CHA, colours.SHA] } };
  }

  // How many hazards the rendered features stand for: each feature once (a polygon cut by tile edges
  // comes in pieces), a point for its point_count.
  function hazardsStoodFor(features) {
    const count = new Map();
    for (const feature of features) count.set(feature.properties.id, feature.properties.point_count || 1);
    let total = 0;
    for (const n of count.values()) total += n;
    return total;
  }

  function label(map, text, lon, lat, kind) {
    const element = document.createElement("div");
    element.className = `place-name ${kind}`;
    element.textContent = text;
    return new maplibregl.Marker({ element, anchor: "center" }).setLngLat([lon, lat]).addTo(map);
  }

  // The names of the places in view, kept up to date as the map moves; `only` (a Set of ISO3 codes)
  // limits the country names (the world view names the States of the overview).
  function names(map, only) {
    let markers = [];
    const element = map.getContainer();

    function place(features, key, kind, bounds) {
      const seen = new Set();
      for (const feature of features) {
        const p = feature.properties;
        if (seen.has(p[key]) || p.label_lon === undefined) continue;
        seen.add(p[key]);
        if (kind === "country" && only && !only.has(p.iso3)) continue;
        if (!bounds.contains([p.label_lon, p.label_lat])) continue;
        markers.push(label(map, p.name, p.label_lon, p.label_lat, kind));
      }
    }

    function update() {
      for (const marker of markers) marker.remove();
      markers = [];
      const bounds = map.getBounds();
      const zoom = map.getZoom();
      if (zoom < COUNTRY_NAMES_UNTIL_ZOOM) {
        place(map.querySourceFeatures("countries", { sourceLayer: "countries" }), "iso3", "country", bounds);
      }
      if (zoom >= PROVINCES_FROM_ZOOM + 0.5) {
        place(map.querySourceFeatures("provinces", { sourceLayer: "provinces" }), "code", "province", bounds);
      }
      element.dataset.countryNames = String(markers.filter((m) => m.getElement().classList.contains("country")).length);
      element.dataset.provinceNames = String(markers.filter((m) => m.getElement().classList.contains("province")).length);
      element.dataset.placeNames = markers.map((m) => m.getElement().textContent).sort().join("|");
    }

    map.on("idle", update);
    return update;
  }

  return { sources, layers, hazardPoints, hazardsStoodFor, names };
})();
