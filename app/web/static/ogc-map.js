/* The map of an OGC API HTML page: the features the page carries (its JSON data block), on a plain
   background; nothing is fetched from elsewhere. data-state="idle" once drawn, data-features = count. */
(() => {
  const element = document.getElementById("map");
  const data = JSON.parse(document.getElementById("map-features").textContent);
  const bounds = new maplibregl.LngLatBounds();
  const extend = (coords) => (typeof coords[0] === "number" ? bounds.extend(coords) : coords.forEach(extend));
  data.features.forEach((f) => f.geometry && extend(f.geometry.coordinates));
  element.dataset.features = String(data.features.length);
  const map = new maplibregl.Map({
    container: "map",
    attributionControl: false,
    style: {
      version: 8,
      sources: { features: { type: "geojson", data, generateId: true } },
      layers: [
        { id: "background", type: "background", paint: { "background-color": "#eef1ec" } },
        { id: "fill", type: "fill", source: "features", paint: { "fill-color": "#d0021b", "fill-opacity": 0.45 } },
        { id: "outline", type: "line", source: "features", paint: { "line-color": "#7a0010", "line-width": 1 } },
      ],
    },
    bounds: bounds.isEmpty() ? undefined : bounds,
    fitBoundsOptions: { padding: 30, maxZoom: 17 },
    center: bounds.isEmpty() ? [0, 0] : undefined,
    zoom: bounds.isEmpty() ? 1 : undefined,
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
  map.on("idle", () => {
    element.dataset.rendered = String(new Set(map.queryRenderedFeatures({ layers: ["fill"] }).map((f) => f.id)).size);
    element.dataset.state = "idle";
  });
})();
