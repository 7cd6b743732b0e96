/* A State's submissions: the review queue of the national centre (approve, return, reject), or an operator's
   own submissions and their states (the API narrows the list to the key's organisation). */
"use strict";

(() => {
  const t = Dashboard.t;
  const iso3 = window.location.pathname.split("/").filter(Boolean)[1].toUpperCase();
  // the submission's states and the event kinds, in the page's language
  const STATUS = {
    submitted: () => t("submitted"), returned: () => t("returned"), approved: () => t("approved"),
    rejected: () => t("rejected"),
  };
  const EVENT = {
    cancellation: () => t("cancellation"), reduction: () => t("reduction"), clearance: () => t("clearance"),
    reclassification: () => t("reclassification"),
  };
  const label = (names, value) => (names[value] ? names[value]() : value);
  const when = (iso) => `${Dashboard.day(iso.slice(0, 10))} ${iso.slice(11, 16)}`;
  const COLOURS = { submitted: "#1f6fd1", remaining: "#d0021b" };
  const EMPTY = { type: "FeatureCollection", features: [] };
  let map = null;
  let mapReady = null;
  let submissions = [];
  let selected = null;

  function m2(value) {
    return value === null || value === undefined ? "–"
      : `${Math.round(value).toLocaleString(Dashboard.LANG === "en" ? "en-GB" : Dashboard.LANG)} m²`;
  }

  function ensureMap() {
    if (mapReady) return mapReady;
    mapReady = new Promise((resolve) => {
      map = new maplibregl.Map({
        container: "map",
        attributionControl: false,
        style: {
          version: 8,
          sources: { remaining: { type: "geojson", data: EMPTY }, submitted: { type: "geojson", data: EMPTY } },
          layers: [
            { id: "background", type: "background", paint: { "background-color": "#eef1ec" } },
            { id: "remaining-fill", type: "fill", source: "remaining",
              paint: { "fill-color": COLOURS.remaining, "fill-opacity": 0.45 } },
            { id: "submitted-fill", type: "fill", source: "submitted",
              paint: { "fill-color": COLOURS.submitted, "fill-opacity": 0.45 } },
            { id: "submitted-outline", type: "line", source: "submitted",
              paint: { "line-color": COLOURS.submitted, "line-width": 2 } },
          ],
        },
        center: [0, 0],
        zoom: 1,
      });
      map.addControl(new maplibregl.ScaleControl());
      map.on("load", () => resolve(map));
    });
    return mapReady;
  }

  function bounds(geometries) {
    let box = null;
    const visit = (coordinates) => {
      if (typeof coordinates[0] === "number") {
        const [x, y] = coordinates;
        box = box ? [Math.min(box[0], x), Math.min(box[1], y), Math.max(box[2], x), Math.max(box[3], y)] : [x, y, x, y];
      } else {
        coordinates.forEach(visit);
      }
    };
    geometries.filter(Boolean).forEach((g) => visit(g.coordinates));
    return box;
  }

  async function showOnMap(submission) {
    const element = document.getElementById("map");
    element.dataset.state = "loading";
    await ensureMap();
    let remaining = null;
    if (submission.properties.hazard_id) {
      const hazard = await Dashboard.getJSON(`/api/v1/hazards/${submission.properties.hazard_id}`);
      remaining = hazard.geometry;
    }
    const feature = (geometry) => (geometry ? { type: "Feature", properties: {}, geometry } : null);
    map.getSource("submitted").setData({ type: "FeatureCollection", features: [feature(submission.geometry)].filter(Boolean) });
    map.getSource("remaining").setData({ type: "FeatureCollection", features: [feature(remaining)].filter(Boolean) });
    const box = bounds([submission.geometry, remaining]);
    if (box) map.fitBounds([[box[0], box[1]], [box[2], box[3]]], { padding: 40, maxZoom: 17, duration: 0 });
    map.once("idle", () => {
      element.dataset.submitted = String(map.queryRenderedFeatures({ layers: ["submitted-fill"] }).length > 0);
      element.dataset.remaining = String(map.queryRenderedFeatures({ layers: ["remaining-fill"] }).length > 0);
      element.dataset.state = "idle";
    });
  }

  function describe(submission) {
    const p = submission.properties;
    const rows = [
      [t("Kind"), p.kind === "release"
        ? t("land-release report ({kind} of {date})", { kind: label(EVENT, p.content.event.kind),
                                                         date: Dashboard.day(p.content.event.date) })
        : p.kind === "batch" ? t("{count} hazards from {file}", { count: p.feature_count,
                                                                   file: p.content.file || t("a collection") })
          : t("new hazard")],
      [t("Organisation"), p.organisation || "–"],
      [t("Status"), t("{status} (revision {revision})", { status: label(STATUS, p.status), revision: p.revision })],
      [t("Submitted"), t("{when} by {who}", { when: when(p.submitted_at), who: p.submitted_by })],
      [t("Submitted area"), m2(p.area_m2)],
    ];
    if (p.reviewed_by) rows.push([t("Reviewed"), t("{when} by {who}", { when: when(p.reviewed_at), who: p.reviewed_by })]);
    if (p.comment) rows.push([t("Comment"), p.comment]);
    if (p.preview) {
      const v = p.preview;
      const changes = [];
      if (v.hazards_created) {
        changes.push(t("add {count} hazard(s), {area}", { count: v.hazards_created, area: m2(v.created_area_m2) }));
      }
      if (v.events.length) changes.push(t("release {area}", { area: m2(v.released_area_m2) }));
      rows.push([t("Approving would"), v.approvable ? (changes.join("; ") || t("change nothing"))
        : t("be refused: {reason}", { reason: v.problem.detail })]);
    }
    const list = document.getElementById("details");
    list.replaceChildren();
    for (const [term, value] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      list.append(dt, dd);
    }
    list.dataset.approvable = String(Boolean(p.preview && p.preview.approvable));
  }

  // How a single submitted hazard is approved (app.submissions: reconcile new, link or correct).
  function approval() {
    if (document.getElementById("reconcile").hidden) return {};
    const as = document.getElementById("reconcile-as").value;
    if (as === "new") return document.getElementById("reconcile-clip").checked ? { overlap: "clip" } : {};
    const body = { reconcile: as, hazard_id: document.getElementById("reconcile-hazard").value || null };
    if (as === "link") body.event_kind = document.getElementById("reconcile-kind").value;
    return body;
  }

  function showReconcileFields() {
    const as = document.getElementById("reconcile-as").value;
    document.querySelectorAll("#reconcile [data-for]").forEach((field) => {
      field.hidden = !field.dataset.for.split(" ").includes(as);
    });
  }

  // The State's hazards under the submitted polygon's box: the ones it may link to or correct.
  async function offerHazards(submission) {
    const fieldset = document.getElementById("reconcile");
    fieldset.hidden = submission.properties.kind !== "hazard" || submission.properties.status !== "submitted";
    document.getElementById("reconcile-as").value = "new";
    document.getElementById("reconcile-clip").checked = false;
    showReconcileFields();
    const choice = document.getElementById("reconcile-hazard");
    choice.replaceChildren();
    const box = bounds([submission.geometry]);
    if (fieldset.hidden || !box) return;
    const query = new URLSearchParams({ bbox: box.join(","), limit: "50", state: iso3 });
    const page = await Dashboard.getJSON(`/collections/hazardous_areas/items?${query}`);
    if (selected !== submission) return;  // another submission was chosen meanwhile: its own list comes
    for (const hazard of page.features) {
      const option = document.createElement("option");
      option.value = hazard.id;
      const p = hazard.properties;
      option.textContent = `${p.external_id}${p.name ? ` · ${p.name}` : ""} · ${p.classification} · ${m2(p.remaining_area_m2)}`;
      choice.append(option);
    }
    choice.dataset.count = String(page.features.length);
  }

  async function select(submission) {
    selected = submission;
    document.querySelectorAll("#queue li").forEach((li) => li.classList.toggle("selected", li.dataset.id === submission.id));
    const p = submission.properties;
    document.getElementById("selected-title").textContent =
      `${p.organisation || t("The national centre")}: ${p.kind === "hazard" ? (p.content.hazards[0].properties.external_id)
        : p.kind === "batch" ? t("batch of hazards") : t("land-release report")}`;
    describe(submission);
    const form = document.getElementById("review-form");
    form.hidden = p.status !== "submitted";
    document.getElementById("review-result").textContent = "";
    await Promise.all([showOnMap(submission), offerHazards(submission)]);
  }

  function renderQueue() {
    const queue = document.getElementById("queue");
    queue.replaceChildren();
    for (const submission of submissions) {
      const p = submission.properties;
      const li = document.createElement("li");
      li.dataset.id = submission.id;
      li.dataset.status = p.status;
      li.tabIndex = 0;
      const what = p.kind === "release" ? t("{kind} report", { kind: label(EVENT, p.content.event.kind) })
        : p.kind === "batch" ? t("batch of hazards") : t("new hazard");
      li.textContent = `${p.organisation || t("national centre")} · ${what} · ${label(STATUS, p.status)} · `
        + Dashboard.day(p.submitted_at.slice(0, 10));
      li.addEventListener("click", () => select(submission));
      queue.append(li);
    }
    queue.dataset.count = String(submissions.length);
    if (!submissions.length) {
      const li = document.createElement("li");
      li.textContent = t("No submissions with this status.");
      queue.append(li);
    }
  }

  async function review(action) {
    if (!selected) return;
    const comment = document.getElementById("comment").value.trim();
    const result = document.getElementById("review-result");
    const body = action === "approve" ? approval() : { comment };
    // the answer (its problem too) in the page's language
    const response = await fetch(Dashboard.withLang(`/api/v1/submissions/${selected.id}/${action}`), {
      method: "POST", headers: { ...Dashboard.authHeaders(), "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) {
      result.textContent = answer.detail || response.statusText;
      result.classList.add("error");
      result.dataset.outcome = "refused";
      return;
    }
    result.classList.remove("error");
    result.textContent = t("The submission is {status}.", { status: label(STATUS, answer.properties.status) });
    result.dataset.outcome = answer.properties.status;
    await load(answer.id);
  }

  async function load(keep) {
    Dashboard.setStatus(t("Loading…"));
    try {
      const status = document.getElementById("status-filter").value;
      const query = new URLSearchParams(status ? { status } : {});
      const [page, summary] = await Promise.all([
        Dashboard.getJSON(`/api/v1/states/${iso3}/submissions?${query}`),
        Dashboard.getJSON(`/api/v1/states/${iso3}/summary`),
      ]);
      document.getElementById("state-name").textContent = `${summary.name} (${summary.state})`;
      submissions = page.features;
      renderQueue();
      Dashboard.setStatus("");
      const again = submissions.find((s) => s.id === keep) || submissions[0];
      if (again) await select(again);
      document.body.dataset.loaded = "true";
    } catch (error) {
      Dashboard.showFailure(error);
      document.body.dataset.loaded = "error";
    }
  }

  // the event kinds a linked polygon may become: the kinds above, in the page's language
  document.getElementById("reconcile-kind").replaceChildren(...Object.keys(EVENT).map((kind) => {
    const option = document.createElement("option");
    option.value = kind;
    option.textContent = label(EVENT, kind);
    return option;
  }));
  document.getElementById("reconcile-as").addEventListener("change", showReconcileFields);
  document.getElementById("filter-form").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  document.querySelectorAll("#review-form [data-action]").forEach((button) =>
    button.addEventListener("click", () => review(button.dataset.action)));
  Dashboard.renderKeyBox(load);
  load();
})();
