// Maps without tiles: a local tangent-plane projection, the server's schematic base layer
// (static/geo/yvelines.geojson), a scale bar and a north arrow, all in plain SVG.
"use strict";

(() => {
  const Q = window.QSEC;
  const R = 6371008.8; // [m] mean Earth radius
  const STYLE = {
    park: { fill: "#1d3325", stroke: "none", width: 0 },
    water: { fill: "none", stroke: "#2f5f86", width: 7 },
    main: { fill: "none", stroke: "#55606d", width: 6 },
    street: { fill: "none", stroke: "#3d4753", width: 4 },
    path: { fill: "none", stroke: "#36503c", width: 3 },
  };
  let base = null;
  let loading = null;

  function load() {
    if (!loading) {
      loading = fetch(`${Q.config.base}${Q.config.basemap}`)
        .then((response) => (response.ok ? response.json() : { features: [] }))
        .then((doc) => {
          base = doc;
          Q.emit("basemap");
        })
        .catch(() => {
          loading = null; // try again next time
        });
    }
    return loading;
  }

  // A projection of [lat, lon] points onto a width × height box, with at least minSpan metres shown.
  function frame(points, width, height, pad = 50, minSpan = 600) {
    const lats = points.map((p) => p.lat);
    const lons = points.map((p) => p.lon);
    const lat0 = (Math.min(...lats) + Math.max(...lats)) / 2;
    const lon0 = (Math.min(...lons) + Math.max(...lons)) / 2;
    const k = Math.cos((lat0 * Math.PI) / 180);
    const mx = (lon) => (R * k * (lon - lon0) * Math.PI) / 180;
    const my = (lat) => (R * (lat - lat0) * Math.PI) / 180;
    const spanX = Math.max(Math.max(...lons.map(mx)) - Math.min(...lons.map(mx)), minSpan);
    const spanY = Math.max(Math.max(...lats.map(my)) - Math.min(...lats.map(my)), minSpan);
    const scale = Math.min((width - 2 * pad) / spanX, (height - 2 * pad) / spanY); // [px/m]
    const xy = (lat, lon) => [width / 2 + mx(lon) * scale, height / 2 - my(lat) * scale];
    const visible = (coords, margin) =>
      coords.some(([lon, lat]) => {
        const [x, y] = xy(lat, lon);
        return x > -margin && x < width + margin && y > -margin && y < height + margin;
      });
    return { width, height, scale, xy, visible };
  }

  function pointsAttr(f, coords) {
    return coords.map(([lon, lat]) => f.xy(lat, lon).map((v) => v.toFixed(1)).join(",")).join(" ");
  }

  function drawBase(group, f, labels = true) {
    if (!base) {
      load();
      return;
    }
    const names = [];
    for (const feature of base.features) {
      const kind = feature.properties.kind;
      const geometry = feature.geometry;
      if (geometry.type === "Point") {
        if (!labels || !f.visible([geometry.coordinates], -40)) continue;
        const [x, y] = f.xy(geometry.coordinates[1], geometry.coordinates[0]);
        names.push(Q.svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 4, class: "place-dot" }));
        const text = Q.svg("text", { x: (x + 9).toFixed(1), y: (y + 6).toFixed(1), class: "place" });
        text.textContent = feature.properties.name;
        names.push(text);
        continue;
      }
      const coords = geometry.type === "Polygon" ? geometry.coordinates[0] : geometry.coordinates;
      if (!f.visible(coords, 200)) continue;
      const style = STYLE[kind] || STYLE.street;
      group.append(Q.svg(geometry.type === "Polygon" ? "polygon" : "polyline", {
        points: pointsAttr(f, coords), fill: style.fill, stroke: style.stroke, "stroke-width": style.width,
        "stroke-linecap": "round", "stroke-linejoin": "round",
      }));
    }
    group.append(...names);
  }

  function niceLength(maxM) {
    const power = 10 ** Math.floor(Math.log10(maxM));
    return [5, 2, 1].map((s) => s * power).find((v) => v <= maxM);
  }

  // Scale bar (bottom left) and north arrow (top right).
  function furniture(svgNode, f) {
    const metres = niceLength((f.width * 0.25) / f.scale);
    const px = metres * f.scale;
    const x0 = 30;
    const y0 = f.height - 30;
    const scale = Q.svg("g", { class: "scale-bar" });
    scale.append(
      Q.svg("path", { d: `M${x0},${y0 - 10}V${y0}H${(x0 + px).toFixed(1)}V${y0 - 10}` }),
      Object.assign(Q.svg("text", { x: (x0 + px / 2).toFixed(1), y: y0 - 16, "text-anchor": "middle" }), {
        textContent: metres >= 1000 ? Q.withUnit(Q.number(metres / 1000, 0), "km") : Q.withUnit(metres, "m"),
      }),
    );
    const nx = f.width - 44;
    const north = Q.svg("g", { class: "north-arrow" });
    north.append(
      Q.svg("path", { d: `M${nx},16L${nx + 13},52L${nx},44L${nx - 13},52Z` }),
      Object.assign(Q.svg("text", { x: nx, y: 78, "text-anchor": "middle" }), { textContent: "N" }),
    );
    svgNode.append(scale, north);
  }

  // The track as runs of the same colour (dark casing under coloured line).
  function drawTrack(group, f, track, q = "pm2_5") {
    if (track.length < 2) return;
    const runs = [];
    for (let i = 1; i < track.length; i += 1) {
      const band = Q.band(q, track[i].pm);
      const colour = band ? band.colour : "#8a939e";
      const last = runs[runs.length - 1];
      if (last && last.colour === colour && last.end === i - 1) {
        last.points.push(track[i]);
        last.end = i;
      } else {
        runs.push({ colour, points: [track[i - 1], track[i]], end: i });
      }
    }
    const attr = (points) => points.map((p) => f.xy(p.lat, p.lon).map((v) => v.toFixed(1)).join(",")).join(" ");
    for (const run of runs) group.append(Q.svg("polyline", { points: attr(run.points), class: "track-casing" }));
    for (const run of runs) group.append(Q.svg("polyline", { points: attr(run.points), class: "track", stroke: run.colour }));
  }

  Q.geo = { load, frame, drawBase, furniture, drawTrack };
})();
