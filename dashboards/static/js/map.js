// Map view: the current walks and rides on the local base layer, coloured by PM2.5.
// Kits less than CLUSTER_M apart share a panel (up to MAX_PANELS; kits farther still join the nearest);
// each panel fits its kits' tracks, drawn in the panel's own proportions (portrait or landscape).
"use strict";

(() => {
  const Q = window.QSEC;
  const { config } = Q;
  const W = 960;
  const PAD = 90; // room for the north arrow, the scale bar and the kits' names
  const CLUSTER_M = 3000;
  const MAX_PANELS = 6;
  let section = null;
  let panels = null;
  let dirty = true;
  let aspect = 2 / 3; // height / width of the panels, measured after each drawing

  function distanceM(a, b) {
    const k = Math.cos((((a.lat + b.lat) / 2) * Math.PI) / 180);
    return Math.hypot((a.lat - b.lat) * 111195, (a.lon - b.lon) * 111195 * k);
  }

  function clusters() {
    const groups = [];
    for (const kit of [...Q.kits.values()].sort((a, b) => (a.device < b.device ? -1 : 1))) {
      if (!kit.track.length) continue;
      const here = kit.track[kit.track.length - 1];
      const group = groups.find((g) => distanceM(g.anchor, here) < CLUSTER_M);
      if (group) group.kits.push(kit);
      else if (groups.length < MAX_PANELS) groups.push({ anchor: here, kits: [kit] });
      else groups.reduce((a, b) => (distanceM(a.anchor, here) <= distanceM(b.anchor, here) ? a : b)).kits.push(kit);
    }
    return groups;
  }

  function panel(group) {
    const H = Math.round(W * Math.min(3, Math.max(0.3, aspect)));
    const figure = Q.el("figure", "map-panel");
    const title = Q.el("figcaption", "map-title", group.kits.map((k) => k.device).join(" · "));
    const svgNode = Q.svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "xMidYMid meet", role: "img" });
    svgNode.setAttribute("aria-label", Q.label("view_map"));
    const points = group.kits.flatMap((k) => k.track);
    const f = Q.geo.frame(points, W, H, PAD);
    const baseLayer = Q.svg("g", { class: "base" });
    Q.geo.drawBase(baseLayer, f);
    const tracks = Q.svg("g", { class: "tracks" });
    for (const kit of group.kits) Q.geo.drawTrack(tracks, f, kit.track);
    const heads = Q.svg("g", { class: "heads" });
    const placed = [];
    for (const kit of group.kits) {
      const last = kit.track[kit.track.length - 1];
      const [x, y0] = f.xy(last.lat, last.lon);
      let y = y0;
      while (placed.some(([px, py]) => Math.abs(px - x) < 200 && Math.abs(py - y) < 34)) y += 36; // stack labels of kits side by side
      placed.push([x, y]);
      const band = Q.band("pm2_5", last.pm);
      heads.append(Q.svg("circle", { cx: x.toFixed(1), cy: y0.toFixed(1), r: 16, class: "head", fill: band ? band.colour : "#8a939e" }));
      const left = x > W * 0.6; // a name that would run off the right edge goes left of its kit
      const name = Q.svg("text", { x: (left ? x - 22 : x + 22).toFixed(1), y: (y - 14).toFixed(1), class: "head-label",
        "text-anchor": left ? "end" : "start" });
      name.textContent = kit.device;
      heads.append(name);
    }
    svgNode.append(Q.svg("rect", { width: W, height: H, class: "map-bg" }), baseLayer, tracks, heads);
    Q.geo.furniture(svgNode, f);
    figure.append(title, svgNode);
    return figure;
  }

  // The names of a panel's kits, as many as fit, then how many more ("+3"): every name is on the map.
  function fitTitle(title, kits) {
    Q.fitText(title);
    for (let shown = kits.length - 1; shown >= 1 && title.scrollWidth > title.clientWidth; shown -= 1) {
      title.textContent = `${kits.slice(0, shown).map((k) => k.device).join(" · ")} · +${kits.length - shown}`;
    }
  }

  function render(again = true) {
    if (!section || section.hidden) return;
    dirty = false;
    const groups = clusters();
    panels.dataset.count = String(groups.length);
    panels.replaceChildren(...groups.map(panel));
    for (const [i, title] of [...panels.querySelectorAll(".map-title")].entries()) fitTitle(title, groups[i].kits);
    const first = panels.querySelector("svg");
    if (again && first && first.clientWidth) {
      const measured = first.clientHeight / first.clientWidth;
      if (Math.abs(measured - aspect) > 0.03 * aspect) {
        aspect = measured;
        render(false);
        return;
      }
    }
    section.querySelector(".map-empty").hidden = groups.length > 0;
    section.querySelector(".map-caption").textContent = Q.label("map_caption", {
      minutes: config.track_minutes, quantity: Q.quantityName("pm2_5"), index: config.index.title[Q.state.lang],
    });
  }

  Q.view("map", {
    init(node) {
      section = node;
      panels = node.querySelector(".map-panels");
      Q.geo.load();
      for (const event of ["point", "tracks", "reset", "basemap", "lang"]) Q.on(event, () => { dirty = true; });
      Q.on("lang", () => render());
      window.addEventListener("resize", () => render());
      window.setInterval(() => {
        if (dirty) render();
      }, 2000);
    },
    show() {
      render();
    },
  });
})();
