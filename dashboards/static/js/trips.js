// Mobilités view: the day's latest trips with their mode, speed, distance and the PM2.5 along the route.
"use strict";

(() => {
  const Q = window.QSEC;
  const W = 720;
  const H = 440;

  function stat(value, label) {
    const box = Q.el("div", "stat");
    box.append(Q.el("span", "stat-value", value), Q.el("span", "stat-label", label));
    return box;
  }

  function card(trip) {
    const node = Q.el("article", "trip");
    node.dataset.mode = trip.mode;
    const head = Q.el("header", "trip-head");
    head.append(
      Q.el("span", "trip-mode", Q.label(`mode_${trip.mode}`)),
      Q.el("span", "trip-when", `${trip.device} · ${Q.time(Date.parse(trip.start))}–${Q.time(Date.parse(trip.end))}`),
    );
    const r = trip.route;
    const track = r.t.map((t, i) => ({ t, lat: r.lat[i], lon: r.lon[i], pm: r.pm2_5[i] }));
    const svgNode = Q.svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "xMidYMid meet", class: "trip-map" });
    if (track.length) {
      const f = Q.geo.frame(track, W, H, 36, 400);
      const base = Q.svg("g", { class: "base" });
      Q.geo.drawBase(base, f, false);
      const line = Q.svg("g", { class: "tracks" });
      Q.geo.drawTrack(line, f, track);
      svgNode.append(Q.svg("rect", { width: W, height: H, class: "map-bg" }), base, line);
      Q.geo.furniture(svgNode, f);
    }
    const stats = Q.el("div", "trip-stats");
    const speed = trip.speed_median_ms === null ? "—" : Q.number(trip.speed_median_ms * 3.6, 1);
    stats.append(
      stat(Q.withUnit(Q.number(trip.distance_m / 1000, 1), "km"), Q.label("distance")),
      stat(Q.withUnit(Q.number(trip.duration_s / 60, 0), "min"), Q.label("duration")),
      stat(Q.withUnit(speed, "km/h"), Q.label("speed_median")),
    );
    const exposure = stat(trip.pm2_5 === null ? "—" : Q.withUnit(Q.format(trip.pm2_5, "pm2_5"), "µg/m³"), Q.label("exposure"));
    Q.paint(exposure, Q.band("pm2_5", trip.pm2_5));
    exposure.classList.add("exposure");
    stats.append(exposure);
    node.append(head, svgNode, stats);
    return node;
  }

  function render(section, data) {
    const list = section.querySelector(".trip-list");
    const trips = data ? data.trips.slice(0, 4) : [];
    list.replaceChildren(...trips.map(card));
    list.dataset.count = String(trips.length);
    section.querySelector(".trips-empty").hidden = trips.length > 0;
    section.querySelector(".trips-caption").textContent = Q.label("trips_caption", { index: Q.config.index.title[Q.state.lang] });
  }

  Q.dataView("trips", "screen/trips", render, ["basemap"]);
})();
